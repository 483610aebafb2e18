import type { Feedback } from '../../schemas/feedback.schema';
import type { ConfidenceLevel, RegimeName } from '../../schemas/strategic-context.schema';
import type { AgentState } from '../learning/trading-env';
import { completesPeriod, periodCloseOf } from '../util/periods';

/** The tactical side's open feedback window for one symbol (plain data, checkpointed). */
export interface FeedbackWindowState {
  periodClose: number;
  bars: number;
  directional: number;
  hits: number;
  logReturn: number;
  turnoverStart: number;
  costsStart: number;
  regime: RegimeName | null;
  confidence: ConfidenceLevel | null;
  modelVersion: string | null;
}

/** What one 5m bar contributes to its window. */
export interface FeedbackBarInput {
  symbol: string;
  ts: number;
  close: number;
  /** Agent state before and after the bar (null without agents). */
  before: AgentState | null;
  after: AgentState | null;
  regime: RegimeName | null;
  confidence: ConfidenceLevel | null;
  modelVersion: string | null;
}

/**
 * Six-bar feedback, tactical side, as a pure step. Each 5m bar belongs to the window of its 30m
 * period; the bar realises the outcome of the decision made on the previous bar (a hit when a LONG
 * or SHORT call had the direction of the close-to-close move; the log change of equity after costs).
 * A window is emitted by its last bar (open time = period close − 5m), or, when that bar is missing,
 * by the first bar of a later period: so there is exactly one feedback message per 30m period with
 * bars, the same set of periods the resampler turns into 30m bars, decided by the bars alone.
 */
export function feedbackStep(
  window: FeedbackWindowState | null,
  input: FeedbackBarInput,
): { window: FeedbackWindowState | null; emitted: Feedback[] } {
  const emitted: Feedback[] = [];
  const periodClose = periodCloseOf(input.ts);
  let w = window;
  if (w !== null && w.periodClose !== periodClose) {
    emitted.push(toMessage(input.symbol, w, input.before));
    w = null;
  }
  if (w === null) {
    w = {
      periodClose,
      bars: 0,
      directional: 0,
      hits: 0,
      logReturn: 0,
      turnoverStart: input.before?.turnover ?? 0,
      costsStart: input.before?.costsPaid ?? 0,
      regime: null,
      confidence: null,
      modelVersion: null,
    };
  }
  const next: FeedbackWindowState = { ...w, bars: w.bars + 1, regime: input.regime, confidence: input.confidence, modelVersion: input.modelVersion };
  const before = input.before;
  const after = input.after;
  if (before !== null && after !== null) {
    const call = before.lastDecision?.tactical;
    if ((call === 'LONG' || call === 'SHORT') && before.lastClose !== null) {
      next.directional++;
      const move = input.close - before.lastClose;
      if ((call === 'LONG' && move > 0) || (call === 'SHORT' && move < 0)) next.hits++;
    }
    if (before.equity > 0 && after.equity > 0) next.logReturn += Math.log(after.equity / before.equity);
  }
  if (completesPeriod(input.ts)) {
    emitted.push(toMessage(input.symbol, next, after));
    return { window: null, emitted };
  }
  return { window: next, emitted };
}

function toMessage(symbol: string, w: FeedbackWindowState, latest: AgentState | null): Feedback {
  const traded = (latest?.turnover ?? w.turnoverStart) - w.turnoverStart;
  const costs = (latest?.costsPaid ?? w.costsStart) - w.costsStart;
  return {
    v: 1,
    symbol,
    window_close_ts: w.periodClose,
    bars: w.bars,
    directional: w.directional,
    hits: w.hits,
    hit_rate: w.directional === 0 ? null : w.hits / w.directional,
    realised_return: w.logReturn,
    slippage_bps: traded > 1e-12 ? (costs / traded) * 1e4 : null,
    regime: w.regime,
    confidence: w.confidence,
    model_version: w.modelVersion,
  };
}
