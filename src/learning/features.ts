import type { Ohlcv } from '../../schemas/bar.schema';
import type { Indicators } from '../../schemas/integrated-result.schema';
import type { RegimeProbabilities, SimilarPatterns, ConfidenceLevel } from '../../schemas/strategic-context.schema';

/**
 * What the three actors and the critic observe. All inputs are scaled to roughly unit size and
 * clipped to [-5, 5]; a missing value (indicator warm-up, no strategic context) is 0 and a flag
 * says it is missing, so the networks can tell "absent" from "zero".
 */

/** OHLCV of the bar being decided on. */
export type BarInput = Ohlcv;

/** The strategic context as the tactical side sees it (fields of the wire contract; null when absent). */
export interface StrategicInput {
  regime_probabilities: RegimeProbabilities | null;
  uncertainty: number | null;
  confidence: ConfidenceLevel | null;
  similar_patterns: SimilarPatterns | null;
}

/** The parts of the per-symbol agent state the observations use (see `AgentState`). */
export interface ObservedState {
  position: number;
  entryPrice: number | null;
  equity: number;
  peakEquity: number;
  rangeEma: number | null;
  volumeEma: number | null;
  lastOrderUnfilled: boolean;
}

// The observation sizes are part of the experience message, so the schema owns them.
import { EXECUTION_OBS_DIM, GLOBAL_STATE_DIM, RISK_OBS_DIM, TACTICAL_OBS_DIM } from '../../schemas/experience.schema';
export { EXECUTION_OBS_DIM, GLOBAL_STATE_DIM, RISK_OBS_DIM, TACTICAL_OBS_DIM };

/** Observations of one decision. */
export interface Observations {
  tactical: number[];
  risk: number[];
  execution: number[];
  /** The critic's global state: the three observations concatenated. */
  global: number[];
  /** The largest risk size the decision may take, by the strategic confidence ({@link riskBudget}). */
  riskBudget: number;
  /** The position held when the decision is made (the state's, after the bar is settled). */
  position: number;
}

/**
 * The risk budget: a fixed rule, not learned. The risk agent's size is capped by the strategic
 * view's confidence tier: at most 1 (full size) at HIGH, 0.5 at MEDIUM, 0.1 at LOW and 0.1 when
 * there is no strategic context (before the analyzer has warmed up, or when it is down). The cap is
 * carried in the observations, so training, evaluation and live decisions apply it alike.
 */
export const RISK_BUDGET: Readonly<Record<ConfidenceLevel | 'none', number>> = Object.freeze({ HIGH: 1, MEDIUM: 0.5, LOW: 0.1, none: 0.1 });

/** The risk budget of a decision under `strategic` (see {@link RISK_BUDGET}). */
export function riskBudget(strategic: StrategicInput | null): number {
  return RISK_BUDGET[strategic?.confidence ?? 'none'];
}

const clip = (x: number): number => (Number.isFinite(x) ? Math.max(-5, Math.min(5, x)) : 0);
const CONFIDENCE_LEVEL: Record<ConfidenceLevel, number> = { LOW: 0, MEDIUM: 0.5, HIGH: 1 };
/** Typical 5m relative range (0.2 %) maps to 1. */
const VOL_SCALE = 500;

/** Relative volatility used for scaling: ATR/close when known, else the state's range EMA, else 0.2 %. */
export function relativeVolatility(indicators: Indicators, bar: BarInput, state: ObservedState): number {
  if (indicators.atr14 !== null && indicators.atr14 > 0) return indicators.atr14 / bar.close;
  if (state.rangeEma !== null && state.rangeEma > 0) return state.rangeEma;
  return 0.002;
}

/**
 * Builds every agent's observation. `state` is the agent state after the bar has been settled
 * (mark-to-market and limit-order resolution, see `settle` in trading-env.ts).
 *
 * - tactical (23): price vs SMA20/EMA12/EMA26, EMA12−EMA26, MACD signal and histogram (all in ATRs),
 *   RSI, %B, Bollinger width, ATR/close, indicators-ready flag; regime probabilities, confidence,
 *   uncertainty, similar-pattern mean forward return / up fraction / distance / present flag,
 *   strategic-present flag; current position.
 * - risk (10): range EMA and ATR (relative), drawdown, position, |position|, unrealised P&L in
 *   volatility units, strategic uncertainty, strategic-present flag, VOLATILE probability, trend
 *   (EMA12 − EMA26 in ATRs).
 * - execution (10): bar range and body in ATRs, log volume vs its EMA, spread proxy (range/close),
 *   last limit order unfilled, position, MACD histogram in ATRs, indicators-ready flag, trend
 *   (EMA12 − EMA26 in ATRs) and price vs EMA26 in ATRs. The agents act simultaneously, so the
 *   execution agent cannot see tactical's choice; the trend features let it judge whether the
 *   current position is the one the trend calls for and a trade is worth paying for.
 */
export function buildObservations(
  indicators: Indicators,
  strategic: StrategicInput | null,
  bar: BarInput,
  state: ObservedState,
): Observations {
  const c = bar.close;
  const vol = relativeVolatility(indicators, bar, state);
  const atr = vol * c;
  const inAtr = (x: number | null): number => (x === null ? 0 : clip(x / atr));
  const vsClose = (x: number | null): number => (x === null ? 0 : clip((c - x) / atr));
  const ready = Object.values(indicators).every((v) => v !== null) ? 1 : 0;
  const { ema12, ema26, rsi14, bb_upper, bb_middle, bb_lower } = indicators;
  const bbHalf = bb_upper !== null && bb_middle !== null ? bb_upper - bb_middle : null;
  const tactical = [
    vsClose(indicators.sma20),
    vsClose(ema12),
    vsClose(ema26),
    ema12 !== null && ema26 !== null ? inAtr(ema12 - ema26) : 0,
    inAtr(indicators.macd_signal),
    inAtr(indicators.macd_hist),
    rsi14 === null ? 0 : clip((rsi14 - 50) / 50),
    bbHalf !== null && bbHalf > 0 && bb_middle !== null ? clip((c - bb_middle) / bbHalf) : 0,
    bb_upper !== null && bb_lower !== null ? clip((bb_upper - bb_lower) / atr / 4) : 0,
    clip(vol * VOL_SCALE),
    ready,
  ];
  const probs = strategic?.regime_probabilities ?? null;
  const sim = strategic?.similar_patterns ?? null;
  const simPresent = sim !== null && sim.k > 0;
  tactical.push(
    probs?.BULL ?? 0,
    probs?.BEAR ?? 0,
    probs?.SIDEWAYS ?? 0,
    probs?.VOLATILE ?? 0,
    strategic?.confidence ? CONFIDENCE_LEVEL[strategic.confidence] : 0,
    strategic?.uncertainty ?? 0,
    simPresent && sim.mean_forward_return !== null ? clip(sim.mean_forward_return / vol) : 0,
    simPresent && sim.up_fraction !== null ? clip(2 * (sim.up_fraction - 0.5)) : 0,
    simPresent && sim.mean_distance !== null ? clip(sim.mean_distance) : 0,
    simPresent ? 1 : 0,
    strategic !== null ? 1 : 0,
    state.position,
  );
  const trend = tactical[3] as number;
  const drawdown = state.peakEquity > 0 ? 1 - state.equity / state.peakEquity : 0;
  const unrealised =
    state.entryPrice !== null && state.position !== 0 ? clip(((c / state.entryPrice - 1) * Math.sign(state.position)) / vol) : 0;
  const risk = [
    clip((state.rangeEma ?? vol) * VOL_SCALE),
    clip(vol * VOL_SCALE),
    clip(drawdown * 10),
    state.position,
    Math.abs(state.position),
    unrealised,
    strategic?.uncertainty ?? 0,
    strategic !== null ? 1 : 0,
    probs?.VOLATILE ?? 0,
    trend,
  ];
  const execution = [
    clip((bar.high - bar.low) / atr),
    clip((bar.close - bar.open) / atr),
    state.volumeEma !== null && state.volumeEma > 0 && bar.volume > 0 ? clip(Math.log(bar.volume / state.volumeEma)) : 0,
    clip(((bar.high - bar.low) / c) * VOL_SCALE),
    state.lastOrderUnfilled ? 1 : 0,
    state.position,
    inAtr(indicators.macd_hist),
    ready,
    trend,
    vsClose(ema26),
  ];
  return { tactical, risk, execution, global: [...tactical, ...risk, ...execution], riskBudget: riskBudget(strategic), position: state.position };
}

/**
 * The eleven indicators of the wire contract computed in one small streaming class, for the
 * learning code's own simulations and evaluation (the pipeline's `src/indicators/` is the
 * reference implementation; this one follows the same conventions: SMA-seeded EMAs, Wilder RSI
 * and ATR, population-std Bollinger 20/2).
 */
export class SimpleIndicators {
  private closes: number[] = [];
  private ema12: number | null = null;
  private ema26: number | null = null;
  private macdHistory: number[] = [];
  private signal: number | null = null;
  private gains: number[] = [];
  private losses: number[] = [];
  private avgGain: number | null = null;
  private avgLoss: number | null = null;
  private trs: number[] = [];
  private atr: number | null = null;
  private prevClose: number | null = null;
  private count = 0;

  update(high: number, low: number, close: number): Indicators {
    this.count++;
    this.closes.push(close);
    if (this.closes.length > 26) this.closes.shift();
    const n = this.count;
    const window = (k: number): number[] => this.closes.slice(-k);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    // EMAs seeded with the SMA of the first n closes.
    if (n === 12) this.ema12 = mean(window(12));
    else if (n > 12 && this.ema12 !== null) this.ema12 += (2 / 13) * (close - this.ema12);
    if (n === 26) this.ema26 = mean(window(26));
    else if (n > 26 && this.ema26 !== null) this.ema26 += (2 / 27) * (close - this.ema26);
    let macd: number | null = null;
    if (this.ema12 !== null && this.ema26 !== null) {
      macd = this.ema12 - this.ema26;
      if (this.signal === null) {
        this.macdHistory.push(macd);
        if (this.macdHistory.length === 9) this.signal = mean(this.macdHistory);
      } else this.signal += (2 / 10) * (macd - this.signal);
    }
    // RSI 14 (Wilder) and ATR 14 (Wilder, first bar has no true range).
    if (this.prevClose !== null) {
      const d = close - this.prevClose;
      const g = Math.max(d, 0);
      const l = Math.max(-d, 0);
      if (this.avgGain === null || this.avgLoss === null) {
        this.gains.push(g);
        this.losses.push(l);
        if (this.gains.length === 14) {
          this.avgGain = mean(this.gains);
          this.avgLoss = mean(this.losses);
        }
      } else {
        this.avgGain = (this.avgGain * 13 + g) / 14;
        this.avgLoss = (this.avgLoss * 13 + l) / 14;
      }
      const tr = Math.max(high - low, Math.abs(high - this.prevClose), Math.abs(low - this.prevClose));
      if (this.atr === null) {
        this.trs.push(tr);
        if (this.trs.length === 14) this.atr = mean(this.trs);
      } else this.atr = (this.atr * 13 + tr) / 14;
    }
    this.prevClose = close;
    let rsi: number | null = null;
    if (this.avgGain !== null && this.avgLoss !== null) {
      rsi = this.avgLoss === 0 ? (this.avgGain === 0 ? 50 : 100) : 100 - 100 / (1 + this.avgGain / this.avgLoss);
    }
    let sma20: number | null = null;
    let upper: number | null = null;
    let lower: number | null = null;
    if (n >= 20) {
      const w = window(20);
      sma20 = mean(w);
      const m = sma20;
      const sd = Math.sqrt(mean(w.map((x) => (x - m) ** 2)));
      upper = sma20 + 2 * sd;
      lower = sma20 - 2 * sd;
    }
    return {
      sma20,
      ema12: this.ema12,
      ema26: this.ema26,
      rsi14: rsi,
      macd,
      macd_signal: this.signal,
      macd_hist: macd !== null && this.signal !== null ? macd - this.signal : null,
      bb_upper: upper,
      bb_middle: sma20,
      bb_lower: lower,
      atr14: this.atr,
    };
  }
}
