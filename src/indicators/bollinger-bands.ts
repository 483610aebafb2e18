import { RollingStats, type RollingStatsState } from './rolling-stats';

/** Serialised {@link BollingerBands} state. */
export interface BollingerBandsState {
  k: number;
  window: RollingStatsState;
}

/**
 * Bollinger bands: `middle` is the simple mean of the last `period` closes, `upper`/`lower` are
 * `middle ± k · σ` with σ the **population** standard deviation (divisor n), as TA-Lib `BBANDS`
 * and TTR `BBands`. All three are `null` for the first `period − 1` updates.
 *
 * Constant closes give `upper === middle === lower` exactly. `middle` is the mean of
 * {@link RollingStats}; it agrees with {@link Sma} to rounding, not necessarily bit for bit.
 * Emits no events.
 */
export class BollingerBands {
  /** Number of closes in the window. */
  readonly period: number;
  /** Width of the bands in standard deviations. */
  readonly k: number;
  private window: RollingStats;
  private upperValue = 0;
  private middleValue = 0;
  private lowerValue = 0;

  /**
   * @param period - window length, an integer >= 1. @defaultValue 20
   * @param k - band width in standard deviations, finite and >= 0. @defaultValue 2
   * @throws RangeError on a bad `period` or `k`.
   */
  constructor(period = 20, k = 2) {
    if (!Number.isFinite(k) || k < 0) {
      throw new RangeError(`BollingerBands: k must be a finite number >= 0, got ${String(k)}`);
    }
    this.window = new RollingStats(period);
    this.period = period;
    this.k = k;
  }

  /** Adds a close; read the bands from {@link BollingerBands.upper}, `middle` and `lower`. */
  update(close: number): void {
    this.window.update(close);
    this.refresh();
  }

  /** Derives the bands from the window (also after a restore, so the restored outputs are the same bits). */
  private refresh(): void {
    const w = this.window;
    if (!w.ready) return;
    const mid = w.mean;
    const width = this.k * w.std;
    this.middleValue = mid;
    this.upperValue = mid + width;
    this.lowerValue = mid - width;
  }

  /** True once the window is full and the bands are numbers. */
  get ready(): boolean {
    return this.window.ready;
  }

  /** Upper band, or `null` during warm-up. */
  get upper(): number | null {
    return this.window.ready ? this.upperValue : null;
  }

  /** Middle band (the SMA), or `null` during warm-up. */
  get middle(): number | null {
    return this.window.ready ? this.middleValue : null;
  }

  /** Lower band, or `null` during warm-up. */
  get lower(): number | null {
    return this.window.ready ? this.lowerValue : null;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): BollingerBandsState {
    return { k: this.k, window: this.window.toJSON() };
  }

  /**
   * Restores bands saved with {@link BollingerBands.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: BollingerBandsState): BollingerBands {
    const window = RollingStats.fromJSON(state.window);
    const b = new BollingerBands(window.period, state.k);
    b.window = window;
    b.refresh();
    return b;
  }
}
