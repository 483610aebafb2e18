import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initialWeights } from '../../../src/learning/network';
import { MAX_FORWARD_BATCH, SimdDenseNet, inferenceNet } from '../../../src/learning/simd-dense-net';
import { compileDenseWat } from '../../../src/learning/wasm/compile-dense';
import { DENSE_WASM_BASE64 } from '../../../src/learning/wasm/dense-module';
import { SeededRandom } from '../../../src/util/random';
import { selectBackend, tf, TfMlp } from './helpers/tfjs-oracle';

beforeAll(async () => {
  await selectBackend();
});

describe('SIMD dense network', () => {
  it.each([
    [[23, 352, 264, 3]],
    [[10, 312, 312, 4]],
    [[10, 432, 224, 3]],
    [[5, 7, 3]],
  ])('computes the forward pass of the tfjs oracle for sizes %j', (sizes) => {
    const weights = initialWeights(sizes, new SeededRandom(3), { hiddenGain: Math.SQRT2, outputGain: 1 });
    const ref = TfMlp.fromWeights(weights);
    const simd = inferenceNet(weights);
    expect(simd).toBeInstanceOf(SimdDenseNet);
    const rng = new SeededRandom(4);
    const xs = Array.from({ length: 50 }, () => Array.from({ length: sizes[0]! }, () => rng.normal()));
    const expected = tf.tidy(() => ref.forward(tf.tensor2d(xs)).arraySync());
    ref.dispose();
    xs.forEach((x, n) => {
      const a = expected[n]!;
      const b = Array.from(simd.forward(x));
      const scale = Math.max(...a.map(Math.abs), 1e-3);
      a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThan(1e-5 * scale));
    });
  });

  it('gives bit-identical outputs for the same input on repeated calls', () => {
    const weights = initialWeights([23, 352, 264, 3], new SeededRandom(5), { hiddenGain: Math.SQRT2, outputGain: 0.01 });
    const a = inferenceNet(weights);
    const b = inferenceNet(weights);
    const x = Array.from({ length: 23 }, (_, i) => Math.sin(i));
    const first = Array.from(a.forward(x));
    a.forward(x.map((v) => -v));
    expect(Array.from(a.forward(x))).toEqual(first);
    expect(Array.from(b.forward(x))).toEqual(first);
  });

  it.each([
    [[23, 352, 264, 3]],
    [[10, 312, 312, 4]],
    [[10, 432, 224, 3]],
    [[5, 7, 3]],
  ])('gives every input of a batch the bits of its batch-1 forward pass, batch sizes 1 to MAX_FORWARD_BATCH + 8 (sizes %j)', (sizes) => {
    const weights = initialWeights(sizes, new SeededRandom(11), { hiddenGain: Math.SQRT2, outputGain: 1 });
    const net = inferenceNet(weights);
    expect(net).toBeInstanceOf(SimdDenseNet);
    const rng = new SeededRandom(12);
    const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
    for (let nb = 1; nb <= MAX_FORWARD_BATCH + 8; nb++) {
      // Large and small inputs, some exactly zero, so that ReLU clips and sums cancel.
      const xs = Array.from({ length: nb }, () => Array.from({ length: sizes[0]! }, () => (rng.next() < 0.1 ? 0 : rng.normal() * 10 ** rng.int(-2, 2))));
      const batched = net.forwardBatch(xs);
      expect(batched).toHaveLength(nb);
      xs.forEach((x, k) => expect(bits(batched[k]!)).toEqual(bits(net.forward(x).slice())));
    }
  });

  it('ships the module compiled from dense.wat (run pipeline build-wasm after editing it)', async () => {
    const wat = readFileSync(join(__dirname, '../../../src/learning/wasm/dense.wat'), 'utf8');
    expect(await compileDenseWat(wat)).toBe(DENSE_WASM_BASE64);
  });
});
