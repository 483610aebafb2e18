import { computeGae, Mappo, normalizeAdvantages, softmax, ValueNorm } from '../../../src/learning/mappo';
import { mlpParameterCount, orthogonal } from '../../../src/learning/network';
import { inferenceNet } from '../../../src/learning/simd-dense-net';
import { clipByGlobalNorm, denseCustomGrad, selectBackend, tf, TfMlp } from './helpers/tfjs-oracle';
import { SeededRandom } from '../../../src/util/random';

beforeAll(async () => {
  await selectBackend();
});

describe('selectBackend', () => {
  it('picks wasm when tfjs-node is missing and returns the same answer on every call', async () => {
    const a = await selectBackend();
    const b = await selectBackend({ order: ['cpu'] });
    expect(a).toBe(b);
    expect(['tensorflow', 'wasm', 'cpu']).toContain(a);
    expect(tf.getBackend()).toBe(a);
  });
});

describe('denseCustomGrad', () => {
  it('gives the same value and gradients as tf.grads on plain matMul + bias', () => {
    const rng = new SeededRandom(3);
    const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    const x = tf.tensor2d(rand(5 * 7), [5, 7]);
    const w = tf.tensor2d(rand(7 * 4), [7, 4]);
    const b = tf.tensor1d(rand(4));
    const up = tf.tensor2d(rand(5 * 4), [5, 4]); // a non-uniform upstream gradient
    const lossCustom = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(tf.tanh(denseCustomGrad(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D)), up));
    const lossStock = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(tf.tanh(tf.add(tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D), bb)), up));
    expect(lossCustom(x, w, b).dataSync()[0]).toBeCloseTo(lossStock(x, w, b).dataSync()[0] as number, 4);
    const gc = tf.grads(lossCustom)([x, w, b]);
    const gs = tf.grads(lossStock)([x, w, b]);
    expect(gc.map((g) => g.shape)).toEqual([[5, 7], [7, 4], [4]]);
    for (let i = 0; i < 3; i++) {
      const c = gc[i]!.dataSync();
      const s = gs[i]!.dataSync();
      expect(Math.max(...s.map((v) => Math.abs(v)))).toBeGreaterThan(0.01);
      for (let k = 0; k < s.length; k++) expect(c[k]).toBeCloseTo(s[k] as number, 4);
    }
  });

  it('passes gradients to tf.variables used as its inputs (as the actors use it)', () => {
    const net = TfMlp.create([3, 8, 2], new SeededRandom(1), { outputGain: 1 });
    const x = tf.tensor2d([[0.5, -1, 2]]);
    const { grads } = tf.variableGrads(() => tf.sum<tf.Scalar>(net.forward(x)), net.variables);
    expect(Object.keys(grads)).toHaveLength(4);
    for (const g of Object.values(grads)) expect(g.dataSync().some((v) => v !== 0)).toBe(true);
    net.dispose();
  });
});

describe('orthogonal init', () => {
  it('gives orthonormal columns times the gain', () => {
    const q = orthogonal(6, 3, 2, new SeededRandom(9));
    for (let a = 0; a < 3; a++) {
      for (let c = 0; c < 3; c++) {
        let dot = 0;
        for (let r = 0; r < 6; r++) dot += q[r * 3 + a]! * q[r * 3 + c]!;
        expect(dot).toBeCloseTo(a === c ? 4 : 0, 4);
      }
    }
  });

  it('is determined by the seed', () => {
    expect(Array.from(orthogonal(5, 5, 1, new SeededRandom(4)))).toEqual(Array.from(orthogonal(5, 5, 1, new SeededRandom(4))));
    expect(Array.from(orthogonal(5, 5, 1, new SeededRandom(4)))).not.toEqual(Array.from(orthogonal(5, 5, 1, new SeededRandom(5))));
  });
});

describe('Mlp', () => {
  it('counts parameters as Σ in·out + out', () => {
    expect(mlpParameterCount([4, 64, 64, 2])).toBe(4 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2);
  });

  it('computes, in Mappo.act and Mappo.value, the live forward pass (SimdDenseNet) of its current weights, within 1e-5 of tfjs', async () => {
    const spec = { agents: [{ name: 'a', obsDim: 10, nActions: 3, hidden: [32, 16] }], stateDim: 6, criticHidden: [8] };
    const mappo = new Mappo(spec, { seed: 2, policyHeadGain: 1, useValueNorm: false });
    mappo.threads = false;
    const rng = new SeededRandom(8);
    const xs = Array.from({ length: 5 }, () => Array.from({ length: 10 }, () => rng.normal()));
    const state = Array.from({ length: 6 }, () => rng.normal());
    const check = (): void => {
      const { actors, critic } = mappo.snapshot();
      const live = inferenceNet(actors[0]!);
      const ref = TfMlp.fromWeights(actors[0]!);
      for (const x of xs) {
        const expected = softmax(live.forward(x));
        expect(mappo.act([x], true).probs[0]).toEqual(expected); // the same bits
        const tfOut = tf.tidy(() => tf.softmax(ref.forward(tf.tensor2d([x]))).dataSync());
        expected.forEach((p, i) => expect(Math.abs(p - tfOut[i]!)).toBeLessThan(1e-5));
      }
      ref.dispose();
      expect(mappo.value(state)).toBe(inferenceNet(critic).forward(state)[0]);
    };
    check();
    // An update changes the weights: act and value must follow them, not keep the first ones.
    const before = mappo.act([xs[0]!], true).probs[0];
    const steps = xs.map((x, t) => ({ obs: [x], state, actions: [t % 3], logProbs: [Math.log(1 / 3)], reward: t - 2 }));
    await mappo.update([{ steps, terminal: false, nextState: state }]);
    expect(mappo.act([xs[0]!], true).probs[0]).not.toEqual(before);
    check();
    mappo.dispose();
  });
});

describe('computeGae', () => {
  it('matches hand-computed advantages and returns (γ 0.99, λ 0.95)', () => {
    // values V0=1, V1=2, terminal after step 1, rewards 0 then 8.
    // δ1 = 8 + 0 − 2 = 6; A1 = 6; δ0 = 0 + 0.99·2 − 1 = 0.98; A0 = 0.98 + 0.99·0.95·6 = 6.623
    const { advantages, returns } = computeGae([0, 8], [1, 2], 0, 0.99, 0.95);
    expect(advantages[1]).toBeCloseTo(6, 10);
    expect(advantages[0]).toBeCloseTo(6.623, 10);
    expect(returns).toEqual([advantages[0]! + 1, 8]);
  });

  it('bootstraps a truncated trajectory with the next value', () => {
    // δ0 = 1 + 0.5·4 − 0 = 3 (γ 0.5, λ 1)
    const { advantages } = computeGae([1], [0], 4, 0.5, 1);
    expect(advantages[0]).toBeCloseTo(3, 12);
  });
});

describe('ValueNorm', () => {
  it('tracks a debiased running mean and variance', () => {
    const v = new ValueNorm(0.5);
    v.update([2, 4]); // batch mean 3, mean sq 10
    // m = 0.5·3 = 1.5, m2 = 5, d = 0.5 → mean 3, var 10 − 9 = 1
    expect(v.stats().mean).toBeCloseTo(3, 12);
    expect(v.stats().variance).toBeCloseTo(1, 12);
    v.update([10]); // m = 0.75 + 5 = 5.75, m2 = 2.5 + 50 = 52.5, d = 0.75
    expect(v.stats().mean).toBeCloseTo(5.75 / 0.75, 10);
    expect(v.stats().variance).toBeCloseTo(52.5 / 0.75 - (5.75 / 0.75) ** 2, 10);
    expect(v.denormalize(v.normalize(7.5))).toBeCloseTo(7.5, 10);
    expect(ValueNorm.fromJSON(v.toJSON(), 0.5).stats()).toEqual(v.stats());
  });

  it('floors the variance at 1e-2', () => {
    const v = new ValueNorm();
    v.update([5, 5, 5]);
    expect(v.stats().variance).toBeCloseTo(1e-2, 12);
    expect(v.normalize(6)).toBeCloseTo(10, 6);
  });
});

describe('clipByGlobalNorm', () => {
  it('scales gradients to the max norm and leaves small ones alone', () => {
    const g = [tf.tensor1d([3, 0]), tf.tensor1d([0, 4])]; // norm 5
    const c = clipByGlobalNorm(g, 1);
    expect(c.norm).toBeCloseTo(5, 5);
    expect(Array.from(c.grads[0]!.dataSync())).toEqual([expect.closeTo(0.6, 5), 0]);
    expect(Array.from(c.grads[1]!.dataSync())).toEqual([0, expect.closeTo(0.8, 5)]);
    const same = clipByGlobalNorm(g, 10);
    expect(same.grads).toBe(g);
  });
});

describe('normalizeAdvantages', () => {
  it('uses mean and std of the active samples only', () => {
    const adv = Float32Array.from([1, 3, 100]);
    const [a] = normalizeAdvantages(adv, [Float32Array.from([1, 1, 0])], true);
    // mean 2, std 1 over the two active samples
    expect(a![0]).toBeCloseTo(-1, 4);
    expect(a![1]).toBeCloseTo(1, 4);
  });
});
