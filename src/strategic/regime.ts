import type { RegimeName, RegimeProbabilities } from '../../schemas/strategic-context.schema';
import { decodeFloats, encodeFloats, type EncodedFloat } from '../indicators/float-codec';
import type { FeatureMatrix } from './feature-matrix';
import { REGIME_NAMES } from './regime-names';
import { REGIME_MODEL_WEIGHTS } from './regime-model-weights';

/** Bars between two samples of the window variance taken by {@link VolatilityBaseline}. */
export const BASELINE_SAMPLE_EVERY = 12;
/** Samples kept by {@link VolatilityBaseline}: 128 × 12 bars = 1,536 bars = 32 days of 30m bars. */
export const BASELINE_SAMPLES = 128;
/**
 * The lower quartile of the sample variance of 48 normal returns (χ²₄₇/47) is 0.861 of the true
 * variance; dividing by it makes the baseline an unbiased estimate of a calm market's variance.
 */
const LOWER_QUARTILE_CHI2_47 = 0.861;

/** Serialised {@link VolatilityBaseline}. */
export interface VolatilityBaselineState {
  samples: EncodedFloat[];
  count: number;
  sinceSample: number;
}

/**
 * A symbol's long-run baseline variance of 30m log returns, the yardstick of the VOLATILE regime.
 * Emits no events.
 *
 * Every 12 bars it samples the sample variance of the last 48 returns and keeps the last 128
 * samples (32 days); the baseline is their lower quartile divided by 0.861, the lower quartile of
 * χ²₄₇/47, so in a calm market it estimates the return variance without bias. Why a lower quartile:
 * - VOLATILE stretches push a mean or an EWMA up (a 25 % share of 3× volatility inflates a mean of
 *   the variance by 2×); the lower quartile ignores anything that is volatile up to 75 % of the time.
 * - At the start it has few samples and the quartile is near their minimum, so a symbol that starts
 *   volatile recovers as soon as one calm window has been sampled (a slow EWMA would take hundreds
 *   of bars). The very first window is the baseline until then, so a symbol that starts volatile
 *   is not called VOLATILE at first: the definition is relative, nothing else is known yet.
 * - After a volatile period longer than 75 % of 32 days the higher level becomes the new normal.
 */
export class VolatilityBaseline {
  private readonly samples = new Float64Array(BASELINE_SAMPLES);
  private readonly sorted = new Float64Array(BASELINE_SAMPLES);
  private count = 0;
  private sinceSample = 0;
  private current = Number.NaN;

  /** Feeds the sample variance of the latest 48-return window (call once per bar once it exists). */
  update(windowVariance: number): void {
    if (this.count > 0 && ++this.sinceSample < BASELINE_SAMPLE_EVERY) return;
    this.sinceSample = 0;
    const slot = this.count % BASELINE_SAMPLES;
    const n = Math.min(this.count, BASELINE_SAMPLES);
    // Keep `sorted` sorted incrementally: drop the sample being overwritten, insert the new one.
    if (this.count >= BASELINE_SAMPLES) {
      const at = lowerBound(this.sorted, n, this.samples[slot] as number);
      this.sorted.copyWithin(at, at + 1, n);
      this.insertSorted(n - 1, windowVariance);
    } else {
      this.insertSorted(n, windowVariance);
    }
    this.samples[slot] = windowVariance;
    this.count++;
    this.current = this.quartile();
  }

  /** The baseline variance, NaN before the first sample. */
  get variance(): number {
    return this.current;
  }

  private insertSorted(n: number, x: number): void {
    const at = lowerBound(this.sorted, n, x);
    this.sorted.copyWithin(at + 1, at, n);
    this.sorted[at] = x;
  }

  private quartile(): number {
    const n = Math.min(this.count, BASELINE_SAMPLES);
    const s = this.sorted;
    // Linear interpolation between order statistics (type 7 quantile).
    const pos = 0.25 * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(n - 1, lo + 1);
    const q = (s[lo] as number) + (pos - lo) * ((s[hi] as number) - (s[lo] as number));
    return q / LOWER_QUARTILE_CHI2_47;
  }

  toJSON(): VolatilityBaselineState {
    return { samples: encodeFloats(this.samples), count: this.count, sinceSample: this.sinceSample };
  }

  static fromJSON(state: VolatilityBaselineState): VolatilityBaseline {
    const b = new VolatilityBaseline();
    b.samples.set(decodeFloats(state.samples, BASELINE_SAMPLES, 'baseline.samples'));
    b.count = state.count;
    b.sinceSample = state.sinceSample;
    const n = Math.min(b.count, BASELINE_SAMPLES);
    b.sorted.set(b.samples.subarray(0, n));
    b.sorted.subarray(0, n).sort();
    if (b.count > 0) b.current = b.quartile();
    return b;
  }
}

/** First index in `a[0..n)` (sorted ascending) whose value is ≥ `x`. */
function lowerBound(a: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Number of inputs of the regime model (see {@link regimeInputs}). */
export const REGIME_INPUTS = 11;

const CLIP_LVR = 8;
const CLIP_T = 15;
const SPANS = [48, 24, 12] as const;

function clip(x: number, limit: number): number {
  return x > limit ? limit : x < -limit ? -limit : x;
}

/**
 * Writes the regime model's inputs into `out` (length {@link REGIME_INPUTS}):
 * `[1, ln(v48/b), t48, |t48|, ln(v24/b), t24, |t24|, ln(v12/b), t12, |t12|, ln(v6/b)]`, where `vn`
 * is the sample variance of the last `n` returns, `b` the baseline variance and
 * `tn = mean / √(vn/n)` the t-statistic of the drift over the same returns. The full 48-bar window
 * decides the regime; the shorter spans let the model see a switch inside the window. Log variance
 * ratios are clipped to ±8 and t to ±15; a zero variance (flat prices) gives t = 0 and the clipped
 * log ratio −8; a zero baseline gives ratio 0. Returns false when there are fewer than 48 returns
 * or no baseline yet.
 */
export function regimeInputs(fm: FeatureMatrix, baselineVariance: number, out: Float64Array): boolean {
  if (fm.returnCount < 48 || !(baselineVariance >= 0)) return false;
  out[0] = 1;
  let j = 1;
  for (const n of SPANS) {
    const v = (fm.returnVariance(n) * n) / (n - 1);
    const t = v > 0 ? clip(fm.returnMean(n) / Math.sqrt(v / n), CLIP_T) : 0;
    out[j++] = logRatio(v, baselineVariance);
    out[j++] = t;
    out[j++] = Math.abs(t);
  }
  out[j] = logRatio((fm.returnVariance(6) * 6) / 5, baselineVariance);
  return true;
}

function logRatio(v: number, b: number): number {
  if (!(b > 0)) return 0;
  if (!(v > 0)) return -CLIP_LVR;
  return clip(Math.log(v / b), CLIP_LVR);
}

/**
 * Softmax regression over the four regimes: `p_c ∝ exp(w_c · x)` with `x` from {@link regimeInputs}
 * and the weights of {@link REGIME_MODEL_WEIGHTS} (fitted by `src/strategic/fit-models.ts` on
 * training seeds, see that file). Writes the four probabilities (order of {@link REGIME_NAMES}) into
 * `probs` and returns the index of the most probable regime.
 */
export function regimePosterior(x: Float64Array, probs: Float64Array, weights = REGIME_MODEL_WEIGHTS): number {
  let maxLogit = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < 4; c++) {
    let z = 0;
    for (let j = 0; j < REGIME_INPUTS; j++) z += (weights[c * REGIME_INPUTS + j] as number) * (x[j] as number);
    probs[c] = z;
    if (z > maxLogit) maxLogit = z;
  }
  let sum = 0;
  for (let c = 0; c < 4; c++) {
    const e = Math.exp((probs[c] as number) - maxLogit);
    probs[c] = e;
    sum += e;
  }
  let best = 0;
  for (let c = 0; c < 4; c++) {
    probs[c] = (probs[c] as number) / sum;
    if ((probs[c] as number) > (probs[best] as number)) best = c;
  }
  return best;
}

/** The probabilities as the wire object; they sum to 1 up to rounding. */
export function toRegimeProbabilities(probs: ArrayLike<number>): RegimeProbabilities {
  return {
    BULL: probs[0] as number,
    BEAR: probs[1] as number,
    SIDEWAYS: probs[2] as number,
    VOLATILE: probs[3] as number,
  };
}

/** Name of regime index `i`. */
export function regimeName(i: number): RegimeName {
  return REGIME_NAMES[i] as RegimeName;
}
