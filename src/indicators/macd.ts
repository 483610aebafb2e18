import { Ema, type EmaState } from './ema';
import { assertPeriod } from './validation';

/** Serialised {@link Macd} state. */
export interface MacdState {
  fast: EmaState;
  slow: EmaState;
  signal: EmaState;
}

/**
 * Moving average convergence/divergence: `macd = EMA(fast) − EMA(slow)` of the close,
 * `signal = EMA(signal)` of `macd`, `histogram = macd − signal`.
 *
 * Every EMA is seeded independently with the simple mean of its own first values (as the wire
 * contract, docs/wire-contract.md, specifies, and as TTR's `MACD(percent = FALSE)` does): EMA 12
 * from closes 0..11, EMA 26 from closes 0..25, the signal from the first 9 MACD values. So `macd`
 * appears on bar index `slow − 1` (25) and `signal`/`histogram` on bar index `slow + signal − 2` (33).
 *
 * TA-Lib's `MACD` differs: it starts the fast EMA at the slow EMA's first bar, seeding it with the
 * mean of closes 14..25 instead of 0..11. The two agree in where the nulls end, and their values
 * converge as the seed decays (about 1e-9 relative after a few hundred bars), but are not equal
 * early on. TTR's default `MACD(percent = TRUE)` reports `100 · (fast / slow − 1)` instead of the
 * difference. Emits no events.
 */
export class Macd {
  private fast: Ema;
  private slow: Ema;
  private signalEma: Ema;
  private macdValue = 0;
  private histogramValue = 0;

  /**
   * @param fast - span of the fast EMA, an integer >= 1 and below `slow`. @defaultValue 12
   * @param slow - span of the slow EMA. @defaultValue 26
   * @param signal - span of the signal EMA, an integer >= 1. @defaultValue 9
   * @throws RangeError on non-integer or non-positive spans, or when `fast >= slow`.
   */
  constructor(fast = 12, slow = 26, signal = 9) {
    assertPeriod('Macd', 'fast', fast);
    assertPeriod('Macd', 'slow', slow);
    assertPeriod('Macd', 'signal', signal);
    if (fast >= slow) throw new RangeError(`Macd: fast (${fast}) must be below slow (${slow})`);
    this.fast = new Ema(fast);
    this.slow = new Ema(slow);
    this.signalEma = new Ema(signal);
  }

  /** Adds a close; read the results from {@link Macd.macd}, {@link Macd.signal}, {@link Macd.histogram}. */
  update(close: number): void {
    const fast = this.fast.update(close);
    const slow = this.slow.update(close);
    if (slow === null || fast === null) return;
    const macd = fast - slow;
    this.macdValue = macd;
    const signal = this.signalEma.update(macd);
    if (signal !== null) this.histogramValue = macd - signal;
  }

  /** The MACD line, or `null` until the slow EMA is seeded. */
  get macd(): number | null {
    return this.slow.ready ? this.macdValue : null;
  }

  /** The signal line, or `null` until it is seeded. */
  get signal(): number | null {
    return this.signalEma.value;
  }

  /** `macd − signal`, or `null` until the signal is seeded. */
  get histogram(): number | null {
    return this.signalEma.ready ? this.histogramValue : null;
  }

  /** The fast EMA of the close (EMA 12 by default), or `null` during its warm-up. */
  get fastEma(): number | null {
    return this.fast.value;
  }

  /** The slow EMA of the close (EMA 26 by default), or `null` during its warm-up. */
  get slowEma(): number | null {
    return this.slow.value;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): MacdState {
    return { fast: this.fast.toJSON(), slow: this.slow.toJSON(), signal: this.signalEma.toJSON() };
  }

  /**
   * Restores a MACD saved with {@link Macd.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: MacdState): Macd {
    const fast = Ema.fromJSON(state.fast);
    const slow = Ema.fromJSON(state.slow);
    const signal = Ema.fromJSON(state.signal);
    const m = new Macd(fast.period, slow.period, signal.period);
    m.fast = fast;
    m.slow = slow;
    m.signalEma = signal;
    m.recomputeOutputs();
    return m;
  }

  /** Rederives the cached outputs from the EMAs (used after a restore). */
  private recomputeOutputs(): void {
    const fast = this.fast.value;
    const slow = this.slow.value;
    if (fast === null || slow === null) return;
    this.macdValue = fast - slow;
    const signal = this.signalEma.value;
    if (signal !== null) this.histogramValue = this.macdValue - signal;
  }
}
