/**
 * Offline fitting of the regime model and of the confidence model (run by `pipeline fit-models`,
 * src/cli/fit-models.ts, which prints the weights to paste into `regime-model-weights.ts`).
 *
 * Fitted on the families of `MARKET_FAMILIES` marked `heldOut: false` (Gaussian and Student-t shocks,
 * constant volatility inside a regime, no jumps, no gaps), seeds {@link FIT_SEEDS}. The held-out
 * families and the report's seeds (`REPORT_SEEDS`) are never used here.
 *
 * 1. Regime softmax (Adam, L2 1e-4) on settled bars (48 or more bars after a switch, outside a
 *    VOLATILE first segment), labelled with the regime of their segment.
 * 2. Confidence model: logistic regression of "the call is right" on `confidenceInputs`, on every
 *    bar after warm-up (switches and first windows included) of other markets run through the analyzer (pattern store included) with the new softmax. It is
 *    also fitted without the neighbour input; the two are compared on held-out families by the
 *    regime report.
 */
import { REGIME_INPUTS, regimePosterior } from './regime';
import { simulateFeedback, type ScoredBar } from './regime-eval';
import { CONFIDENCE_INPUTS, NEIGHBOUR_INPUT, confidenceInputs, feedbackZ } from './uncertainty';

/** Fits every confidence input but the neighbour one (whose weight stays 0). */
export const NO_NEIGHBOUR_MASK: readonly boolean[] = Array.from(
  { length: CONFIDENCE_INPUTS },
  (_, j) => j !== NEIGHBOUR_INPUT,
);

/** Seeds of the fitting markets (per fitted family). */
export const FIT_SEEDS = Array.from({ length: 8 }, (_, i) => 101 + i);
/** Seeds of the markets the confidence model is fitted on (not those of the softmax). */
export const CONFIDENCE_FIT_SEEDS = Array.from({ length: 24 }, (_, i) => 201 + i);
/**
 * Markets of `WEAK_GAUSSIAN_FAMILY` (confidence model only) in the confidence fit, against 24 of each
 * other fitted family: the share of weak-trend markets sets how often the fit sees a window with
 * an unclear drift be wrong, a prior the held-out families do not share (see docs/regime.md).
 */
export const CONFIDENCE_ONLY_SEEDS = 8;
/** 30m bars per fitting market. */
export const FIT_BARS = 4000;

/** Multinomial logistic regression of `labels` on `xs` (Adam, L2 1e-4); the regime softmax weights. */
export function fitSoftmax(xs: Float64Array[], labels: number[], iterations: number): Float64Array {
  const d = REGIME_INPUTS;
  const w = new Float64Array(4 * d);
  const m = new Float64Array(4 * d);
  const v = new Float64Array(4 * d);
  const grad = new Float64Array(4 * d);
  const p = new Float64Array(4);
  for (let it = 1; it <= iterations; it++) {
    grad.fill(0);
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      regimePosterior(x, p, w);
      for (let c = 0; c < 4; c++) {
        const g = p[c]! - (c === labels[i] ? 1 : 0);
        for (let j = 0; j < d; j++) grad[c * d + j] = grad[c * d + j]! + g * x[j]!;
      }
    }
    adam(w, m, v, grad, xs.length, it, 0.05);
  }
  return w;
}

/** Logistic regression by Adam on the mean log loss. */
export function fitLogistic(
  xs: Float64Array[],
  ys: number[],
  iterations: number,
  mask?: readonly boolean[],
): Float64Array {
  const d = xs[0]!.length;
  const w = new Float64Array(d);
  const m = new Float64Array(d);
  const v = new Float64Array(d);
  const grad = new Float64Array(d);
  for (let it = 1; it <= iterations; it++) {
    grad.fill(0);
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      let z = 0;
      for (let j = 0; j < d; j++) z += w[j]! * x[j]!;
      const g = 1 / (1 + Math.exp(-z)) - ys[i]!;
      for (let j = 0; j < d; j++) grad[j] = grad[j]! + g * x[j]!;
    }
    if (mask) for (let j = 0; j < d; j++) if (!mask[j]) grad[j] = 0;
    adam(w, m, v, grad, xs.length, it, 0.02);
  }
  return w;
}

function adam(
  w: Float64Array,
  m: Float64Array,
  v: Float64Array,
  grad: Float64Array,
  n: number,
  it: number,
  lr: number,
): void {
  for (let k = 0; k < w.length; k++) {
    const g = grad[k]! / n + 1e-4 * w[k]!;
    m[k] = 0.9 * m[k]! + 0.1 * g;
    v[k] = 0.999 * v[k]! + 0.001 * g * g;
    const mh = m[k]! / (1 - 0.9 ** it);
    const vh = v[k]! / (1 - 0.999 ** it);
    w[k] = w[k]! - (lr * mh) / (Math.sqrt(vh) + 1e-8);
  }
}

/** Confidence-model training rows from scored bars. */
export function confidenceRows(rows: readonly ScoredBar[]): { xs: Float64Array[]; ys: number[] } {
  const xs: Float64Array[] = [];
  const ys: number[] = [];
  for (const r of rows) {
    const x = new Float64Array(CONFIDENCE_INPUTS);
    confidenceInputs(r.evidence, x);
    xs.push(x);
    ys.push(r.call === r.truth ? 1 : 0);
  }
  return { xs, ys };
}

/** `w · x` of the confidence model (its log-odds before feedback). */
export function confidenceLogit(w: Float64Array, x: Float64Array): number {
  let z = 0;
  for (let j = 0; j < x.length; j++) z += w[j]! * x[j]!;
  return z;
}

/**
 * Fits the feedback penalty `a` of `logit(pCorrect) = base − a·max(0, z)` (z of `feedbackZ`) by
 * Newton's method on the log loss, `base` being the confidence model's log-odds: one parameter,
 * fitted on bars with simulated feedback (see `simulateFeedback`). `log` gets one line on what it was fitted on.
 */
export function fitFeedbackPenalty(rows: readonly ScoredBar[], weights: Float64Array, log: (line: string) => void = () => undefined): number {
  const feedback = simulateFeedback(rows);
  const x = new Float64Array(CONFIDENCE_INPUTS);
  const base: number[] = [];
  const zs: number[] = [];
  const ys: number[] = [];
  rows.forEach((r, i) => {
    const z = feedbackZ(feedback[i]);
    if (!(z > 0)) return;
    confidenceInputs(r.evidence, x);
    base.push(confidenceLogit(weights, x));
    zs.push(z);
    ys.push(r.call === r.truth ? 1 : 0);
  });
  let a = 0;
  for (let it = 0; it < 50; it++) {
    let g = 0;
    let h = 0;
    for (let i = 0; i < zs.length; i++) {
      const p = 1 / (1 + Math.exp(-(base[i]! - a * zs[i]!)));
      g += (ys[i]! - p) * zs[i]!; // d(logloss)/da
      h += p * (1 - p) * zs[i]! * zs[i]!;
    }
    const step = g / (h + 1e-9);
    a = Math.max(0, a - step);
    if (Math.abs(step) < 1e-9) break;
  }
  log(`feedback penalty fitted on ${zs.length} bars with simulated feedback below a coin's`);
  return a;
}
