import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { availableParallelism } from 'node:os';
import {
  initialWeights,
  mlpParameterCount,
  type MlpOptions,
  type MlpWeights,
} from '../../../../src/learning/network';
import type { ResolvedMappoOptions } from '../../../../src/learning/mappo';
import type { ActorStepMetrics } from '../../../../src/learning/simd-steps';
import type { SeededRandom } from '../../../../src/util/random';

/**
 * tfjs as the test oracle of the training engine, and the only module that imports tfjs (a layout
 * rule keeps it so). The pipeline trains with the WebAssembly kernels (src/learning/simd-mlp.ts,
 * simd-steps.ts) and decides with src/learning/simd-dense-net.ts; the tests hold their forward
 * passes, gradients, Adam steps and PPO losses to tfjs's here.
 *
 * tfjs backend selection. The order is: `tensorflow` (only if `@tensorflow/tfjs-node` loads; its
 * install script downloads libtensorflow, so it cannot be installed where only the npm registry is
 * reachable), then `wasm`, then
 * `cpu`. Each candidate must pass a tiny matMul whose result is checked before it is kept.
 */

let selected: Promise<string> | null = null;

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /** Backends to try, in order. @defaultValue `['tensorflow', 'wasm', 'cpu']` */
  order?: readonly string[];
  /**
   * Threads for the wasm backend. Node has no cross-origin-isolated SharedArrayBuffer for the
   * threaded wasm build here, so tfjs falls back to one thread whatever is asked; asking for the
   * number of cores (at most 2 on these machines) is harmless and helps where threads exist.
   * @defaultValue `min(2, availableParallelism())`
   */
  wasmThreads?: number;
  /** Called with the chosen backend (for example a logger). */
  onSelected?: (backend: string) => void;
}

async function works(name: string): Promise<boolean> {
  try {
    if (!(await tf.setBackend(name))) return false;
    await tf.ready();
    const out = tf.tidy(() =>
      tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([1, 0, 0, 1], [2, 2])),
    );
    const v = await out.data();
    out.dispose();
    return v[0] === 1 && v[1] === 2 && v[2] === 3 && v[3] === 4;
  } catch {
    return false;
  }
}

/**
 * Picks the fastest working tfjs backend and returns its name. Idempotent: the first call decides,
 * later calls (with any options) return the same promise.
 */
export function selectBackend(options: SelectBackendOptions = {}): Promise<string> {
  if (selected) return selected;
  selected = (async () => {
    const order = options.order ?? ['tensorflow', 'wasm', 'cpu'];
    for (const name of order) {
      if (name === 'tensorflow') {
        try {
          // Optional native binding: registers the 'tensorflow' backend when it loads.
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          require('@tensorflow/tfjs-node');
        } catch {
          continue;
        }
      }
      if (name === 'wasm') {
        try {
          setThreadsCount(options.wasmThreads ?? Math.max(1, Math.min(2, availableParallelism())));
        } catch {
          // setThreadsCount throws once the backend is initialised; the first setting stays.
        }
      }
      if (await works(name)) {
        options.onSelected?.(name);
        return name;
      }
    }
    throw new Error('no tfjs backend works (tried ' + order.join(', ') + ')');
  })();
  return selected;
}

/** Threads the wasm backend actually uses (1 when the threaded build is unavailable). */
export function wasmThreadsInUse(): number {
  try {
    return getThreadsCount();
  } catch {
    return 1;
  }
}

type Dense = (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/**
 * `x·W + b` with a hand-written backward pass: dx = dy·Wᵀ, dW = xᵀ·dy, db = Σ_rows dy, each
 * transpose materialised with `tf.transpose` before a plain matMul. On wasm this is about 5×
 * faster per Adam step than the stock gradient of matMul (measured: 48 ms → 10 ms per step, MLP
 * 60-256-256-3 at batch 256), which routes through transposed-matMul kernels.
 */
export const denseCustomGrad: Dense = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.add(tf.matMul(x, w), b),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      const dy2 = dy as tf.Tensor2D;
      return [tf.matMul(dy2, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy2), tf.sum(dy2, 0)];
    },
  };
}) as unknown as Dense;

/** A trainable variable holding `initial`'s values; `initial` is disposed (the variable keeps the data). */
function variableOf<R extends tf.Rank>(initial: tf.Tensor<R>): tf.Variable<R> {
  try {
    return tf.variable(initial, true);
  } finally {
    initial.dispose();
  }
}

/** The MLP as tfjs variables: the reference forward pass and gradients. */
export class TfMlp {
  /** W0, b0, W1, b1, ... as tfjs variables. */
  readonly variables: tf.Variable[];

  private constructor(
    readonly sizes: readonly number[],
    weights: Float32Array,
  ) {
    this.variables = [];
    let off = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const nIn = sizes[l] as number;
      const nOut = sizes[l + 1] as number;
      // tf.variable shares the initial tensor's data and takes a reference to it: the initial
      // tensor must be disposed too, or its data (the whole weight matrix) outlives the variable.
      this.variables.push(
        variableOf(tf.tensor2d(weights.subarray(off, off + nIn * nOut), [nIn, nOut])),
      );
      off += nIn * nOut;
      this.variables.push(variableOf(tf.tensor1d(weights.subarray(off, off + nOut))));
      off += nOut;
    }
  }

  /** A freshly initialised network (orthogonal weights, zero biases), fully determined by `rng`. */
  static create(sizes: readonly number[], rng: SeededRandom, options: MlpOptions = {}): TfMlp {
    return new TfMlp(sizes, initialWeights(sizes, rng, options).data);
  }

  /** A network with the given weights (as produced by {@link getWeights}). */
  static fromWeights(weights: MlpWeights): TfMlp {
    if (weights.data.length !== mlpParameterCount(weights.sizes))
      throw new RangeError('weights do not match sizes');
    return new TfMlp(weights.sizes, weights.data);
  }

  get parameterCount(): number {
    return mlpParameterCount(this.sizes);
  }

  /** Reads the tfjs variables into a flat copy. */
  getWeights(): MlpWeights {
    const data = new Float32Array(this.parameterCount);
    let off = 0;
    for (const v of this.variables) {
      const d = v.dataSync() as Float32Array;
      data.set(d, off);
      off += d.length;
    }
    return { sizes: [...this.sizes], data };
  }

  /** Overwrites the tfjs variables. */
  setWeights(weights: MlpWeights): void {
    if (weights.data.length !== this.parameterCount)
      throw new RangeError('weights do not match sizes');
    let off = 0;
    for (const v of this.variables) {
      const n = v.size;
      const t = tf.tensor(weights.data.subarray(off, off + n), v.shape);
      v.assign(t);
      t.dispose();
      off += n;
    }
  }

  /** tfjs forward pass on a batch [n, in] → [n, out], using the custom-gradient dense layer. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    let h = x;
    const layers = this.variables.length / 2;
    for (let l = 0; l < layers; l++) {
      h = denseCustomGrad(
        h,
        this.variables[2 * l] as tf.Variable<tf.Rank.R2>,
        this.variables[2 * l + 1] as tf.Variable<tf.Rank.R1>,
      );
      if (l + 1 < layers) h = tf.relu(h);
    }
    return h;
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}

/** Scales gradients so that their global L2 norm is at most `maxNorm`; returns the norm before clipping. */
export function clipByGlobalNorm(
  grads: tf.Tensor[],
  maxNorm: number,
): { grads: tf.Tensor[]; norm: number } {
  const norm = tf.tidy(
    () => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))).dataSync()[0] as number,
  );
  const scale = Math.min(1, maxNorm / (norm + 1e-6));
  if (scale >= 1) return { grads, norm };
  return { grads: grads.map((g) => tf.mul(g, scale)), norm };
}

/**
 * The tfjs engine's PPO actor step (clipped surrogate, entropy bonus, global-norm clip, Adam), the
 * oracle of `simdActorStep`.
 */
export function tfActorStep(
  actor: TfMlp,
  opt: tf.Optimizer,
  o: ResolvedMappoOptions,
  nActions: number,
  obs: Float32Array,
  actions: Int32Array,
  oldLogp: Float32Array,
  adv: Float32Array,
  mask: Float32Array,
  m: number,
): ActorStepMetrics {
  const x = tf.tensor2d(obs, [m, obs.length / m]);
  const oneHot = tf.tidy(() => tf.oneHot(tf.tensor1d(actions, 'int32'), nActions)); // the indices tensor is freed
  const oldLp = tf.tensor1d(oldLogp);
  const advT = tf.tensor1d(adv);
  const maskT = tf.tensor1d(mask);
  const denom = Math.max(
    1,
    mask.reduce((s, v) => s + v, 0),
  );
  let aux: tf.Tensor[] = [];
  const { value, grads } = tf.variableGrads(() => {
    const logp = tf.logSoftmax(actor.forward(x));
    const lp = tf.sum(tf.mul(logp, oneHot), 1);
    const ratio = tf.exp(tf.sub(lp, oldLp));
    const surr1 = tf.mul(ratio, advT);
    const surr2 = tf.mul(tf.clipByValue(ratio, 1 - o.clipParam, 1 + o.clipParam), advT);
    const policyLoss = tf.div(tf.neg(tf.sum(tf.mul(tf.minimum(surr1, surr2), maskT))), denom);
    const ent = tf.div(tf.sum(tf.mul(tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)), maskT)), denom);
    const kl = tf.div(tf.sum(tf.mul(tf.sub(oldLp, lp), maskT)), denom);
    const clipped = tf.div(
      tf.sum(tf.mul(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), o.clipParam), 'float32'), maskT)),
      denom,
    );
    aux = [tf.keep(policyLoss), tf.keep(ent), tf.keep(kl), tf.keep(clipped)];
    return tf.sub<tf.Scalar>(policyLoss, tf.mul(ent, o.entropyCoef));
  }, actor.variables);
  const names = actor.variables.map((v) => v.name);
  const list = names.map((nm) => grads[nm] as tf.Tensor);
  const clipped = clipByGlobalNorm(list, o.maxGradNorm);
  const named: tf.NamedTensorMap = {};
  names.forEach((nm, i) => (named[nm] = clipped.grads[i] as tf.Tensor));
  opt.applyGradients(named);
  const [pl, en, kl, cf] = aux.map((t) => t.dataSync()[0] as number) as [
    number,
    number,
    number,
    number,
  ];
  tf.dispose([x, oneHot, oldLp, advT, maskT, value, ...list, ...aux]);
  if (clipped.grads !== list) tf.dispose(clipped.grads);
  return { policyLoss: pl, entropy: en, approxKl: kl, clipFraction: cf, gradNorm: clipped.norm };
}

/** The tfjs engine's critic step (clipped Huber value loss), the oracle of `simdCriticStep`. */
export function tfCriticStep(
  critic: TfMlp,
  opt: tf.Optimizer,
  o: ResolvedMappoOptions,
  states: Float32Array,
  oldValues: Float32Array,
  targets: Float32Array,
  m: number,
): { valueLoss: number; gradNorm: number } {
  const x = tf.tensor2d(states, [m, states.length / m]);
  const oldV = tf.tensor1d(oldValues);
  const target = tf.tensor1d(targets);
  const loss = (err: tf.Tensor): tf.Tensor => {
    if (!o.useHuberLoss) return tf.div(tf.square(err), 2);
    const a = tf.abs(err);
    const quad = tf.minimum(a, o.huberDelta);
    return tf.add(tf.div(tf.square(quad), 2), tf.mul(o.huberDelta, tf.sub(a, quad)));
  };
  const { value, grads } = tf.variableGrads(() => {
    const v = tf.reshape(critic.forward(x), [m]);
    const errOrig = loss(tf.sub(target, v));
    let l: tf.Tensor = errOrig;
    if (o.useClippedValueLoss) {
      const vClipped = tf.add(
        oldV,
        tf.clipByValue(tf.sub(v, oldV), -o.valueClipParam, o.valueClipParam),
      );
      l = tf.maximum(errOrig, loss(tf.sub(target, vClipped)));
    }
    return tf.mul<tf.Scalar>(tf.mean(l), o.valueLossCoef);
  }, critic.variables);
  const names = critic.variables.map((v) => v.name);
  const list = names.map((nm) => grads[nm] as tf.Tensor);
  const clipped = clipByGlobalNorm(list, o.maxGradNorm);
  const named: tf.NamedTensorMap = {};
  names.forEach((nm, i) => (named[nm] = clipped.grads[i] as tf.Tensor));
  opt.applyGradients(named);
  const valueLoss = value.dataSync()[0] as number;
  tf.dispose([x, oldV, target, value, ...list]);
  if (clipped.grads !== list) tf.dispose(clipped.grads);
  return { valueLoss, gradNorm: clipped.norm };
}
export { tf };
