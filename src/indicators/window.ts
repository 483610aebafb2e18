/**
 * What the rolling-window indicators share, written once: the ring of the last `period` values
 * and its bookkeeping, the compensated addition steps, the error budget that triggers an exact
 * recompute, and the exact recompute passes over the ring.
 *
 * A compensated sum is a pair of doubles in {@link RingWindow.sums}: the running sum at index `i`
 * and the collected rounding errors at `i + 1`; its value is `sums[i] + sums[i + 1]`. Two steps
 * exist on purpose, and each indicator keeps the one it has always used, since the step decides
 * the bits of every result: Knuth's branch-free TwoSum ({@link RingWindow.addTwoSum}) and
 * Neumaier's ({@link RingWindow.addNeumaier}), which branches on the larger operand.
 *
 * The helpers are methods rather than imported functions on purpose: in the per-bar update, a
 * call through a module import (as tsx and Jest compile them) ran several times slower in V8.
 */
import { type EncodedFloat } from './float-codec';
import { floats, int, LAST_SLOT, PERIOD } from './state-fields';
import { assertPeriod } from './validation';

/**
 * Recompute exactly once the magnitude that passed through the running sums since the last exact
 * recompute exceeds this multiple of what is left in the window. Each term carries a rounding
 * error of about 1.1e-16 of its size, so the relative error stays near 1e-12 at worst; a value
 * far larger would let a single huge jump leave garbage behind once it leaves the window.
 */
const BUDGET_RATIO = 1e4;

/** The saved-state keys every ring window has (besides its ring or rings). */
export interface RingState {
  period: number;
  head: number;
  count: number;
  sinceRecompute: number;
}

/** The saved state of a window kept as shifted, compensated sums S1 = Σ(x−K) and S2 = Σ(x−K)². */
export interface ShiftedSumsState extends RingState {
  /** Ring buffer in storage order; slots past `count` are unused. */
  ring: EncodedFloat[];
  shift: EncodedFloat;
  s1: EncodedFloat;
  c1: EncodedFloat;
  s2: EncodedFloat;
  c2: EncodedFloat;
  budget: EncodedFloat;
}

/** The saved-state fields of {@link RingWindow}, for the subclasses' field tables. */
export const RING = {
  ring: floats('ring'),
  head: int('head', LAST_SLOT),
  count: int('count', PERIOD, 'n'),
  sinceRecompute: int('sinceRecompute', PERIOD),
};

/** The fields most ring windows save first, in this order. */
export const RING_PREFIX = [RING.ring, RING.head, RING.count, RING.sinceRecompute];

/**
 * The ring of the last `period` values: `ring[head]` is the oldest once `n === period`, before
 * that the values sit in slots `0 … n−1`. `sinceRecompute` counts updates since the subclass last
 * recomputed its sums exactly from the ring.
 */
export class RingWindow {
  /** Window length. */
  readonly period: number;
  protected readonly ring: Float64Array;
  protected head = 0;
  protected n = 0;
  protected sinceRecompute = 0;
  /** A second ring in step with `ring` for windows of pairs (empty unless asked for). */
  protected readonly paired: Float64Array;
  /** The subclass's compensated sums, pairs as described in the module comment. */
  protected readonly sums: Float64Array;

  /**
   * @param owner - class name for the error message.
   * @param period - window length, an integer >= `minPeriod`.
   * @param sumCount - number of compensated sums the subclass keeps.
   * @param pairs - whether the window also keeps {@link RingWindow.paired}.
   * @throws RangeError when `period` is not an integer >= `minPeriod`.
   */
  constructor(owner: string, period: number, minPeriod: number, sumCount: number, pairs = false) {
    assertPeriod(owner, 'period', period, minPeriod);
    this.period = period;
    this.ring = new Float64Array(period);
    this.paired = new Float64Array(pairs ? period : 0);
    this.sums = new Float64Array(2 * sumCount);
  }

  /** True once `period` values have been seen. */
  get ready(): boolean {
    return this.n === this.period;
  }

  /** {@link RingWindow.push} for windows of pairs: `y` goes into the same slot of `paired`. */
  protected pushPair(x: number, y: number): void {
    this.paired[this.head] = y;
    this.push(x);
  }

  /** Writes `x` over the slot at `head` (the oldest value once full) and moves `head` on. */
  protected push(x: number): void {
    const head = this.head;
    this.ring[head] = x;
    this.head = head + 1 === this.period ? 0 : head + 1;
  }

  /** The value of the compensated sum at `i`. */
  protected total(i: number): number {
    return (this.sums[i] as number) + (this.sums[i + 1] as number);
  }

  /** Adds `x` to the compensated sum at `i` with Knuth's TwoSum step. */
  protected addTwoSum(i: number, x: number): void {
    const sums = this.sums;
    const s = sums[i] as number;
    const t = s + x;
    const z = t - s;
    sums[i + 1] = (sums[i + 1] as number) + (s - (t - z) + (x - z));
    sums[i] = t;
  }

  /** Adds `x` to the compensated sum at `i` with Neumaier's step. */
  protected addNeumaier(i: number, x: number): void {
    const sums = this.sums;
    const s = sums[i] as number;
    const t = s + x;
    sums[i + 1] = (sums[i + 1] as number) + (Math.abs(s) >= Math.abs(x) ? s - t + x : x - t + s);
    sums[i] = t;
  }

  /** `Σd² − (Σd)²/n` from the compensated sums `Σd` at `i1` and `Σd²` at `i2`. */
  protected centred(i1: number, i2: number): number {
    const s = this.total(i1);
    return this.total(i2) - (s * s) / this.n;
  }

  /** Counts an update; true once `period` updates have passed since the last exact recompute. */
  protected due(): boolean {
    return ++this.sinceRecompute >= this.period;
  }

  /** True when the magnitude `budget` that passed through a sum is too large for what is `left`. */
  protected overBudget(budget: number, left: number): boolean {
    return budget > BUDGET_RATIO * left;
  }

  /**
   * Sets the compensated sum at `i` to the sum of `values[0 … count−1]` added in that order, with
   * Neumaier's step (`neumaier`) or else TwoSum, and restarts the recompute count.
   */
  protected sumExactly(values: Float64Array, count: number, i: number, neumaier: boolean): void {
    let s = 0;
    let c = 0;
    for (let k = 0; k < count; k++) {
      const v = values[k] as number;
      const t = s + v;
      const z = t - s;
      c += neumaier ? (Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s) : s - (t - z) + (v - z);
      s = t;
    }
    this.sums[i] = s;
    this.sums[i + 1] = c;
    this.sinceRecompute = 0;
  }

  /**
   * The exact recompute of a window of deviations: finds the shift, the mean of
   * `values[0 … n−1]` (or their common value when all are equal, so a constant window has
   * exactly zero deviations), and sets the Neumaier sums `Σd` (at `i1`), `Σd²` (at `i2`) and,
   * when `it >= 0`, `Σ k·d` (at `it`), with `d = value − shift` over the values taken oldest
   * first from slot `start` (k = 0 for the oldest). Restarts the recompute count and returns
   * the shift.
   *
   * One method on purpose: it runs once every `period` updates, and V8 keeps it out of the
   * update's compiled loop only while it is too large to inline (split into small helpers it was
   * inlined, and the update ran at half the speed).
   */
  protected recentre(
    values: Float64Array,
    start: number,
    i1: number,
    i2: number,
    it: number,
  ): number {
    const n = this.n;
    let s = 0;
    let c = 0;
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < n; k++) {
      const v = values[k] as number;
      const t = s + v;
      c += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
      s = t;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const shift = lo === hi ? lo : (s + c) / n;
    const length = values.length;
    let s1 = 0; // Σd
    let c1 = 0;
    let s2 = 0; // Σd²
    let c2 = 0;
    let slot = start;
    if (it >= 0) this.sums.fill(0, it, it + 2);
    for (let k = 0; k < n; k++) {
      const d = (values[slot] as number) - shift;
      slot = slot + 1 === length ? 0 : slot + 1;
      let t = s1 + d;
      c1 += Math.abs(s1) >= Math.abs(d) ? s1 - t + d : d - t + s1;
      s1 = t;
      const q = d * d;
      t = s2 + q;
      c2 += Math.abs(s2) >= Math.abs(q) ? s2 - t + q : q - t + s2;
      s2 = t;
      if (it >= 0) this.addNeumaier(it, k * d); // Σ k·d
    }
    const sums = this.sums;
    sums[i1] = s1;
    sums[i1 + 1] = c1;
    sums[i2] = s2;
    sums[i2 + 1] = c2;
    this.sinceRecompute = 0;
    return shift;
  }
}
