/**
 * Independent whole-array reference implementations, written the textbook way (no streaming, no
 * compensated sums, each window summed from scratch), and the seeded test market used to compare
 * them with the streaming classes.
 */
import { SeededRandom } from '../../../src/util/random';

export type Series = (number | null)[];

export interface Bars {
  high: number[];
  low: number[];
  close: number[];
  volume: number[];
}

/**
 * A seeded random walk of `count` bars around `level`, with flat stretches (identical closes and
 * zero range: zero gains, zero losses, zero true range) and zero-volume gaps (the last close
 * repeated, high = low = close, volume 0).
 */
export function randomBars(seed: number, count: number, level = 100): Bars {
  const rng = new SeededRandom(seed);
  const bars: Bars = { high: [], low: [], close: [], volume: [] };
  let close = level;
  let flatLeft = 0;
  for (let i = 0; i < count; i++) {
    if (flatLeft === 0 && rng.next() < 0.004) flatLeft = rng.int(5, 60);
    const gap = flatLeft === 0 && rng.next() < 0.02;
    if (flatLeft > 0 || gap) {
      if (flatLeft > 0) flatLeft--;
      bars.high.push(close);
      bars.low.push(close);
      bars.close.push(close);
      bars.volume.push(0);
      continue;
    }
    const open = close;
    close = close * Math.exp(0.01 * rng.normal());
    bars.high.push(Math.max(open, close) * (1 + 0.003 * Math.abs(rng.normal())));
    bars.low.push(Math.min(open, close) * (1 - 0.003 * Math.abs(rng.normal())));
    bars.close.push(close);
    bars.volume.push(1000 * rng.next());
  }
  return bars;
}

function windowOf(x: readonly number[], end: number, n: number): number[] {
  return x.slice(end - n + 1, end + 1);
}

function mean(w: readonly number[]): number {
  let s = 0;
  for (const v of w) s += v;
  return s / w.length;
}

export function refSma(x: readonly number[], n: number): Series {
  return x.map((_, i) => (i < n - 1 ? null : mean(windowOf(x, i, n))));
}

/**
 * Population standard deviation by the corrected two-pass algorithm (Chan, Golub & LeVeque):
 * `(Σ(x−m)² − (Σ(x−m))²/n) / n`, whose second term removes the rounding error of the mean.
 */
export function refStd(x: readonly number[], n: number): Series {
  return x.map((_, i) => {
    if (i < n - 1) return null;
    const w = windowOf(x, i, n);
    const m = mean(w);
    let ss = 0;
    let s = 0;
    for (const v of w) {
      ss += (v - m) * (v - m);
      s += v - m;
    }
    return Math.sqrt(Math.max(ss - (s * s) / n, 0) / n);
  });
}

/** EMA with k = 2/(n+1), seeded with the mean of the first n values; nulls in the input are skipped. */
export function refEma(x: readonly (number | null)[], n: number): Series {
  const out: Series = [];
  const k = 2 / (n + 1);
  const seed: number[] = [];
  let e = 0;
  for (const v of x) {
    if (v === null) {
      out.push(null);
    } else if (seed.length < n) {
      seed.push(v);
      if (seed.length === n) {
        e = mean(seed);
        out.push(e);
      } else {
        out.push(null);
      }
    } else {
      e = k * v + (1 - k) * e;
      out.push(e);
    }
  }
  return out;
}

/** Wilder RSI in the textbook form 100 − 100/(1 + RS); 0 when there was no movement at all (TA-Lib). */
export function refRsi(x: readonly number[], n: number): Series {
  const out: Series = [null];
  let ag = 0;
  let al = 0;
  for (let i = 1; i < x.length; i++) {
    const d = (x[i] as number) - (x[i - 1] as number);
    const g = Math.max(d, 0);
    const l = Math.max(-d, 0);
    if (i < n) {
      ag += g;
      al += l;
      out.push(null);
      continue;
    }
    if (i === n) {
      ag = (ag + g) / n;
      al = (al + l) / n;
    } else {
      ag = (ag * (n - 1) + g) / n;
      al = (al * (n - 1) + l) / n;
    }
    out.push(al === 0 ? (ag === 0 ? 0 : 100) : 100 - 100 / (1 + ag / al));
  }
  return out;
}

export function refMacd(x: readonly number[], fast: number, slow: number, signal: number) {
  const f = refEma(x, fast);
  const s = refEma(x, slow);
  const macd: Series = x.map((_, i) => (s[i] == null ? null : (f[i] as number) - (s[i])));
  const sig = refEma(macd, signal);
  const hist: Series = macd.map((m, i) => (sig[i] == null ? null : (m as number) - (sig[i])));
  return { macd, signal: sig, hist };
}

export function refBollinger(x: readonly number[], n: number, k: number) {
  const mid = refSma(x, n);
  const sd = refStd(x, n);
  return {
    upper: mid.map((m, i) => (m === null ? null : m + k * (sd[i] as number))),
    middle: mid,
    lower: mid.map((m, i) => (m === null ? null : m - k * (sd[i] as number))),
  };
}

export function refTrueRange(b: Bars): Series {
  return b.close.map((_, i) => {
    if (i === 0) return null;
    const h = b.high[i] as number;
    const l = b.low[i] as number;
    const pc = b.close[i - 1] as number;
    return Math.max(h - l, Math.abs(h - pc), Math.abs(l - pc));
  });
}

/** Wilder ATR: mean of true ranges 1..n, then (atr·(n−1) + tr)/n. */
export function refAtr(b: Bars, n: number): Series {
  const tr = refTrueRange(b);
  const out: Series = [];
  let atr = 0;
  for (let i = 0; i < tr.length; i++) {
    if (i < n) {
      out.push(null);
      continue;
    }
    if (i === n) {
      atr = mean(tr.slice(1, n + 1) as number[]);
    } else {
      atr = (atr * (n - 1) + (tr[i] as number)) / n;
    }
    out.push(atr);
  }
  return out;
}

export function refMin(x: readonly number[], n: number): Series {
  return x.map((_, i) => (i < n - 1 ? null : Math.min(...windowOf(x, i, n))));
}

export function refMax(x: readonly number[], n: number): Series {
  return x.map((_, i) => (i < n - 1 ? null : Math.max(...windowOf(x, i, n))));
}

/** Pearson correlation, two-pass; 0 when either window is constant. */
export function refCorrelation(x: readonly number[], y: readonly number[], n: number): Series {
  return x.map((_, i) => {
    if (i < n - 1) return null;
    const wx = windowOf(x, i, n);
    const wy = windowOf(y, i, n);
    if (wx.every((v) => v === wx[0]) || wy.every((v) => v === wy[0])) return 0;
    const mx = mean(wx);
    const my = mean(wy);
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (let j = 0; j < n; j++) {
      const dx = (wx[j] as number) - mx;
      const dy = (wy[j] as number) - my;
      sxy += dx * dy;
      sxx += dx * dx;
      syy += dy * dy;
    }
    return sxy / Math.sqrt(sxx * syy);
  });
}

/** OLS slope of the window against 0..n−1. */
export function refSlope(y: readonly number[], n: number): Series {
  return y.map((_, i) => {
    if (i < n - 1) return null;
    const w = windowOf(y, i, n);
    const my = mean(w);
    const mt = (n - 1) / 2;
    let num = 0;
    let den = 0;
    for (let t = 0; t < n; t++) {
      num += (t - mt) * ((w[t] as number) - my);
      den += (t - mt) * (t - mt);
    }
    return num / den;
  });
}

/** |x_t − x_{t−n}| / Σ|Δx| over n changes; 0 when nothing moved. */
export function refEfficiencyRatio(x: readonly number[], n: number): Series {
  return x.map((_, i) => {
    if (i < n) return null;
    let path = 0;
    for (let j = i - n + 1; j <= i; j++) path += Math.abs((x[j] as number) - (x[j - 1] as number));
    const net = Math.abs((x[i] as number) - (x[i - n] as number));
    return path === 0 ? 0 : net / path;
  });
}

export interface Comparison {
  /** First index where one series is null and the other is not, or −1. */
  nullMismatch: number;
  /** Largest |ours − ref| / max(|ref|, floor) over the non-null entries. */
  worst: number;
  worstIndex: number;
  /** Number of non-null entries compared (guards against comparing nothing). */
  compared: number;
}

/**
 * Compares two series entry by entry. `floor` (a number or one per entry) keeps the relative
 * error meaningful for values that cross zero: it is the scale of the quantities the value was
 * computed from.
 */
export function compare(ours: Series, ref: Series, floor: number | readonly number[] = 0): Comparison {
  const c: Comparison = { nullMismatch: -1, worst: 0, worstIndex: -1, compared: 0 };
  if (ours.length !== ref.length) throw new Error(`length ${ours.length} vs ${ref.length}`);
  for (let i = 0; i < ref.length; i++) {
    const a = ours[i];
    const b = ref[i];
    if ((a === null) !== (b === null)) {
      if (c.nullMismatch < 0) c.nullMismatch = i;
      continue;
    }
    if (a === null || b === null || a === undefined || b === undefined) continue;
    c.compared++;
    const f = typeof floor === 'number' ? floor : (floor[i] as number);
    const scale = Math.max(Math.abs(b), f);
    const err = a === b ? 0 : scale === 0 ? Number.POSITIVE_INFINITY : Math.abs(a - b) / scale;
    if (!(err <= c.worst)) {
      c.worst = err;
      c.worstIndex = i;
    }
  }
  return c;
}

/** Index of the first entry that is not null. */
export function firstValue(s: Series): number {
  return s.findIndex((v) => v !== null);
}
