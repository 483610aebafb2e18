import { Atr, type AtrState } from './atr';
import { BollingerBands, type BollingerBandsState } from './bollinger-bands';
import { Macd, type MacdState } from './macd';
import { Rsi, type RsiState } from './rsi';

/**
 * The indicator block of an integrated result (`indicators` in docs/wire-contract.md): each value is a number, or
 * `null` while that indicator is still warming up.
 */
export interface IndicatorValues {
  /** Simple moving average of the last 20 closes. */
  sma20: number | null;
  /** EMA 12 of the close, seeded with the mean of the first 12 closes. */
  ema12: number | null;
  /** EMA 26 of the close, seeded with the mean of the first 26 closes. */
  ema26: number | null;
  /** Wilder RSI 14 (first value on bar index 14). */
  rsi14: number | null;
  /** EMA12 − EMA26 (first value on bar index 25). */
  macd: number | null;
  /** EMA 9 of `macd`, seeded with the mean of its first 9 values (first on bar index 33). */
  macd_signal: number | null;
  /** `macd − macd_signal`. */
  macd_hist: number | null;
  /** SMA 20 + 2 population standard deviations. */
  bb_upper: number | null;
  /** SMA 20 (equal to `sma20`). */
  bb_middle: number | null;
  /** SMA 20 − 2 population standard deviations. */
  bb_lower: number | null;
  /** Wilder ATR 14 (first value on bar index 14). */
  atr14: number | null;
}

/** Serialised {@link TacticalIndicatorSet} state. */
export interface TacticalIndicatorSetState {
  /** State layout version; bumped when the layout changes. */
  v: 1;
  bollinger: BollingerBandsState;
  macd: MacdState;
  rsi: RsiState;
  atr: AtrState;
}

/**
 * The 5-minute tactical indicators of one symbol: SMA 20, EMA 12/26, RSI 14, MACD 12/26/9,
 * Bollinger 20/2 and ATR 14, updated once per bar with no allocation.
 *
 * SMA 20 is the Bollinger middle band and EMA 12/26 are the EMAs inside the MACD, so each is
 * computed once. See the individual classes for the conventions. Emits no events.
 */
export class TacticalIndicatorSet {
  private bollinger = new BollingerBands(20, 2);
  private macdIndicator = new Macd(12, 26, 9);
  private rsi = new Rsi(14);
  private atr = new Atr(14);

  /**
   * Adds one bar.
   * @throws RangeError when a price is not finite; the state is left unchanged then, because a
   * NaN would otherwise poison every later value and the saved state.
   */
  update(high: number, low: number, close: number): void {
    if (!Number.isFinite(high) || !Number.isFinite(low) || !Number.isFinite(close)) {
      throw new RangeError(`TacticalIndicatorSet: prices must be finite, got ${high}/${low}/${close}`);
    }
    this.bollinger.update(close);
    this.macdIndicator.update(close);
    this.rsi.update(close);
    this.atr.update(high, low, close);
  }

  /** SMA 20, or `null` during warm-up. */
  get sma20(): number | null {
    return this.bollinger.middle;
  }

  /** EMA 12, or `null` during warm-up. */
  get ema12(): number | null {
    return this.macdIndicator.fastEma;
  }

  /** EMA 26, or `null` during warm-up. */
  get ema26(): number | null {
    return this.macdIndicator.slowEma;
  }

  /** RSI 14, or `null` during warm-up. */
  get rsi14(): number | null {
    return this.rsi.value;
  }

  /** MACD line, or `null` during warm-up. */
  get macd(): number | null {
    return this.macdIndicator.macd;
  }

  /** MACD signal line, or `null` during warm-up. */
  get macdSignal(): number | null {
    return this.macdIndicator.signal;
  }

  /** MACD histogram, or `null` during warm-up. */
  get macdHist(): number | null {
    return this.macdIndicator.histogram;
  }

  /** Upper Bollinger band, or `null` during warm-up. */
  get bbUpper(): number | null {
    return this.bollinger.upper;
  }

  /** Middle Bollinger band, or `null` during warm-up. */
  get bbMiddle(): number | null {
    return this.bollinger.middle;
  }

  /** Lower Bollinger band, or `null` during warm-up. */
  get bbLower(): number | null {
    return this.bollinger.lower;
  }

  /** ATR 14, or `null` during warm-up. */
  get atr14(): number | null {
    return this.atr.value;
  }

  /** The current values as the result's `indicators` object (allocates one object). */
  snapshot(): IndicatorValues {
    const bb = this.bollinger;
    const m = this.macdIndicator;
    return {
      sma20: bb.middle,
      ema12: m.fastEma,
      ema26: m.slowEma,
      rsi14: this.rsi.value,
      macd: m.macd,
      macd_signal: m.signal,
      macd_hist: m.histogram,
      bb_upper: bb.upper,
      bb_middle: bb.middle,
      bb_lower: bb.lower,
      atr14: this.atr.value,
    };
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): TacticalIndicatorSetState {
    return {
      v: 1,
      bollinger: this.bollinger.toJSON(),
      macd: this.macdIndicator.toJSON(),
      rsi: this.rsi.toJSON(),
      atr: this.atr.toJSON(),
    };
  }

  /**
   * Restores a set saved with {@link TacticalIndicatorSet.toJSON}.
   * @throws RangeError or TypeError when the state is malformed or of another version.
   */
  static fromJSON(state: TacticalIndicatorSetState): TacticalIndicatorSet {
    if (typeof state !== 'object' || state === null || state.v !== 1) {
      throw new RangeError('TacticalIndicatorSet: unsupported state version');
    }
    const set = new TacticalIndicatorSet();
    const bollinger = BollingerBands.fromJSON(state.bollinger);
    const macd = Macd.fromJSON(state.macd);
    const rsi = Rsi.fromJSON(state.rsi);
    const atr = Atr.fromJSON(state.atr);
    if (bollinger.period !== 20 || bollinger.k !== 2 || rsi.period !== 14 || atr.period !== 14) {
      throw new RangeError('TacticalIndicatorSet: state holds other periods than 20/2, 14, 14');
    }
    set.bollinger = bollinger;
    set.macdIndicator = macd;
    set.rsi = rsi;
    set.atr = atr;
    return set;
  }
}
