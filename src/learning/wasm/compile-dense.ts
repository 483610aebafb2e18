/** Compiles a WebAssembly text module (SIMD enabled) to a base64 wasm binary with wabt (a devDependency). */
export async function compileDenseWat(wat: string, name = 'dense.wat'): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wabtFactory = require('wabt') as () => Promise<{
    parseWat(name: string, text: string, features?: Record<string, boolean>): {
      toBinary(options: object): { buffer: Uint8Array };
      destroy(): void;
    };
  }>;
  const wabt = await wabtFactory();
  const module = wabt.parseWat(name, wat, { simd: true });
  try {
    return Buffer.from(module.toBinary({}).buffer).toString('base64');
  } finally {
    module.destroy();
  }
}
