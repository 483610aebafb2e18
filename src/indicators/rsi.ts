import { type EncodedFloat } from './float-codec';
import { float, int, PERIOD_PLUS_ONE, restoreState, saveState } from './state-fields';
import { assertPeriod } from './validation';

/** Serialised {@link Rsi} state. */
export interface RsiState {
  period: number;
  /** Closes seen, saturating at `period + 1`. */
  count: number;
  prevClose: EncodedFloat;
  /** While seeding: sums of gains and losses; afterwards the Wilder averages. */
  avgGain: EncodedFloat;
  avgLoss: EncodedFloat;
  rsi: EncodedFloat;
}

const FIELDS = [
  int('count', PERIOD_PLUS_ONE),
  float('prevClose'),
  float('avgGain'),
  float('avgLoss'),
  float('rsi'),
];

/**
 * Relative strength index with Wilder smoothing, as TA-Lib `RSI` (default compatibility, no
 * unstable period) and TTR `RSI` (its default `EMA(…, wilder = TRUE)`, seeded with the SMA):
 *
 * - gains and losses are the positive and negative close-to-close changes;
 * - the averages are seeded with the plain mean of the first `period` gains and losses, so the
 *   first value appears on bar index `period` (the 15th close for RSI 14);
 * - afterwards `avg = (avg · (period − 1) + x) / period`;
 * - `RSI = 100 · avgGain / (avgGain + avgLoss)`, which is `100 − 100 / (1 + RS)` rearranged;
 *   it is 100 when the average loss is 0 and the average gain is not.
 *
 * When both averages are 0 (prices flat for the whole seed, or long enough to underflow) the value
 * is **0**, as TA-Lib returns (TTR gives NaN; 50 is a common but non-standard choice). TA-Lib
 * tests for zero with an absolute tolerance of 1e-8, which misreads instruments priced near 1e-8;
 * this class tests for exact zero instead. Emits no events.
 */
export class Rsi {
  /** Smoothing period. */
  readonly period: number;
  private count = 0;
  private prevClose = 0;
  private avgGain = 0;
  private avgLoss = 0;
  private rsi = 0;

  /**
   * @param period - Wilder smoothing period, an integer >= 1.
   * @defaultValue 14
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period = 14) {
    assertPeriod('Rsi', 'period', period);
    this.period = period;
  }

  /** Adds a close and returns the RSI in [0, 100], or `null` during warm-up. */
  update(close: number): number | null {
    const period = this.period;
    const count = this.count;
    if (count === 0) {
      this.prevClose = close;
      this.count = 1;
      return null;
    }
    const change = close - this.prevClose;
    this.prevClose = close;
    const gain = change > 0 ? change : 0;
    const loss = change < 0 ? -change : 0;
    if (count > period) {
      this.avgGain = (this.avgGain * (period - 1) + gain) / period;
      this.avgLoss = (this.avgLoss * (period - 1) + loss) / period;
    } else {
      this.avgGain += gain;
      this.avgLoss += loss;
      this.count = count + 1;
      if (count < period) return null;
      this.avgGain /= period;
      this.avgLoss /= period;
    }
    const total = this.avgGain + this.avgLoss;
    this.rsi = total === 0 ? 0 : (100 * this.avgGain) / total;
    return this.rsi;
  }

  /** True once {@link Rsi.value} is a number. */
  get ready(): boolean {
    return this.count > this.period;
  }

  /** The latest RSI, or `null` during warm-up. */
  get value(): number | null {
    return this.count > this.period ? this.rsi : null;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): RsiState {
    return saveState(this, FIELDS);
  }

  /**
   * Restores an RSI saved with {@link Rsi.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: RsiState): Rsi {
    return restoreState(new Rsi(state.period), state, FIELDS);
  }
}
