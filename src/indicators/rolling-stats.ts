import { decodeFloat, decodeFloats, encodeFloat, encodeFloats, type EncodedFloat } from './float-codec';
import { assertPeriod, stateInt } from './validation';

/**
 * Recompute exactly once the magnitude of the squared deviations that passed through the running
 * sums since the last exact recompute exceeds this multiple of what is left in the window. Each
 * term carries a rounding error of about 1.1e-16 of its size, so the relative error of the
 * variance stays near 1e-12 at worst; a value far larger would let a single huge jump leave
 * garbage behind once it leaves the window.
 */
const BUDGET_RATIO = 1e4;

/** Serialised {@link RollingStats} state: plain JSON, restored exactly by {@link RollingStats.fromJSON}. */
export interface RollingStatsState {
  period: number;
  /** Ring buffer in storage order; slots past `count` are unused. */
  ring: EncodedFloat[];
  head: number;
  count: number;
  shift: EncodedFloat;
  s1: EncodedFloat;
  c1: EncodedFloat;
  s2: EncodedFloat;
  c2: EncodedFloat;
  budget: EncodedFloat;
  sinceRecompute: number;
}

/**
 * Rolling sum, mean, population variance and standard deviation over the last `period` values,
 * O(1) per update and allocation-free.
 *
 * Numerics: the window is kept as sums of deviations from a shift `K` (close to the window mean),
 * `S1 = Σ(x−K)` and `S2 = Σ(x−K)²`, each a compensated (TwoSum) sum. Shifting avoids the
 * catastrophic cancellation of `Σx² − (Σx)²/n` at price levels like 1e8. An exact two-pass
 * recompute from the ring buffer (which also moves `K` to the current mean) runs every `period`
 * updates, which is O(1) amortised and bounds drift, and at once when a large value has left the
 * window (see the error budget above). A window whose values are all equal is recentred on that
 * value, so its variance is exactly 0 and its mean exactly that value.
 *
 * Before the window is full (`ready` false) the statistics cover the values seen so far; with no
 * values at all they are 0. Emits no events.
 */
export class RollingStats {
  /** Window length. */
  readonly period: number;
  private readonly ring: Float64Array;
  private head = 0;
  private n = 0;
  /** 1 / n, kept because multiplying is much cheaper than dividing on every update. */
  private invN = 0;
  private shift = 0;
  private s1 = 0;
  private c1 = 0;
  private s2 = 0;
  private c2 = 0;
  private budget = 0;
  private sinceRecompute = 0;

  /**
   * @param period - number of values in the window, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    assertPeriod('RollingStats', 'period', period);
    this.period = period;
    this.ring = new Float64Array(period);
  }

  /** Adds `x` to the window, dropping the oldest value once the window is full. */
  update(x: number): void {
    const period = this.period;
    const ring = this.ring;
    const head = this.head;
    let n = this.n;
    if (n === 0) this.shift = x;
    const shift = this.shift;
    const dNew = x - shift;
    const sqNew = dNew * dNew;
    let t1: number;
    let t2: number;
    if (n === period) {
      const dOld = (ring[head] as number) - shift;
      const sqOld = dOld * dOld;
      t1 = dNew - dOld;
      t2 = sqNew - sqOld;
      this.budget += sqNew + sqOld;
    } else {
      this.n = ++n;
      this.invN = 1 / n;
      t1 = dNew;
      t2 = sqNew;
      this.budget += sqNew;
    }
    ring[head] = x;
    this.head = head + 1 === period ? 0 : head + 1;

    // Compensated additions with Knuth's branch-free TwoSum: the rounding error of each addition
    // goes into c1/c2. (Neumaier's variant needs a data-dependent branch, which mispredicts here.)
    let s = this.s1;
    let t = s + t1;
    let z = t - s;
    this.c1 += s - (t - z) + (t1 - z);
    this.s1 = t;
    s = this.s2;
    t = s + t2;
    z = t - s;
    this.c2 += s - (t - z) + (t2 - z);
    this.s2 = t;

    const sum1 = this.s1 + this.c1;
    const centred = this.s2 + this.c2 - sum1 * sum1 * this.invN;
    if (++this.sinceRecompute >= period || this.budget > BUDGET_RATIO * centred) this.recompute();
  }

  /** True once `period` values have been seen. */
  get ready(): boolean {
    return this.n === this.period;
  }

  /** Number of values currently in the window (at most `period`). */
  get count(): number {
    return this.n;
  }

  /** Sum of the values in the window (0 before the first update). */
  get sum(): number {
    return this.n === 0 ? 0 : this.shift * this.n + (this.s1 + this.c1);
  }

  /** Mean of the values in the window (0 before the first update). */
  get mean(): number {
    return this.n === 0 ? 0 : this.shift + (this.s1 + this.c1) * this.invN;
  }

  /** Population variance (divisor n) of the values in the window, never negative. */
  get variance(): number {
    const n = this.n;
    if (n === 0) return 0;
    const m = (this.s1 + this.c1) * this.invN;
    const v = (this.s2 + this.c2) * this.invN - m * m;
    return v > 0 ? v : 0;
  }

  /** Population standard deviation of the values in the window. */
  get std(): number {
    return Math.sqrt(this.variance);
  }

  /** Recomputes the shift and both sums exactly from the ring buffer. */
  private recompute(): void {
    const ring = this.ring;
    const n = this.n;
    // Before the window is full the values occupy slots 0..n-1; afterwards all slots.
    let s = 0;
    let c = 0;
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const v = ring[i] as number;
      const t = s + v;
      c += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
      s = t;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    // A flat window is centred on its value itself, so its deviations are exactly zero.
    const shift = lo === hi ? lo : (s + c) / n;
    let s1 = 0;
    let c1 = 0;
    let s2 = 0;
    let c2 = 0;
    for (let i = 0; i < n; i++) {
      const d = (ring[i] as number) - shift;
      let t = s1 + d;
      c1 += Math.abs(s1) >= Math.abs(d) ? s1 - t + d : d - t + s1;
      s1 = t;
      const q = d * d;
      t = s2 + q;
      c2 += Math.abs(s2) >= Math.abs(q) ? s2 - t + q : q - t + s2;
      s2 = t;
    }
    this.shift = shift;
    this.s1 = s1;
    this.c1 = c1;
    this.s2 = s2;
    this.c2 = c2;
    this.budget = s2 + c2;
    this.sinceRecompute = 0;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): RollingStatsState {
    return {
      period: this.period,
      ring: encodeFloats(this.ring),
      head: this.head,
      count: this.n,
      shift: encodeFloat(this.shift),
      s1: encodeFloat(this.s1),
      c1: encodeFloat(this.c1),
      s2: encodeFloat(this.s2),
      c2: encodeFloat(this.c2),
      budget: encodeFloat(this.budget),
      sinceRecompute: this.sinceRecompute,
    };
  }

  /**
   * Restores a window saved with {@link RollingStats.toJSON}; it continues bit for bit as the
   * original would have.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: RollingStatsState): RollingStats {
    const r = new RollingStats(state.period);
    r.ring.set(decodeFloats(state.ring, r.period, 'ring'));
    r.head = stateInt(state.head, 'head', 0, r.period - 1);
    r.n = stateInt(state.count, 'count', 0, r.period);
    r.invN = r.n === 0 ? 0 : 1 / r.n;
    r.shift = decodeFloat(state.shift, 'shift');
    r.s1 = decodeFloat(state.s1, 's1');
    r.c1 = decodeFloat(state.c1, 'c1');
    r.s2 = decodeFloat(state.s2, 's2');
    r.c2 = decodeFloat(state.c2, 'c2');
    r.budget = decodeFloat(state.budget, 'budget');
    r.sinceRecompute = stateInt(state.sinceRecompute, 'sinceRecompute', 0, r.period);
    return r;
  }
}
