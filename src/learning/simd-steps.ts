import type { ResolvedMappoOptions } from './mappo';
import type { SimdMlp } from './simd-mlp';

/**
 * The PPO minibatch steps of the SIMD engine as plain functions of a {@link SimdMlp} and the
 * options, so that the main thread and a worker thread (simd-worker.ts) run the same code: same
 * inputs, same bits.
 */

/** Metrics of one actor step. */
export interface ActorStepMetrics {
  policyLoss: number;
  entropy: number;
  approxKl: number;
  clipFraction: number;
  gradNorm: number;
}

/**
 * `Mappo`'s actor step on a SIMD network: the same clipped surrogate and entropy bonus, their
 * gradient with respect to the logits formed here (float64), then backpropagated in WebAssembly.
 */
export function simdActorStep(
  net: SimdMlp,
  o: ResolvedMappoOptions,
  k: number,
  obs: Float32Array,
  actions: Int32Array,
  oldLogp: Float32Array,
  adv: Float32Array,
  mask: Float32Array,
  m: number,
): ActorStepMetrics {
  const logits = net.forward(obs, m);
  const denom = Math.max(1, mask.reduce((s, v) => s + v, 0));
  const dz = new Float32Array(m * k);
  const logp = new Float64Array(k);
  let pl = 0;
  let en = 0;
  let kl = 0;
  let cf = 0;
  for (let s = 0; s < m; s++) {
    const w = mask[s] as number;
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[s * k + j] as number);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.exp((logits[s * k + j] as number) - max);
    const lse = max + Math.log(sum);
    let h = 0;
    for (let j = 0; j < k; j++) {
      logp[j] = (logits[s * k + j] as number) - lse;
      h -= Math.exp(logp[j] as number) * (logp[j] as number);
    }
    const act = actions[s] as number;
    const lp = logp[act] as number;
    const ratio = Math.exp(lp - (oldLogp[s] as number));
    const A = adv[s] as number;
    const clippedRatio = Math.min(Math.max(ratio, 1 - o.clipParam), 1 + o.clipParam);
    const surr1 = ratio * A;
    const surr2 = clippedRatio * A;
    // d min(surr1, surr2)/d ratio: A where surr1 ≤ surr2 (tfjs's minimum passes the gradient to
    // its first argument on ties; where the ratio is inside the clip range the two are equal).
    const dRatio = surr1 <= surr2 ? A : ratio >= 1 - o.clipParam && ratio <= 1 + o.clipParam ? A : 0;
    pl -= w * Math.min(surr1, surr2);
    en += w * h;
    kl += w * ((oldLogp[s] as number) - lp);
    if (Math.abs(ratio - 1) > o.clipParam) cf += w;
    if (w === 0) continue;
    // loss = policyLoss − c·entropy; dlp/dz_j = 1[j = a] − p_j; dH/dz_j = −p_j (log p_j + H).
    const gLp = (-w * dRatio * ratio) / denom;
    const gH = (-o.entropyCoef * w) / denom;
    for (let j = 0; j < k; j++) {
      const p = Math.exp(logp[j] as number);
      dz[s * k + j] = gLp * ((j === act ? 1 : 0) - p) + gH * (-p * ((logp[j] as number) + h));
    }
  }
  net.backward(dz);
  const norm = Math.sqrt(net.gradientSquaredNorm());
  net.adamStep(Math.min(1, o.maxGradNorm / (norm + 1e-6)));
  return { policyLoss: pl / denom, entropy: en / denom, approxKl: kl / denom, clipFraction: cf / denom, gradNorm: norm };
}

/** `Mappo`'s critic step on a SIMD network: the same (clipped, Huber) value loss and its gradient. */
export function simdCriticStep(
  net: SimdMlp,
  o: ResolvedMappoOptions,
  states: Float32Array,
  oldValues: Float32Array,
  targets: Float32Array,
  m: number,
): { valueLoss: number; gradNorm: number } {
  const v = net.forward(states, m);
  const loss = (err: number): number => {
    if (!o.useHuberLoss) return (err * err) / 2;
    const a = Math.abs(err);
    const q = Math.min(a, o.huberDelta);
    return (q * q) / 2 + o.huberDelta * (a - q);
  };
  // dloss/derr: err inside the Huber band, ±δ outside.
  const dLoss = (err: number): number => (!o.useHuberLoss || Math.abs(err) <= o.huberDelta ? err : o.huberDelta * Math.sign(err));
  const dv = new Float32Array(m);
  let total = 0;
  for (let s = 0; s < m; s++) {
    const vs = v[s] as number;
    const t = targets[s] as number;
    const e1 = t - vs;
    const l1 = loss(e1);
    let l = l1;
    let g = -dLoss(e1);
    if (o.useClippedValueLoss) {
      const old = oldValues[s] as number;
      const d = vs - old;
      const inside = d >= -o.valueClipParam && d <= o.valueClipParam;
      const e2 = t - (old + Math.min(Math.max(d, -o.valueClipParam), o.valueClipParam));
      const l2 = loss(e2);
      // tfjs's maximum passes the gradient to its first argument when it is ≥ the second.
      if (l1 < l2) {
        l = l2;
        g = inside ? -dLoss(e2) : 0;
      }
    }
    total += l;
    dv[s] = (g * o.valueLossCoef) / m;
  }
  net.backward(dv);
  const norm = Math.sqrt(net.gradientSquaredNorm());
  net.adamStep(Math.min(1, o.maxGradNorm / (norm + 1e-6)));
  return { valueLoss: (total / m) * o.valueLossCoef, gradNorm: norm };
}
