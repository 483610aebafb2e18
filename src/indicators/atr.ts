import { type EncodedFloat } from './float-codec';
import { decodeFields, encodeFields, float, int, PERIOD } from './state-fields';
import { TrueRange, type TrueRangeState } from './true-range';
import { assertPeriod } from './validation';

/** Serialised {@link Atr} state. */
export interface AtrState {
  period: number;
  trueRange: TrueRangeState;
  /** True ranges seen, saturating at `period`. */
  count: number;
  /** While seeding the sum of the true ranges, afterwards the average. */
  atr: EncodedFloat;
}

const FIELDS = [int('count', PERIOD), float('atr')];

/**
 * Average true range with Wilder smoothing, as TA-Lib `ATR` and TTR `ATR` (whose `EMA(wilder =
 * TRUE)` is seeded the same way): the first bar has no true range, the average is seeded with the
 * plain mean of the first `period` true ranges, so the first value appears on bar index `period`
 * (the 15th bar for ATR 14), then `atr = (atr · (period − 1) + tr) / period`. Emits no events.
 */
export class Atr {
  /** Smoothing period. */
  readonly period: number;
  private trueRange = new TrueRange();
  private count = 0;
  private atr = 0;

  /**
   * @param period - Wilder smoothing period, an integer >= 1.
   * @defaultValue 14
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period = 14) {
    assertPeriod('Atr', 'period', period);
    this.period = period;
  }

  /** Adds a bar and returns the ATR, or `null` during warm-up. */
  update(high: number, low: number, close: number): number | null {
    const tr = this.trueRange.update(high, low, close);
    if (tr === null) return null;
    const period = this.period;
    if (this.count === period) {
      this.atr = (this.atr * (period - 1) + tr) / period;
      return this.atr;
    }
    this.atr += tr;
    if (++this.count < period) return null;
    this.atr /= period;
    return this.atr;
  }

  /** True once {@link Atr.value} is a number. */
  get ready(): boolean {
    return this.count === this.period;
  }

  /** The latest ATR, or `null` during warm-up. */
  get value(): number | null {
    return this.count === this.period ? this.atr : null;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): AtrState {
    return encodeFields(this, FIELDS, { period: this.period, trueRange: this.trueRange.toJSON() }) as unknown as AtrState;
  }

  /**
   * Restores an ATR saved with {@link Atr.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: AtrState): Atr {
    const a = new Atr(state.period);
    a.trueRange = TrueRange.fromJSON(state.trueRange);
    decodeFields(a, state, FIELDS, a.period);
    return a;
  }
}
