import {
  BollingerBands,
  EfficiencyRatio,
  Ema,
  Macd,
  RollingCorrelation,
  RollingMinMax,
  RollingStats,
  Rsi,
  type BollingerBandsState,
  type EfficiencyRatioState,
  type EmaState,
  type MacdState,
  type RollingCorrelationState,
  type RollingMinMaxState,
  type RollingStatsState,
  type RsiState,
} from '../indicators';
import type { Ohlcv } from '../../schemas/bar.schema';
// The barrel exports the EncodedFloat type but not the codec functions.
import type { EncodedFloat } from '../indicators/float-codec';
import { decodeFloat64Bits, encodeFloat64Bits } from './float-bits';

/** Rows of the strategic window (30m bars). */
export const WINDOW_BARS = 48;

/** The 13 feature columns, in column order. See {@link FeatureMatrix} for each formula. */
export const FEATURE_NAMES = [
  'price_change',
  'volume_ratio',
  'volatility',
  'momentum',
  'rsi',
  'macd_hist',
  'bollinger_position',
  'market_sentiment',
  'correlation_strength',
  'regime_indicator',
  'risk_score',
  'liquidity_index',
  'structural_break',
] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];
export const FEATURE_COUNT = FEATURE_NAMES.length;

/** Column index of each feature. */
export const FEATURE: Readonly<Record<FeatureName, number>> = Object.fromEntries(
  FEATURE_NAMES.map((name, i) => [name, i]),
) as Record<FeatureName, number>;

/**
 * Bars after which every row of the window is past every feature's warm-up: the structural break
 * needs 48 returns (bar index 48), so the first fully defined row is bar 48 and the window of 48
 * such rows is complete after 96 bars.
 */
export const FULL_WARMUP_BARS = 2 * WINDOW_BARS;


/** Serialised {@link FeatureMatrix} state (plain JSON, restored bit for bit). */
export interface FeatureMatrixState {
  v: 1;
  count: number;
  /** The window, {@link encodeFloat64Bits} (number arrays in states saved before are read too). */
  rows: string | EncodedFloat[];
  closes: string | EncodedFloat[];
  volume: RollingStatsState;
  returns20: RollingStatsState;
  returns48: RollingStatsState;
  returns12: RollingStatsState;
  returns24: RollingStatsState;
  returns6: RollingStatsState;
  amihud: RollingStatsState;
  rsi: RsiState;
  macd: MacdState;
  bands: BollingerBandsState;
  clv: EmaState;
  corr: RollingCorrelationState;
  er: EfficiencyRatioState;
  highs: RollingMinMaxState;
}

const CLOSE_RING = WINDOW_BARS + 1;
const BREAK_SE = Math.sqrt(1 / 12 + 1 / 36);

/**
 * Per-symbol rolling window of the last 48 thirty-minute bars × 13 features, updated in O(1) per
 * bar into preallocated `Float64Array` ring storage (no allocation per bar). Emits no events.
 *
 * Notation: bar `t` (0 = the symbol's first bar) has open/high/low/close/volume `O H L C V`;
 * `r_t = ln(C_t / C_{t−1})` for `t ≥ 1`. Rolling windows include the current bar. During a
 * feature's warm-up it takes the neutral value given in brackets. Features:
 *
 * 0. `price_change` = `r_t` [0 on bar 0].
 * 1. `volume_ratio` = `V_t / mean(V_{t−19..t})`; 1 when that mean is 0 (no volume in 20 bars) [1 until 20 bars].
 * 2. `volatility` = population std of the last 20 returns; 0 for flat prices [0 until 20 returns].
 * 3. `momentum` = `ln(C_t / C_{t−10})` [0 until bar 10].
 * 4. `rsi` = RSI(14) / 100 (Wilder, TA-Lib conventions of `src/indicators`) [0.5 until ready].
 * 5. `macd_hist` = MACD(12,26,9) histogram / `C_t` [0 until the histogram exists, bar 33].
 * 6. `bollinger_position` = `(C_t − lower)/(upper − lower)` of Bollinger(20, 2σ population), not
 *    clipped; 0.5 when the band has zero width (20 equal closes) [0.5 until ready].
 * 7. `market_sentiment` = EMA(10) of the close location value
 *    `CLV = ((C−L) − (H−C)) / (H−L)`, CLV 0 when `H = L` [0 until the EMA is seeded].
 * 8. `correlation_strength` = Pearson correlation of `C` with the bar index over the last 20 bars;
 *    0 when the closes are flat [0 until 20 bars].
 * 9. `regime_indicator` = Kaufman efficiency ratio over 10 bars, `|C_t − C_{t−10}| / Σ|C_i − C_{i−1}|`;
 *    0 when prices did not move [0 until ready].
 * 10. `risk_score` = drawdown from the 48-bar high, `1 − C_t / max(H_{t−47..t})` (over the bars so far
 *     when fewer), in [0, 1).
 * 11. `liquidity_index` = `ln(mean(A_{t−19..t}))` of the Amihud illiquidity `A_i = |r_i| / (C_i·V_i)`,
 *     with `A_i = 0` for a bar without volume; 0 when that mean is 0 (no volume, or flat prices)
 *     [0 until 20 returns].
 * 12. `structural_break` = `(m12 − m36) / (s48 · √(1/12 + 1/36))`: z-score of the mean of the last 12
 *     returns against the mean of the 36 before, `s48` the population std of all 48; 0 when `s48 = 0`
 *     [0 until 48 returns].
 *
 * Also kept for the regime detector and the embedding: rolling mean/variance of the last 6, 12, 24
 * and 48 returns and the last 49 closes.
 */
export class FeatureMatrix {
  private readonly rows = new Float64Array(WINDOW_BARS * FEATURE_COUNT);
  private readonly closes = new Float64Array(CLOSE_RING);
  private count = 0;
  private volume = new RollingStats(20);
  private returns20 = new RollingStats(20);
  private returns48 = new RollingStats(WINDOW_BARS);
  private returns12 = new RollingStats(12);
  private returns24 = new RollingStats(24);
  private returns6 = new RollingStats(6);
  private amihud = new RollingStats(20);
  private rsi = new Rsi(14);
  private macd = new Macd(12, 26, 9);
  private bands = new BollingerBands(20, 2);
  private clv = new Ema(10);
  private corr = new RollingCorrelation(20);
  private er = new EfficiencyRatio(10);
  private highs = new RollingMinMax(WINDOW_BARS);

  /** Bars seen so far. */
  get bars(): number {
    return this.count;
  }

  /** Rows in the window: `min(bars, 48)`. */
  get rowCount(): number {
    return this.count < WINDOW_BARS ? this.count : WINDOW_BARS;
  }

  /** True once every row of the window is past every feature's warm-up ({@link FULL_WARMUP_BARS} bars). */
  get fullyWarm(): boolean {
    return this.count >= FULL_WARMUP_BARS;
  }

  /** Number of returns in the 48-return window (at most 48). */
  get returnCount(): number {
    return this.returns48.count;
  }

  /** Mean of the last `n` returns, `n` one of 6, 12, 24, 48 (fewer while warming up). */
  returnMean(n: 6 | 12 | 24 | 48): number {
    return this.returnStats(n).mean;
  }

  /** Population variance of the last `n` returns, `n` one of 6, 12, 24, 48. */
  returnVariance(n: 6 | 12 | 24 | 48): number {
    return this.returnStats(n).variance;
  }

  private returnStats(n: 6 | 12 | 24 | 48): RollingStats {
    return n === 48 ? this.returns48 : n === 24 ? this.returns24 : n === 12 ? this.returns12 : this.returns6;
  }

  /** `ln(C_t / C_{t−h})` for `1 ≤ h ≤ 48` (over the bars so far when fewer); 0 before the second bar. */
  logReturnOver(h: number): number {
    if (!(h >= 1 && h <= WINDOW_BARS)) throw new RangeError(`horizon must be in 1..${WINDOW_BARS}, got ${h}`);
    if (this.count < 2) return 0;
    const back = Math.min(h, this.count - 1);
    const last = (this.count - 1) % CLOSE_RING;
    const then = (this.count - 1 - back) % CLOSE_RING;
    return Math.log((this.closes[last] as number) / (this.closes[then] as number));
  }

  /** Latest value of feature column `f` (0 before the first bar). */
  latest(f: number): number {
    if (this.count === 0) return 0;
    const slot = (this.count - 1) % WINDOW_BARS;
    return this.rows[slot * FEATURE_COUNT + f] as number;
  }

  /** Adds a bar (validated upstream: prices > 0, `low ≤ open, close ≤ high`, volume ≥ 0). O(1). */
  update(bar: Ohlcv): void {
    const { high, low, close, volume } = bar;
    const t = this.count;
    const prevClose = t > 0 ? (this.closes[(t - 1) % CLOSE_RING] as number) : close;
    this.closes[t % CLOSE_RING] = close;
    const r = t > 0 ? Math.log(close / prevClose) : 0;

    this.volume.update(volume);
    if (t > 0) {
      this.returns20.update(r);
      this.returns48.update(r);
      this.returns12.update(r);
      this.returns24.update(r);
      this.returns6.update(r);
      this.amihud.update(volume > 0 ? Math.abs(r) / (close * volume) : 0);
    }
    this.rsi.update(close);
    this.macd.update(close);
    this.bands.update(close);
    const range = high - low;
    this.clv.update(range > 0 ? (close - low - (high - close)) / range : 0);
    this.corr.update(t, close);
    this.er.update(close);
    this.highs.update(high);

    const row = (t % WINDOW_BARS) * FEATURE_COUNT;
    const out = this.rows;
    out[row] = r;
    const meanVolume = this.volume.mean;
    out[row + 1] = !this.volume.ready ? 1 : meanVolume > 0 ? volume / meanVolume : 1;
    out[row + 2] = this.returns20.ready ? this.returns20.std : 0;
    out[row + 3] = t >= 10 ? Math.log(close / (this.closes[(t - 10) % CLOSE_RING] as number)) : 0;
    const rsi = this.rsi.value;
    out[row + 4] = rsi === null ? 0.5 : rsi / 100;
    const hist = this.macd.histogram;
    out[row + 5] = hist === null ? 0 : hist / close;
    const upper = this.bands.upper;
    const lower = this.bands.lower;
    out[row + 6] = upper === null || lower === null || !(upper > lower) ? 0.5 : (close - lower) / (upper - lower);
    out[row + 7] = this.clv.value ?? 0;
    out[row + 8] = this.corr.value ?? 0;
    out[row + 9] = this.er.value ?? 0;
    out[row + 10] = 1 - close / this.highs.max;
    const illiquidity = this.amihud.mean;
    out[row + 11] = this.amihud.ready && illiquidity > 0 ? Math.log(illiquidity) : 0;
    if (this.returns48.ready) {
      const s48 = this.returns48.std;
      const m12 = this.returns12.mean;
      const m36 = (this.returns48.sum - this.returns12.sum) / 36;
      out[row + 12] = s48 > 0 ? (m12 - m36) / (s48 * BREAK_SE) : 0;
    } else {
      out[row + 12] = 0;
    }
    this.count = t + 1;
  }

  /**
   * Copies the window into `out` in time order (oldest row first), row-major `rows × 13` starting at
   * `offset`; returns the number of rows copied (`min(bars, 48)`).
   */
  copyWindow(out: Float64Array, offset = 0): number {
    const rows = this.rowCount;
    if (out.length - offset < rows * FEATURE_COUNT) {
      throw new RangeError(`output holds ${out.length - offset} values, need ${rows * FEATURE_COUNT}`);
    }
    // Two contiguous runs of the ring (oldest slot to the end, then the start), copied value by
    // value: no typed-array views are created per call.
    const src = this.rows;
    const firstSlot = rows < WINDOW_BARS ? 0 : this.count % WINDOW_BARS;
    const tailValues = (rows - firstSlot) * FEATURE_COUNT;
    const from = firstSlot * FEATURE_COUNT;
    for (let i = 0; i < tailValues; i++) out[offset + i] = src[from + i] as number;
    const headValues = firstSlot * FEATURE_COUNT;
    for (let i = 0; i < headValues; i++) out[offset + tailValues + i] = src[i] as number;
    return rows;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): FeatureMatrixState {
    return {
      v: 1,
      count: this.count,
      rows: encodeFloat64Bits(this.rows),
      closes: encodeFloat64Bits(this.closes),
      volume: this.volume.toJSON(),
      returns20: this.returns20.toJSON(),
      returns48: this.returns48.toJSON(),
      returns12: this.returns12.toJSON(),
      returns24: this.returns24.toJSON(),
      returns6: this.returns6.toJSON(),
      amihud: this.amihud.toJSON(),
      rsi: this.rsi.toJSON(),
      macd: this.macd.toJSON(),
      bands: this.bands.toJSON(),
      clv: this.clv.toJSON(),
      corr: this.corr.toJSON(),
      er: this.er.toJSON(),
      highs: this.highs.toJSON(),
    };
  }

  /** Restores a matrix saved with {@link toJSON}; the restored matrix continues bit for bit. */
  static fromJSON(state: FeatureMatrixState): FeatureMatrix {
    if (state.v !== 1) throw new TypeError(`unsupported feature matrix state version ${String(state.v)}`);
    if (!Number.isInteger(state.count) || state.count < 0) throw new TypeError('feature matrix count is invalid');
    const m = new FeatureMatrix();
    m.count = state.count;
    m.rows.set(decodeFloat64Bits(state.rows, m.rows.length, 'rows'));
    m.closes.set(decodeFloat64Bits(state.closes, m.closes.length, 'closes'));
    m.volume = RollingStats.fromJSON(state.volume);
    m.returns20 = RollingStats.fromJSON(state.returns20);
    m.returns48 = RollingStats.fromJSON(state.returns48);
    m.returns12 = RollingStats.fromJSON(state.returns12);
    m.returns24 = RollingStats.fromJSON(state.returns24);
    m.returns6 = RollingStats.fromJSON(state.returns6);
    m.amihud = RollingStats.fromJSON(state.amihud);
    m.rsi = Rsi.fromJSON(state.rsi);
    m.macd = Macd.fromJSON(state.macd);
    m.bands = BollingerBands.fromJSON(state.bands);
    m.clv = Ema.fromJSON(state.clv);
    m.corr = RollingCorrelation.fromJSON(state.corr);
    m.er = EfficiencyRatio.fromJSON(state.er);
    m.highs = RollingMinMax.fromJSON(state.highs);
    return m;
  }
}
