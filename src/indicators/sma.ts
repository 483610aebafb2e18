import { RollingStats, type RollingStatsState } from './rolling-stats';

/** Serialised {@link Sma} state. */
export interface SmaState {
  window: RollingStatsState;
}

/**
 * Simple moving average: the plain mean of the last `period` values (TA-Lib `SMA`, TTR `SMA`).
 * `null` for the first `period − 1` updates, then a number.
 *
 * The mean comes from {@link RollingStats}, so `new Sma(20)` and `new BollingerBands(20).middle`
 * agree bit for bit on the same input. Emits no events.
 */
export class Sma {
  /** Number of values averaged. */
  readonly period: number;
  private window: RollingStats;

  /**
   * @param period - number of values averaged, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    this.window = new RollingStats(period);
    this.period = period;
  }

  /** Adds a value and returns the average, or `null` during warm-up. */
  update(x: number): number | null {
    const w = this.window;
    w.update(x);
    return w.ready ? w.mean : null;
  }

  /** The latest average, or `null` during warm-up. */
  get value(): number | null {
    return this.window.ready ? this.window.mean : null;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): SmaState {
    return { window: this.window.toJSON() };
  }

  /**
   * Restores an average saved with {@link Sma.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: SmaState): Sma {
    const restored = RollingStats.fromJSON(state.window);
    const sma = new Sma(restored.period);
    sma.window = restored;
    return sma;
  }
}
