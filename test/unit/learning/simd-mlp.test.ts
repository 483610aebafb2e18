import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { syntheticSeries } from '../../../src/learning/evaluation';
import { Mappo, MAPPO_DEFAULTS } from '../../../src/learning/mappo';
import { initialWeights } from '../../../src/learning/network';
import { simdActorStep, simdCriticStep } from '../../../src/learning/simd-steps';
import { SimdMlp, trainModule } from '../../../src/learning/simd-mlp';
import { collectEpisodes, TRADING_MAPPO_OPTIONS, TRADING_TEAM_SPEC } from '../../../src/learning/trading-agents';
import { compileDenseWat } from '../../../src/learning/wasm/compile-dense';
import { TRAIN_WASM_BASE64 } from '../../../src/learning/wasm/train-module';
import { SeededRandom } from '../../../src/util/random';
import { selectBackend, tf, tfActorStep, tfCriticStep, TfMlp } from './helpers/tfjs-oracle';

beforeAll(async () => {
  await selectBackend();
});

/** ‖a − b‖ / ‖b‖. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += ((a[i] as number) - (b[i] as number)) ** 2;
    n += (b[i] as number) ** 2;
  }
  return Math.sqrt(d / n);
}

/** Inputs with about a third exact zeros, so the kernel's zero skipping is exercised. */
function inputs(rows: number, dim: number, rng: SeededRandom): Float32Array {
  return Float32Array.from({ length: rows * dim }, () => (rng.next() < 0.33 ? 0 : rng.normal()));
}


describe('SimdMlp (WebAssembly SIMD training pass)', () => {
  it.each([
    [[23, 352, 264, 3]],
    [[10, 312, 312, 4]],
    [[43, 256, 256, 1]],
    [[5, 7, 3]],
  ])('matches tfjs outputs and gradients (to 1e-5 relative) for sizes %j', (sizes) => {
    const rng = new SeededRandom(11);
    const weights = initialWeights(sizes, rng, { outputGain: 1 });
    const rows = 97;
    const x = inputs(rows, sizes[0]!, rng);
    const up = Float32Array.from({ length: rows * sizes[sizes.length - 1]! }, () => rng.normal());
    const net = new SimdMlp(sizes, { learningRate: 1e-3 }, trainModule());
    net.setWeights(weights.data);
    expect(Array.from(net.getWeights())).toEqual(Array.from(weights.data));
    const out = net.forward(x, rows);
    net.backward(up);
    const simdGrads = net.getGradients();

    const mlp = TfMlp.fromWeights(weights);
    const xt = tf.tensor2d(x, [rows, sizes[0]!]);
    const upT = tf.tensor2d(up, [rows, sizes[sizes.length - 1]!]);
    const ref = tf.tidy(() => mlp.forward(xt).dataSync());
    const { value, grads } = tf.variableGrads(() => tf.sum<tf.Scalar>(tf.mul(mlp.forward(xt), upT)), mlp.variables);
    expect(relativeError(out, ref)).toBeLessThan(1e-5);
    let off = 0;
    for (const v of mlp.variables) {
      const g = grads[v.name]!.dataSync();
      const mine = simdGrads.subarray(off, off + g.length);
      expect(Math.max(...Array.from(g, Math.abs))).toBeGreaterThan(1e-3); // a real gradient, not zeros
      expect(relativeError(mine, g)).toBeLessThan(1e-5);
      off += g.length;
    }
    expect(off).toBe(simdGrads.length);
    tf.dispose([xt, upT, value, ...Object.values(grads)]);
    mlp.dispose();
  });

  it('takes the same Adam steps as tf.train.adam, clipping scale included', () => {
    const sizes = [6, 16, 3];
    const rng = new SeededRandom(5);
    const weights = initialWeights(sizes, rng, { outputGain: 1 });
    const net = new SimdMlp(sizes, { learningRate: 1e-2, epsilon: 1e-5 }, trainModule());
    net.setWeights(weights.data);
    const mlp = TfMlp.fromWeights(weights);
    const opt = tf.train.adam(1e-2, 0.9, 0.999, 1e-5);
    for (let step = 0; step < 3; step++) {
      const rows = 9;
      const x = inputs(rows, 6, rng);
      const up = Float32Array.from({ length: rows * 3 }, () => rng.normal());
      const scale = step === 1 ? 0.25 : 1;
      net.forward(x, rows);
      net.backward(up);
      net.adamStep(scale);
      const xt = tf.tensor2d(x, [rows, 6]);
      const upT = tf.tensor2d(up, [rows, 3]);
      const { value, grads } = tf.variableGrads(() => tf.sum<tf.Scalar>(tf.mul(mlp.forward(xt), upT)), mlp.variables);
      const scaled = Object.entries(grads).map(([name, g]) => ({ name, tensor: tf.mul(g, scale) }));
      opt.applyGradients(scaled);
      tf.dispose([xt, upT, value, ...Object.values(grads), ...scaled.map((g) => g.tensor)]);
    }
    const moved = relativeError(mlp.getWeights().data, weights.data);
    expect(moved).toBeGreaterThan(1e-3); // the steps did move the weights
    expect(relativeError(net.getWeights(), mlp.getWeights().data)).toBeLessThan(1e-5);
    mlp.dispose();
    opt.dispose();
  });

  it('ships the module compiled from train.wat (run pipeline build-wasm after editing it)', async () => {
    const wat = readFileSync(join(__dirname, '../../../src/learning/wasm/train.wat'), 'utf8');
    expect(await compileDenseWat(wat, 'train.wat')).toBe(TRAIN_WASM_BASE64);
  });
});

describe('Mappo.update with the SIMD engine', () => {
  const [series] = syntheticSeries({ seeds: [7], bars: 700 });

  async function trained(threads = true): Promise<{ mappo: Mappo; metrics: Awaited<ReturnType<Mappo['update']>> }> {
    const mappo = new Mappo(TRADING_TEAM_SPEC, { ...TRADING_MAPPO_OPTIONS, seed: 3 });
    mappo.threads = threads;
    const { trajectories } = collectEpisodes(mappo, [series!], { rng: new SeededRandom(4), episodes: 3, steps: 120 });
    const metrics = await mappo.update(trajectories);
    return { mappo, metrics };
  }

  it('takes the same PPO actor and critic steps as the tfjs oracle', () => {
    const o = { ...MAPPO_DEFAULTS, ...TRADING_MAPPO_OPTIONS };
    const rng = new SeededRandom(11);
    const m = 64;
    const adam = { learningRate: o.actorLr, beta1: 0.9, beta2: 0.999, epsilon: o.adamEps };
    const steps = 3;
    for (const spec of TRADING_TEAM_SPEC.agents) {
      const sizes = [spec.obsDim, ...spec.hidden, spec.nActions];
      const w0 = initialWeights(sizes, new SeededRandom(5), { outputGain: 1 });
      const simd = new SimdMlp(sizes, adam, trainModule());
      simd.setWeights(w0.data);
      const ref = TfMlp.fromWeights(w0);
      const opt = tf.train.adam(adam.learningRate, 0.9, 0.999, adam.epsilon);
      const obs = inputs(m, spec.obsDim, rng);
      const actions = Int32Array.from({ length: m }, () => Math.floor(rng.next() * spec.nActions));
      const oldLogp = Float32Array.from({ length: m }, () => Math.log(1 / spec.nActions) + 0.3 * rng.normal());
      const adv = Float32Array.from({ length: m }, () => rng.normal());
      const mask = Float32Array.from({ length: m }, () => (rng.next() < 0.9 ? 1 : 0));
      for (let k = 0; k < steps; k++) {
        const a = simdActorStep(simd, o, spec.nActions, obs, actions, oldLogp, adv, mask, m);
        const b = tfActorStep(ref, opt, o, spec.nActions, obs, actions, oldLogp, adv, mask, m);
        for (const key of ['policyLoss', 'entropy', 'approxKl', 'gradNorm'] as const) {
          expect(Math.abs(a[key] - b[key])).toBeLessThan(1e-4 * Math.max(1, Math.abs(b[key])));
        }
      }
      const ds = simd.getWeights().map((v, i) => v - w0.data[i]!);
      const dt = ref.getWeights().data.map((v, i) => v - w0.data[i]!);
      expect(Math.max(...Array.from(dt, Math.abs))).toBeGreaterThan(1e-4);
      expect(relativeError(ds, dt)).toBeLessThan(1e-2);
      ref.dispose();
      opt.dispose();
    }
    const sizes = [TRADING_TEAM_SPEC.stateDim, ...TRADING_TEAM_SPEC.criticHidden, 1];
    const w0 = initialWeights(sizes, new SeededRandom(6), { outputGain: 1 });
    const critic = new SimdMlp(sizes, { ...adam, learningRate: o.criticLr }, trainModule());
    critic.setWeights(w0.data);
    const ref = TfMlp.fromWeights(w0);
    const opt = tf.train.adam(o.criticLr, 0.9, 0.999, adam.epsilon);
    const states = inputs(m, TRADING_TEAM_SPEC.stateDim, rng);
    const oldValues = Float32Array.from({ length: m }, () => 0.5 * rng.normal());
    const targets = Float32Array.from({ length: m }, () => 2 * rng.normal());
    for (let k = 0; k < steps; k++) {
      const a = simdCriticStep(critic, o, states, oldValues, targets, m);
      const b = tfCriticStep(ref, opt, o, states, oldValues, targets, m);
      expect(Math.abs(a.valueLoss - b.valueLoss)).toBeLessThan(1e-4 * Math.max(1, b.valueLoss));
      expect(Math.abs(a.gradNorm - b.gradNorm)).toBeLessThan(1e-3 * b.gradNorm);
    }
    const ds = critic.getWeights().map((v, i) => v - w0.data[i]!);
    const dt = ref.getWeights().data.map((v, i) => v - w0.data[i]!);
    expect(relativeError(ds, dt)).toBeLessThan(1e-2);
    ref.dispose();
    opt.dispose();
  }, 60_000);

  it('refreshes the weights the trainer acts with after an update', async () => {
    const initial = new Mappo(TRADING_TEAM_SPEC, { ...TRADING_MAPPO_OPTIONS, seed: 3 });
    const obs = TRADING_TEAM_SPEC.agents.map((a) => Array.from({ length: a.obsDim }, (_, i) => Math.cos(i)));
    const before = initial.act(obs, true).probs;
    const s = await trained();
    expect(s.mappo.act(obs, true).probs).not.toEqual(before);
    initial.dispose();
    s.mappo.dispose();
  }, 60_000);

  it('gives bit-identical weights with the training worker thread and without it', async () => {
    const a = await trained(true);
    const b = await trained(false);
    expect(a.mappo.trainingThreads).toBe(2);
    expect(b.mappo.trainingThreads).toBe(1);
    const sa = a.mappo.snapshot();
    const sb = b.mappo.snapshot();
    sa.actors.forEach((w, i) => expect(Array.from(w.data)).toEqual(Array.from(sb.actors[i]!.data)));
    expect(Array.from(sa.critic.data)).toEqual(Array.from(sb.critic.data));
    expect(a.metrics).toEqual(b.metrics);
    a.mappo.dispose();
    b.mappo.dispose();
  }, 60_000);

  it('is deterministic: the same seed and data give bit-identical weights', async () => {
    const a = await trained();
    const b = await trained();
    expect(Array.from(a.mappo.snapshot().actors[1]!.data)).toEqual(Array.from(b.mappo.snapshot().actors[1]!.data));
    expect(Array.from(a.mappo.snapshot().critic.data)).toEqual(Array.from(b.mappo.snapshot().critic.data));
    a.mappo.dispose();
    b.mappo.dispose();
  }, 60_000);
});
