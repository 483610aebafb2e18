import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { exportMlpToOnnx } from '../../../src/learning/onnx-export';
import { TRADING_TEAM_SPEC } from '../../../src/learning/trading-agents';

describe('ONNX export of the actors', () => {
  it('runs in onnxruntime-node and matches the tfjs and WebAssembly outputs to 1e-5', () => {
    // onnxruntime-node cannot run inside jest's sandbox (its tensors are main-realm typed arrays).
    const tsx = join(__dirname, '..', '..', '..', 'node_modules', '.bin', 'tsx');
    const out = execFileSync(tsx, [join(__dirname, 'helpers', 'onnx-compare.ts'), '7'], { encoding: 'utf8', timeout: 120_000 });
    const { actors: rows } = JSON.parse(out.trim().split('\n').pop()!) as {
      actors: { sizes: number[]; dims: number[]; maxDiff: Record<string, number>; spread: number }[];
    };
    expect(rows.map((r) => r.sizes)).toEqual(TRADING_TEAM_SPEC.agents.map((a) => [a.obsDim, ...a.hidden, a.nActions]));
    for (const r of rows) {
      expect(r.dims).toEqual([16, r.sizes[r.sizes.length - 1]]);
      expect(r.maxDiff.tfjs).toBeLessThan(1e-5);
      expect(r.maxDiff.wasm).toBeLessThan(1e-5);
      expect(r.spread).toBeGreaterThan(1e-3); // the logits are not all alike
    }
  }, 180_000);

  it('rejects weights that do not match their sizes', () => {
    expect(() => exportMlpToOnnx({ sizes: [3, 2], data: new Float32Array(5) })).toThrow(/do not match/);
  });
});
