import { float, restoreState, saveState, slots } from './state-fields';
import { RING, RingWindow, type ShiftedSumsState } from './window';

/** Serialised {@link RollingStats} state: plain JSON, restored exactly by {@link RollingStats.fromJSON}. */
export type RollingStatsState = ShiftedSumsState;

/** Indices of the compensated sums S1 = Σ(x−K) and S2 = Σ(x−K)². */
const S1 = 0;
const S2 = 2;

const FIELDS = [
  RING.ring,
  RING.head,
  RING.count,
  float('shift'),
  ...slots('sums', ['s1', 'c1', 's2', 'c2']),
  float('budget'),
  RING.sinceRecompute,
];

/**
 * Rolling sum, mean, population variance and standard deviation over the last `period` values,
 * O(1) per update and allocation-free.
 *
 * Numerics: the window is kept as sums of deviations from a shift `K` (close to the window mean),
 * `S1 = Σ(x−K)` and `S2 = Σ(x−K)²`, each a compensated (TwoSum) sum. Shifting avoids the
 * catastrophic cancellation of `Σx² − (Σx)²/n` at price levels like 1e8. An exact two-pass
 * recompute from the ring buffer (which also moves `K` to the current mean) runs every `period`
 * updates, which is O(1) amortised and bounds drift, and at once when a large value has left the
 * window (the error budget of window.ts). A window whose values are all equal is recentred on that
 * value, so its variance is exactly 0 and its mean exactly that value.
 *
 * Before the window is full (`ready` false) the statistics cover the values seen so far; with no
 * values at all they are 0. Emits no events.
 */
export class RollingStats extends RingWindow {
  /** 1 / n, kept because multiplying is much cheaper than dividing on every update. */
  private invN = 0;
  private shift = 0;
  private budget = 0;

  /**
   * @param period - number of values in the window, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    super('RollingStats', period, 1, 2);
  }

  /** Adds `x` to the window, dropping the oldest value once the window is full. */
  update(x: number): void {
    let n = this.n;
    if (n === 0) this.shift = x;
    const shift = this.shift;
    const full = n === this.period;
    if (!full) {
      this.n = ++n;
      this.invN = 1 / n;
    }
    // While the window fills, `old` is +0, which takes out exactly nothing.
    const d = x - shift;
    const old = full ? (this.ring[this.head] as number) - shift : 0;
    const sq = d * d;
    const oldSq = old * old;
    this.budget += sq + oldSq;
    this.push(x);
    // Knuth's branch-free TwoSum here: Neumaier's variant needs a data-dependent branch, which mispredicts.
    this.addTwoSum(S1, d - old);
    this.addTwoSum(S2, sq - oldSq);
    const sum1 = this.total(S1);
    const centred = this.total(S2) - sum1 * sum1 * this.invN;
    if (this.due() || this.overBudget(this.budget, centred)) this.recompute();
  }

  /** Number of values currently in the window (at most `period`). */
  get count(): number {
    return this.n;
  }

  /** Sum of the values in the window (0 before the first update). */
  get sum(): number {
    return this.n === 0 ? 0 : this.shift * this.n + this.total(S1);
  }

  /** Mean of the values in the window (0 before the first update). */
  get mean(): number {
    return this.n === 0 ? 0 : this.shift + this.total(S1) * this.invN;
  }

  /** Population variance (divisor n) of the values in the window, never negative. */
  get variance(): number {
    if (this.n === 0) return 0;
    const m = this.total(S1) * this.invN;
    const v = this.total(S2) * this.invN - m * m;
    return v > 0 ? v : 0;
  }

  /** Population standard deviation of the values in the window. */
  get std(): number {
    return Math.sqrt(this.variance);
  }

  /** Recomputes the shift and both sums exactly from the ring buffer (slots 0..n-1 before it is full). */
  private recompute(): void {
    this.shift = this.recentre(this.ring, 0, S1, S2, -1);
    this.budget = this.total(S2);
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): RollingStatsState {
    return saveState(this, FIELDS);
  }

  /**
   * Restores a window saved with {@link RollingStats.toJSON}; it continues bit for bit as the
   * original would have.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: RollingStatsState): RollingStats {
    const r = restoreState(new RollingStats(state.period), state, FIELDS);
    r.invN = r.n === 0 ? 0 : 1 / r.n;
    return r;
  }
}
