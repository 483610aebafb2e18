import { type EncodedFloat } from './float-codec';
import { float, restoreState, saveState, slots } from './state-fields';
import { RING_PREFIX, RingWindow, type ShiftedSumsState } from './window';

/** Indices of the compensated sums S1 = Σ(y−K), S2 = Σ(y−K)² and T = Σ t·(y−K). */
const S1 = 0;
const S2 = 2;
const ST = 4;

const FIELDS = [
  ...RING_PREFIX,
  float('shift'),
  ...slots('sums', ['s1', 'c1', 's2', 'c2', 'st', 'ct']),
  float('budget'),
  float('slope'),
];

/** Serialised {@link RollingSlope} state. */
export interface RollingSlopeState extends ShiftedSumsState {
  st: EncodedFloat;
  ct: EncodedFloat;
  slope: EncodedFloat;
}

/**
 * Rolling least-squares slope of `y` against the time index `0 … period − 1` (oldest value at 0),
 * O(1) per update: `Σ(t − t̄)(y − ȳ) / Σ(t − t̄)²`, in units of y per update. `null` until the
 * window is full.
 *
 * The window keeps `S1 = Σ(y−K)` and `T = Σ t·(y−K)` for a shift `K`; sliding the window moves
 * every index down by one, which is `T ← T − (S1 − d_oldest) + (period − 1)·d_new`. Sums are
 * Neumaier-compensated and recomputed exactly as in {@link RollingStats}; a constant window has a
 * slope of exactly 0. Emits no events.
 */
export class RollingSlope extends RingWindow {
  private readonly meanIndex: number;
  private readonly indexVariance: number;
  private shift = 0;
  private budget = 0;
  private slope = 0;

  /**
   * @param period - window length, an integer >= 2 (a slope needs two points).
   * @throws RangeError when `period` is not an integer >= 2.
   */
  constructor(period: number) {
    super('RollingSlope', period, 2, 3);
    this.meanIndex = (period - 1) / 2;
    this.indexVariance = (period * (period * period - 1)) / 12; // Σ(t − t̄)²
  }

  /** Adds `y` as the newest point, dropping the oldest once the window is full. */
  update(y: number): void {
    const period = this.period;
    let n = this.n;
    if (n === 0) this.shift = y;
    const full = n === period;
    // While the window fills, `old` is +0, which takes out exactly nothing.
    const d = y - this.shift;
    const old = full ? (this.ring[this.head] as number) - this.shift : 0;
    const sq = d * d;
    const oldSq = old * old;
    const tt = full ? (period - 1) * d - (this.total(S1) - old) : n * d;
    if (!full) this.n = ++n;
    this.budget += sq + oldSq;
    this.push(y);
    this.addNeumaier(S1, d - old);
    this.addNeumaier(S2, sq - oldSq);
    this.addNeumaier(ST, tt);
    if (this.due() || this.overBudget(this.budget, this.centred(S1, S2))) this.recompute();
    if (n === period)
      this.slope = (this.total(ST) - this.meanIndex * this.total(S1)) / this.indexVariance;
  }

  /** The slope over the window, or `null` until `period` values have been seen. */
  get value(): number | null {
    return this.n === this.period ? this.slope : null;
  }

  private recompute(): void {
    // Oldest value first: slot `head` once the window is full, slot 0 before.
    this.shift = this.recentre(this.ring, this.n === this.period ? this.head : 0, S1, S2, ST);
    this.budget = this.total(S2);
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): RollingSlopeState {
    return saveState(this, FIELDS);
  }

  /**
   * Restores a window saved with {@link RollingSlope.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: RollingSlopeState): RollingSlope {
    return restoreState(new RollingSlope(state.period), state, FIELDS);
  }
}
