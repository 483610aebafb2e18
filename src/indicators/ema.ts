import { type EncodedFloat } from './float-codec';
import { float, int, PERIOD, restoreState, saveState } from './state-fields';
import { assertPeriod } from './validation';

/** Serialised {@link Ema} state. */
export interface EmaState {
  period: number;
  /** Values seen, saturating at `period`. */
  count: number;
  /** Sum of the first values while seeding. */
  seedSum: EncodedFloat;
  /** The current average (meaningful once `count === period`). */
  ema: EncodedFloat;
}

const FIELDS = [int('count', PERIOD), float('seedSum'), float('ema')];

/**
 * Exponential moving average with `k = 2 / (period + 1)`, seeded with the simple mean of the
 * first `period` values: TA-Lib's default `EMA` and TTR's `EMA` (not the Metastock variant that
 * seeds with the first value). `null` for the first `period − 1` updates, then a number.
 * Each step is `ema += (x − ema) · k`, TA-Lib's form. Emits no events.
 */
export class Ema {
  /** Number of values in the seed, and the span that defines `k`. */
  readonly period: number;
  /** Smoothing factor `2 / (period + 1)`. */
  readonly k: number;
  private count = 0;
  private seedSum = 0;
  private ema = 0;

  /**
   * @param period - span of the average, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    assertPeriod('Ema', 'period', period);
    this.period = period;
    this.k = 2 / (period + 1);
  }

  /** Adds a value and returns the average, or `null` during warm-up. */
  update(x: number): number | null {
    if (this.count === this.period) {
      this.ema += (x - this.ema) * this.k;
      return this.ema;
    }
    this.seedSum += x;
    if (++this.count < this.period) return null;
    this.ema = this.seedSum / this.period;
    return this.ema;
  }

  /** True once the seed is complete and {@link Ema.value} is a number. */
  get ready(): boolean {
    return this.count === this.period;
  }

  /** The latest average, or `null` during warm-up. */
  get value(): number | null {
    return this.count === this.period ? this.ema : null;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): EmaState {
    return saveState(this, FIELDS);
  }

  /**
   * Restores an average saved with {@link Ema.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: EmaState): Ema {
    return restoreState(new Ema(state.period), state, FIELDS);
  }
}
