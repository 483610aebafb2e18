/**
 * Runs outside jest (onnxruntime-node's native tensors belong to the main realm, jest's sandbox has
 * other typed-array classes): exports the seeded actors to ONNX, runs them in onnxruntime-node and
 * prints, as one JSON line, the largest absolute difference from the tfjs and WebAssembly (live)
 * outputs.  npx tsx test/unit/learning/helpers/onnx-compare.ts <policy seed>
 */
import * as ort from 'onnxruntime-node';
import { selectBackend, tf, TfMlp } from './tfjs-oracle';
import { exportMlpToOnnx, ONNX_INPUT, ONNX_OUTPUT } from '../../../../src/learning/onnx-export';
import { TacticalPolicy } from '../../../../src/learning/policy';
import { inferenceNet } from '../../../../src/learning/simd-dense-net';
import { SeededRandom } from '../../../../src/util/random';

async function main(): Promise<void> {
  await selectBackend();
  const rng = new SeededRandom(3);
  const result: { sizes: number[]; dims: number[]; maxDiff: { tfjs: number; wasm: number }; spread: number }[] = [];
  for (const weights of TacticalPolicy.initial(Number(process.argv[2] ?? 7)).actorWeights()) {
    const session = await ort.InferenceSession.create(exportMlpToOnnx(weights));
    const nIn = weights.sizes[0]!;
    const nOut = weights.sizes[weights.sizes.length - 1]!;
    const batch = 16;
    const x = Float32Array.from({ length: batch * nIn }, () => rng.normal() * 2);
    const out = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', x, [batch, nIn]) });
    const onnx = out[ONNX_OUTPUT]!.data as Float32Array;
    const mlp = TfMlp.fromWeights(weights);
    const tfOut = tf.tidy(() => mlp.forward(tf.tensor2d(x, [batch, nIn])).dataSync() as Float32Array);
    mlp.dispose();
    const wasm = inferenceNet(weights);
    const maxDiff = { tfjs: 0, wasm: 0 };
    for (let n = 0; n < batch; n++) {
      const row = x.subarray(n * nIn, (n + 1) * nIn);
      const w = wasm.forward(row);
      for (let k = 0; k < nOut; k++) {
        const o = onnx[n * nOut + k]!;
        maxDiff.tfjs = Math.max(maxDiff.tfjs, Math.abs(o - tfOut[n * nOut + k]!));
        maxDiff.wasm = Math.max(maxDiff.wasm, Math.abs(o - w[k]!));
      }
    }
    result.push({ sizes: weights.sizes, dims: [...out[ONNX_OUTPUT]!.dims], maxDiff, spread: Math.max(...onnx) - Math.min(...onnx) });
    await session.release();
  }
  process.stdout.write(JSON.stringify({ actors: result }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n');
  process.exit(1);
});
