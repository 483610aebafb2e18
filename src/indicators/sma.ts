import { type EncodedFloat } from './float-codec';
import { restoreState, saveState, slots } from './state-fields';
import { RING_PREFIX, RingWindow, type RingState } from './window';

/** Serialised {@link Sma} state. */
export interface SmaState extends RingState {
  ring: EncodedFloat[];
  sum: EncodedFloat;
  compensation: EncodedFloat;
}

/** Index of the compensated window sum. */
const SUM = 0;

const FIELDS = [...RING_PREFIX, ...slots('sums', ['sum', 'compensation'])];

/**
 * Simple moving average: the plain mean of the last `period` values (TA-Lib `SMA`, TTR `SMA`).
 * `null` for the first `period − 1` updates, then a number.
 *
 * The window sum is a running sum made error-free step by step: both the difference
 * `x_new − x_old` and its addition to the sum go through Knuth's TwoSum, whose rounding errors are
 * collected in a compensation term, so a value of 1e8 passing through a window of values near 1
 * leaves no trace. The sum is also recomputed from the ring every `period` updates (O(1)
 * amortised). {@link BollingerBands.middle} computes the same mean through {@link RollingStats}
 * and may differ from this class in the last bit. Emits no events.
 */
export class Sma extends RingWindow {
  private readonly invPeriod: number;

  /**
   * @param period - number of values averaged, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    super('Sma', period, 1, 1);
    this.invPeriod = 1 / period;
  }

  /** Adds a value and returns the average, or `null` during warm-up. */
  update(x: number): number | null {
    const period = this.period;
    let d = x;
    let err = 0;
    if (this.n === period) {
      // TwoSum(x, −old): d + err === x − old exactly.
      const old = -(this.ring[this.head] as number);
      d = x + old;
      const z = d - x;
      err = x - (d - z) + (old - z);
    } else {
      this.n++;
    }
    this.push(x);
    // TwoSum(sum, d), its error collected together with err.
    const sums = this.sums;
    const s = sums[SUM] as number;
    const t = s + d;
    const z = t - s;
    sums[SUM + 1] = (sums[SUM + 1] as number) + (s - (t - z) + (d - z) + err);
    sums[SUM] = t;
    if (this.due()) this.sumExactly(this.ring, this.n, SUM, false);
    return this.n === period ? this.total(SUM) * this.invPeriod : null;
  }

  /** The latest average, or `null` during warm-up. */
  get value(): number | null {
    return this.n === this.period ? this.total(SUM) * this.invPeriod : null;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): SmaState {
    return saveState(this, FIELDS);
  }

  /**
   * Restores an average saved with {@link Sma.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: SmaState): Sma {
    return restoreState(new Sma(state.period), state, FIELDS);
  }
}
