import type { RegimeName, RegimeProbabilities } from '../../schemas/strategic-context.schema';
import { decodeFloat, decodeFloats, encodeFloat, encodeFloats, type EncodedFloat } from '../indicators/float-codec';
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

  /** Samples taken so far. */
  get sampleCount(): number {
    return this.count;
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

/** Length of {@link RegimeDetector.switchEvidence}. */
export const SWITCH_EVIDENCE = 6;

/** Number of inputs of the regime model (see {@link RegimeDetector.inputs}). */
export const REGIME_INPUTS = 11;

const CLIP_LVR = 8;
/** The detector's spans, in returns. */
const SPANS = [6, 12, 24, 48] as const;
const CLIP_T = 15;
/**
 * A return beyond this many local standard deviations is clipped to it before it enters the
 * detector's statistics (jumps and heavy tails move a variance by the square of their size).
 */
export const CLIP_SIGMAS = 4;
/** Weight of the newest |return| in the local scale (an EWMA with a span of about 20 bars). */
const SCALE_ALPHA = 2 / 21;
/** E|Z| of a standard normal: turns a mean absolute return into a standard deviation. */
const MEAN_ABS_NORMAL = Math.sqrt(2 / Math.PI);

function clip(x: number, limit: number): number {
  return x > limit ? limit : x < -limit ? -limit : x;
}

/** Serialised {@link RegimeDetector}. */
export interface RegimeDetectorState {
  v: 1;
  /** The last 48 clipped returns, in ring order (slot = return index mod 48). */
  ring: EncodedFloat[];
  /** Sums and sums of squares of the last 6, 12, 24, 48 clipped returns. */
  sums: EncodedFloat[];
  squares: EncodedFloat[];
  scale: EncodedFloat;
  seen: number;
  sinceClip: number;
  baseline: VolatilityBaselineState;
  /** {@link RegimeDetector.ambiguity} and the windows behind it (absent in older states: 0, 0). */
  ambiguity?: EncodedFloat;
  ambiguityWindows?: number;
}

/** Windows the symbol's {@link RegimeDetector.ambiguity} averages over (an EWMA after warm-up). */
export const AMBIGUITY_WINDOWS = 256;

/**
 * The statistics the regime model reads, from a symbol's 30m log returns, in O(1) per bar.
 * Emits no events.
 *
 * Each return is first divided by √k when it spans k 30m periods (a gap in the feed), then clipped
 * to ±4 local standard deviations, the local scale being an EWMA (span ≈ 20 bars) of the clipped
 * |returns| divided by √(2/π); the first 20 returns are not clipped. Means and variances of the
 * last 6, 12, 24 and 48 clipped returns follow (running sums over a ring of 48), and the baseline ({@link VolatilityBaseline})
 * is fed the variance of the last 48. Clipping is what keeps a single jump, or the tail of a
 * Student-t market, from turning a calm window VOLATILE or a flat one BULL.
 */
export class RegimeDetector {
  private readonly ring = new Float64Array(48);
  private readonly sums = new Float64Array(4);
  private readonly squares = new Float64Array(4);
  private scale = 0;
  private seen = 0;
  private sinceClip = Number.MAX_SAFE_INTEGER;
  private baselineStats = new VolatilityBaseline();
  private ambiguityShare = 0;
  private ambiguityWindows = 0;

  /** Adds the log return of the newest bar, which spans `periods` (≥ 1) 30m periods. */
  update(logReturn: number, periods = 1): void {
    let r = periods > 1 ? logReturn / Math.sqrt(periods) : logReturn;
    if (this.seen >= 20 && this.scale > 0) {
      const limit = (CLIP_SIGMAS * this.scale) / MEAN_ABS_NORMAL;
      if (r > limit || r < -limit) {
        r = r > 0 ? limit : -limit;
        this.sinceClip = 0;
      } else if (this.sinceClip < Number.MAX_SAFE_INTEGER) this.sinceClip++;
    } else if (this.sinceClip < Number.MAX_SAFE_INTEGER) this.sinceClip++;
    const a = Math.abs(r);
    this.scale = this.seen < 20 ? this.scale + (a - this.scale) / (this.seen + 1) : this.scale + SCALE_ALPHA * (a - this.scale);
    this.push(r);
    if (this.seen >= 48) {
      const v = this.variance(3) * (48 / 47);
      this.baselineStats.update(v);
      const t = v > 0 ? Math.abs(this.mean(3) / Math.sqrt(v / 48)) : 0;
      const n = this.ambiguityWindows < AMBIGUITY_WINDOWS ? ++this.ambiguityWindows : AMBIGUITY_WINDOWS;
      this.ambiguityShare += ((t >= 1.5 && t <= 3.5 ? 1 : 0) - this.ambiguityShare) / n;
    }
  }


  /**
   * Share of the symbol's recent 48-bar windows (a running mean over the first
   * {@link AMBIGUITY_WINDOWS}, then an EWMA of that span) whose drift t-statistic lies between 1.5
   * and 3.5: neither clearly flat nor clearly trending. A market whose trends are weak spends much
   * of its time there, and its calls are less often right than the same window in a market of
   * strong trends; the confidence model reads it (0 before 48 returns).
   */
  get ambiguity(): number {
    return this.ambiguityShare;
  }

  /**
   * Adds a clipped return to the ring and the running sums of the four spans (plain sums: the
   * returns are small and the sums are recomputed exactly from the ring every 48 returns).
   */
  private push(r: number): void {
    const n = this.seen;
    const ring = this.ring;
    const slot = n % 48;
    for (let k = 0; k < 4; k++) {
      const span = SPANS[k] as number;
      if (n >= span) {
        const old = ring[(n - span) % 48] as number;
        this.sums[k] = (this.sums[k] as number) - old;
        this.squares[k] = (this.squares[k] as number) - old * old;
      }
      this.sums[k] = (this.sums[k] as number) + r;
      this.squares[k] = (this.squares[k] as number) + r * r;
    }
    ring[slot] = r;
    this.seen = n + 1;
    if (this.seen % 48 === 0) {
      for (let k = 0; k < 4; k++) {
        const span = SPANS[k] as number;
        let sum = 0;
        let sq = 0;
        for (let i = this.seen - span; i < this.seen; i++) {
          const x = ring[i % 48] as number;
          sum += x;
          sq += x * x;
        }
        this.sums[k] = sum;
        this.squares[k] = sq;
      }
    }
  }

  /** Mean of span `k` (0..3 = the last 6, 12, 24, 48 returns); valid once 48 returns exist. */
  private mean(k: number): number {
    return (this.sums[k] as number) / (SPANS[k] as number);
  }

  /** Population variance of span `k`, never negative. */
  private variance(k: number): number {
    const m = this.mean(k);
    const v = (this.squares[k] as number) / (SPANS[k] as number) - m * m;
    return v > 0 ? v : 0;
  }

  /** The baseline variance of a calm 30m return (NaN before 48 returns). */
  get baselineVariance(): number {
    return this.baselineStats.variance;
  }

  /** Baseline samples taken so far (one per 12 bars after the first 48 returns, at most 128 kept). */
  get baselineSamples(): number {
    return this.baselineStats.sampleCount;
  }

  /** True when a return was clipped (a jump or an extreme tail) within the last 48 returns. */
  get jumpInWindow(): boolean {
    return this.sinceClip < 48;
  }

  /** Writes `ln(vn/b), tn, |tn|` of span `k` (`n` returns) at `out[j..j+2]`. */
  private span(k: number, n: number, b: number, out: Float64Array, j: number): void {
    const v = (this.variance(k) * n) / (n - 1);
    const t = v > 0 ? clip(this.mean(k) / Math.sqrt(v / n), CLIP_T) : 0;
    out[j] = logRatio(v, b);
    out[j + 1] = t;
    out[j + 2] = t < 0 ? -t : t;
  }

  /**
   * Writes the regime model's inputs into `out` (length {@link REGIME_INPUTS}):
   * `[1, ln(v48/b), t48, |t48|, ln(v24/b), t24, |t24|, ln(v12/b), t12, |t12|, ln(v6/b)]`, where `vn`
   * is the sample variance of the last `n` clipped returns, `b` the baseline variance and
   * `tn = mean / √(vn/n)` the t-statistic of their drift. The 48-bar window decides the regime; the
   * shorter spans let the model see a switch inside the window. Log ratios are clipped to ±8 and t
   * to ±15; a zero variance gives t = 0 and the log ratio −8. Returns false before 48 returns.
   */
  inputs(out: Float64Array): boolean {
    const b = this.baselineStats.variance;
    if (this.seen < 48 || !(b >= 0)) return false;
    out[0] = 1;
    this.span(3, 48, b, out, 1);
    this.span(2, 24, b, out, 4);
    this.span(1, 12, b, out, 7);
    out[10] = logRatio((this.variance(0) * 6) / 5, b);
    return true;
  }

  /**
   * Writes how the newest part of the window differs from the rest, where a switch inside the
   * window shows (length {@link SWITCH_EVIDENCE}): `[t of (mean of the last 12 − mean of the 36
   * before), ln(v12 / v36), the same for the last 24 against the 24 before, the same for the last 6
   * against the 42 before]`, over clipped returns, t clipped to ±15 and log ratios to ±8. The last
   * 6 bars are where a switch shows first (3 hours after it). Zeros before 48 returns.
   */
  switchEvidence(out: Float64Array): void {
    if (this.seen < 48) {
      out.fill(0, 0, SWITCH_EVIDENCE);
      return;
    }
    const sums = this.sums;
    const squares = this.squares;
    const s48 = sums[3] as number;
    const q48 = squares[3] as number;
    const m48 = s48 / 48;
    const v48 = Math.max(0, q48 / 48 - m48 * m48) * (48 / 47);
    for (let k = 1, j = 0; j < SWITCH_EVIDENCE; k = k === 2 ? 0 : k + 1, j += 2) {
      const n = SPANS[k] as number;
      const m = 48 - n;
      const sRecent = sums[k] as number;
      const mRecent = sRecent / n;
      const vRecent = (squares[k] as number) / n - mRecent * mRecent;
      const mRest = (s48 - sRecent) / m;
      const vRest = (q48 - (squares[k] as number)) / m - mRest * mRest;
      const se = Math.sqrt(v48 * (1 / n + 1 / m));
      out[j] = se > 0 ? clip((mRecent - mRest) / se, CLIP_T) : 0;
      out[j + 1] = vRest > 0 && vRecent > 0 ? clip(Math.log(vRecent / vRest), CLIP_LVR) : 0;
    }
  }

  toJSON(): RegimeDetectorState {
    return {
      v: 1,
      ring: encodeFloats(this.ring),
      sums: encodeFloats(this.sums),
      squares: encodeFloats(this.squares),
      scale: encodeFloat(this.scale),
      seen: this.seen,
      sinceClip: this.sinceClip,
      baseline: this.baselineStats.toJSON(),
      ambiguity: encodeFloat(this.ambiguityShare),
      ambiguityWindows: this.ambiguityWindows,
    };
  }

  static fromJSON(state: RegimeDetectorState): RegimeDetector {
    if (state.v !== 1) throw new TypeError(`unsupported regime detector state version ${String(state.v)}`);
    const d = new RegimeDetector();
    d.ring.set(decodeFloats(state.ring, 48, 'detector.ring'));
    d.sums.set(decodeFloats(state.sums, 4, 'detector.sums'));
    d.squares.set(decodeFloats(state.squares, 4, 'detector.squares'));
    d.scale = decodeFloat(state.scale, 'detector.scale');
    d.seen = state.seen;
    d.sinceClip = state.sinceClip;
    d.baselineStats = VolatilityBaseline.fromJSON(state.baseline);
    if (state.ambiguity !== undefined) d.ambiguityShare = decodeFloat(state.ambiguity, 'detector.ambiguity');
    d.ambiguityWindows = state.ambiguityWindows ?? 0;
    return d;
  }

  /**
   * A detector for a state saved before the detector existed: the baseline as it was, and the
   * rolling statistics rebuilt from the last 48 returns of the matrix (so no warm-up is repeated).
   */
  static fromMatrix(fm: FeatureMatrix, baseline: VolatilityBaselineState): RegimeDetector {
    const d = new RegimeDetector();
    const n = Math.min(48, fm.bars - 1);
    for (let k = n; k >= 1; k--) {
      const r = fm.logReturnOver(k) - (k > 1 ? fm.logReturnOver(k - 1) : 0);
      d.update(r);
    }
    d.baselineStats = VolatilityBaseline.fromJSON(baseline);
    return d;
  }
}

/**
 * The plain rule of issue 10, kept as the yardstick the model is measured against: t-statistic of
 * the 48 raw returns' mean beyond ±2 → BULL/BEAR, else their sample variance above 2× the baseline
 * → VOLATILE, else SIDEWAYS. Returns the regime index.
 */
export function plainRuleRegime(mean48: number, sampleVariance48: number, baselineVariance: number): number {
  const t = sampleVariance48 > 0 ? mean48 / Math.sqrt(sampleVariance48 / 48) : 0;
  if (t > 2) return 0;
  if (t < -2) return 1;
  return sampleVariance48 > 2 * baselineVariance ? 3 : 2;
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
