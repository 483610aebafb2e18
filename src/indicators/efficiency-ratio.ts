import { type EncodedFloat } from './float-codec';
import { float, floats, int, restoreState, saveState, slots } from './state-fields';
import { RING, RingWindow, type RingState } from './window';

/** Serialised {@link EfficiencyRatio} state. */
export interface EfficiencyRatioState extends RingState {
  closes: EncodedFloat[];
  moves: EncodedFloat[];
  /** Closes seen, saturating at `period + 1`. */
  count: number;
  prevClose: EncodedFloat;
  pathSum: EncodedFloat;
  pathComp: EncodedFloat;
  budget: EncodedFloat;
  ratio: EncodedFloat;
}

/** Index of the compensated path length (the sum of the absolute changes in the window). */
const PATH = 0;

const FIELDS = [
  floats('closes', 'paired'),
  floats('moves', 'ring'),
  RING.head,
  int('count', (p) => p + 1, 'n'),
  RING.sinceRecompute,
  float('prevClose'),
  ...slots('sums', ['pathSum', 'pathComp']),
  float('budget'),
  float('ratio'),
];

/**
 * Kaufman efficiency ratio over `period` changes:
 * `|close_t − close_{t−period}| / Σ_{i=t−period+1..t} |close_i − close_{i−1}|`, in [0, 1].
 * Needs `period + 1` closes, so the first value appears on bar index `period`; `null` before.
 *
 * When the closes did not move at all over the window the ratio is 0/0; this class returns
 * **0** then (no directional movement), never NaN. The path length is a Neumaier-compensated
 * running sum, recomputed exactly from the ring every `period` updates and when a large move has
 * left the window, so a flat window gives exactly 0. Emits no events.
 */
export class EfficiencyRatio extends RingWindow {
  private prevClose = 0;
  private budget = 0;
  private ratio = 0;

  /**
   * @param period - number of changes in the window, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    // ring: the last `period` absolute changes; paired: the close before each (slot `head` is the oldest once full).
    super('EfficiencyRatio', period, 1, 1, true);
  }

  /** Adds a close. */
  update(close: number): void {
    const period = this.period;
    const count = this.n;
    if (count === 0) {
      this.prevClose = close;
      this.n = 1;
      return;
    }
    const change = close - this.prevClose;
    const move = change < 0 ? -change : change;
    let term = move;
    if (count > period) {
      const oldMove = this.ring[this.head] as number;
      term -= oldMove;
      this.budget += move + oldMove;
    } else {
      this.n = count + 1;
      this.budget += move;
    }
    this.pushPair(move, this.prevClose);
    this.prevClose = close;

    this.addNeumaier(PATH, term);
    let path = this.total(PATH);
    if (this.due() || this.overBudget(this.budget, path)) {
      this.recompute();
      path = this.total(PATH);
    }
    if (this.n <= period) return;
    // The ring now holds close_{t−period}..close_{t−1}; the oldest sits in the next slot to reuse.
    const first = this.paired[this.head] as number;
    const net = close > first ? close - first : first - close;
    if (!(path > 0)) {
      this.ratio = 0;
      return;
    }
    const r = net / path;
    this.ratio = r > 1 ? 1 : r;
  }

  /** The efficiency ratio, or `null` until `period + 1` closes have been seen. */
  get value(): number | null {
    return this.n > this.period ? this.ratio : null;
  }

  /** True once {@link EfficiencyRatio.value} is a number. */
  override get ready(): boolean {
    return this.n > this.period;
  }

  private recompute(): void {
    this.sumExactly(this.ring, this.n - 1 < this.period ? this.n - 1 : this.period, PATH, true);
    this.budget = this.total(PATH);
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): EfficiencyRatioState {
    return saveState(this, FIELDS);
  }

  /**
   * Restores a ratio saved with {@link EfficiencyRatio.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: EfficiencyRatioState): EfficiencyRatio {
    return restoreState(new EfficiencyRatio(state.period), state, FIELDS);
  }
}
