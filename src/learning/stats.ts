import { SeededRandom } from '../util/random';
import { quantile } from '../util/quantile';

/**
 * Statistics of per-bar return series: Sharpe, drawdown and moving-block bootstrap intervals
 * (plain and paired). Bar returns of a trading rule are autocorrelated (a position is held for many
 * bars), so resampling draws whole blocks of consecutive bars, not single bars. Everything is seeded.
 */

/** 5m bars per year (crypto trades 24/7): Sharpe is annualised with √(288 × 365). */
export const BARS_PER_YEAR_5M = 288 * 365;

/** A point estimate with its bootstrap interval. */
export interface Interval {
  estimate: number;
  lo: number;
  hi: number;
}

/** Per-bar simple returns of an equity path. */
export function barReturns(equity: readonly number[]): number[] {
  const r: number[] = [];
  for (let i = 1; i < equity.length; i++) r.push((equity[i] as number) / (equity[i - 1] as number) - 1);
  return r;
}

/** Annualised Sharpe of per-bar returns (0 when they do not vary: a rule that never trades). */
export function annualisedSharpe(returns: ArrayLike<number>, barsPerYear = BARS_PER_YEAR_5M): number {
  const n = returns.length;
  if (n < 2) return 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += returns[i] as number;
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += ((returns[i] as number) - mean) ** 2;
  const sd = Math.sqrt(ss / (n - 1));
  return sd > 1e-15 ? (mean / sd) * Math.sqrt(barsPerYear) : 0;
}

/** Compounded net return of per-bar returns. */
export function netReturn(returns: ArrayLike<number>): number {
  let e = 1;
  for (let i = 0; i < returns.length; i++) e *= 1 + (returns[i] as number);
  return e - 1;
}

/** Largest peak-to-trough fall of the equity compounded from per-bar returns, as a fraction. */
export function maxDrawdown(returns: ArrayLike<number>): number {
  let e = 1;
  let peak = 1;
  let mdd = 0;
  for (let i = 0; i < returns.length; i++) {
    e *= 1 + (returns[i] as number);
    if (e > peak) peak = e;
    mdd = Math.max(mdd, 1 - e / peak);
  }
  return mdd;
}

/** Options of the bootstrap functions. */
export interface BootstrapOptions {
  /** Resamples. @defaultValue 1000 */
  samples?: number;
  /** Block length in bars. @defaultValue 48 (4 hours of 5m bars) */
  block?: number;
  /** Two-sided coverage of the interval. @defaultValue 0.95 */
  level?: number;
  /** @defaultValue 1 */
  seed?: number;
}

/** Indices of one moving-block resample of `n` bars (circular blocks of `block`). */
function resampleIndices(n: number, block: number, rng: SeededRandom, out: Int32Array): void {
  let k = 0;
  while (k < n) {
    const start = rng.int(0, n - 1);
    for (let j = 0; j < block && k < n; j++) out[k++] = (start + j) % n;
  }
}

/**
 * Percentile interval of `stat` over moving-block resamples of one or more aligned series: every
 * resample uses the same bar indices for all series (paired), so `stat` can compare them.
 */
export function blockBootstrap(
  series: readonly (readonly number[])[],
  stat: (resampled: Float64Array[]) => number,
  options: BootstrapOptions = {},
): Interval {
  const n = series[0]?.length ?? 0;
  if (series.some((s) => s.length !== n)) throw new RangeError('paired series must have the same length');
  const estimate = stat(series.map((s) => Float64Array.from(s)));
  if (n < 2) return { estimate, lo: Number.NaN, hi: Number.NaN };
  const samples = options.samples ?? 1000;
  const block = Math.max(1, Math.min(n, options.block ?? 48));
  const level = options.level ?? 0.95;
  const rng = new SeededRandom(options.seed ?? 1);
  const idx = new Int32Array(n);
  const bufs = series.map(() => new Float64Array(n));
  const values: number[] = [];
  for (let s = 0; s < samples; s++) {
    resampleIndices(n, block, rng, idx);
    series.forEach((src, k) => {
      const buf = bufs[k] as Float64Array;
      for (let i = 0; i < n; i++) buf[i] = src[idx[i] as number] as number;
    });
    const v = stat(bufs);
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  return { estimate, lo: quantile(values, (1 - level) / 2), hi: quantile(values, 1 - (1 - level) / 2) };
}

/** Interval of one statistic of one return series. */
export function bootstrapInterval(returns: readonly number[], stat: (r: Float64Array) => number, options: BootstrapOptions = {}): Interval {
  return blockBootstrap([returns], (rs) => stat(rs[0] as Float64Array), options);
}

/**
 * Paired interval of the annualised Sharpe gain of `a` over `b` (the same bars, the same
 * resampled indices for both), e.g. a candidate policy against its parent on a held-out window.
 */
export function pairedSharpeGain(a: readonly number[], b: readonly number[], options: BootstrapOptions = {}): Interval {
  return blockBootstrap([a, b], (rs) => annualisedSharpe(rs[0] as Float64Array) - annualisedSharpe(rs[1] as Float64Array), options);
}
