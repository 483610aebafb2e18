/**
 * Inference benchmark: the three trading actors at batch 1 (one live decision) and batch 64, with
 * the WebAssembly SIMD path the tactical worker and the trainer use (`inferenceNet`) and the exported
 * ONNX models in onnxruntime-node (CPU, 1 intra-op thread). Same weights, same inputs, in
 * the same run; also reports the largest output difference ONNX vs WebAssembly.
 *   npx tsx bench/learning-onnx.bench.ts [--iterations 2000]
 * Prints a table and, last, one JSON line.
 */
import * as ort from 'onnxruntime-node';
import { exportMlpToOnnx, ONNX_INPUT, ONNX_OUTPUT } from '../src/learning/onnx-export';
import { TacticalPolicy } from '../src/learning/policy';
import { inferenceNet } from '../src/learning/simd-dense-net';
import { SeededRandom } from '../src/util/random';
import { quantile } from '../src/util/quantile';

const pct = quantile;

async function main(): Promise<void> {
  const i = process.argv.indexOf('--iterations');
  const iterations = i >= 0 ? Number(process.argv[i + 1]) : 2000;
  const weights = TacticalPolicy.initial(1).actorWeights();
  const rng = new SeededRandom(5);
  const inputs = Array.from({ length: 256 }, () => weights.map((w) => Float32Array.from({ length: w.sizes[0] as number }, () => rng.normal())));
  const wasm = weights.map((w) => inferenceNet(w));
  const sessions = await Promise.all(
    weights.map((w) => ort.InferenceSession.create(exportMlpToOnnx(w), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' })),
  );
  const time = async (name: string, decide: (k: number) => Promise<void> | void): Promise<{ name: string; p50Us: number; p99Us: number; meanUs: number }> => {
    for (let k = 0; k < 200; k++) await decide(k); // warm-up
    const t: number[] = [];
    for (let k = 0; k < iterations; k++) {
      const t0 = process.hrtime.bigint();
      await decide(k);
      t.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    const mean = t.reduce((a, b) => a + b, 0) / t.length;
    t.sort((a, b) => a - b);
    return { name, p50Us: pct(t, 0.5), p99Us: pct(t, 0.99), meanUs: mean };
  };
  const rows = [];
  rows.push(await time('wasm simd, batch 1 (3 actors)', (k) => void wasm.forEach((n, a) => n.forward(inputs[k % 256]![a]!))));
  rows.push(
    await time('onnxruntime, batch 1 (3 actors)', async (k) => {
      for (let a = 0; a < 3; a++) {
        const x = inputs[k % 256]![a]!;
        await sessions[a]!.run({ [ONNX_INPUT]: new ort.Tensor('float32', x, [1, x.length]) });
      }
    }),
  );
  const batch = 64;
  const batched = weights.map((w, a) => {
    const n = w.sizes[0] as number;
    const x = new Float32Array(batch * n);
    for (let b = 0; b < batch; b++) x.set(inputs[b]![a]!, b * n);
    return x;
  });
  const slow = Math.max(1, Math.floor(iterations / 20));
  const save = iterations;
  const timeBatch = async (name: string, f: () => Promise<void> | void) => {
    const t: number[] = [];
    for (let k = 0; k < 20; k++) await f();
    for (let k = 0; k < slow; k++) {
      const t0 = process.hrtime.bigint();
      await f();
      t.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    t.sort((a, b) => a - b);
    return { name, p50Us: pct(t, 0.5), p99Us: pct(t, 0.99), meanUs: t.reduce((a, b) => a + b, 0) / t.length };
  };
  rows.push(await timeBatch(`wasm simd, batch ${batch} (3 actors, row by row)`, () => void wasm.forEach((n, a) => { for (let b = 0; b < batch; b++) n.forward(inputs[b]![a]!); })));
  rows.push(
    await timeBatch(`onnxruntime, batch ${batch} (3 actors)`, async () => {
      for (let a = 0; a < 3; a++) await sessions[a]!.run({ [ONNX_INPUT]: new ort.Tensor('float32', batched[a]!, [batch, weights[a]!.sizes[0] as number]) });
    }),
  );
  let maxDiff = 0;
  for (let k = 0; k < 64; k++) {
    for (let a = 0; a < 3; a++) {
      const x = inputs[k]![a]!;
      const o = (await sessions[a]!.run({ [ONNX_INPUT]: new ort.Tensor('float32', x, [1, x.length]) }))[ONNX_OUTPUT]!.data as Float32Array;
      const w = wasm[a]!.forward(x);
      for (let j = 0; j < o.length; j++) maxDiff = Math.max(maxDiff, Math.abs((o[j] as number) - (w[j] as number)));
    }
  }
  for (const r of rows) process.stdout.write(`${r.name.padEnd(48)} p50 ${r.p50Us.toFixed(1).padStart(8)} µs  p99 ${r.p99Us.toFixed(1).padStart(8)} µs  mean ${r.meanUs.toFixed(1).padStart(8)} µs\n`);
  const ratio = (rows[1]!.p50Us / rows[0]!.p50Us).toFixed(2);
  process.stdout.write(`onnxruntime / wasm at batch 1 (p50): ${ratio}×; max |ONNX − wasm| ${maxDiff.toExponential(2)}\n`);
  process.stdout.write(JSON.stringify({ iterations: save, rows, onnxOverWasmBatch1: Number(ratio), maxAbsDiff: maxDiff }) + '\n');
  await Promise.all(sessions.map((s) => s.release()));
}

main().catch((err: unknown) => {
  process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n');
  process.exit(1);
});
