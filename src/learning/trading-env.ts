import type { Indicators } from '../../schemas/integrated-result.schema';
import { buildObservations, type BarInput, type Observations, type StrategicInput } from './features';

/**
 * The trading environment of the three agents, one step per 5m bar, as pure functions over a
 * serialisable per-symbol {@link AgentState}:
 *
 * 1. When bar t arrives, {@link settle} marks the position to market and resolves the limit order
 *    placed at the previous close; the team reward of the previous decision is known now.
 * 2. The agents decide on bar t's close; {@link act} applies the decision: MARKET trades at the
 *    close paying taker fee + half spread, LIMIT rests an order ∓ `limitOffsetVol` × volatility
 *    away from the close that fills at its price only if bar t+1 trades through it (low below a
 *    buy, high above a sell) and pays the maker fee, WAIT does nothing.
 *
 * {@link advance} is both in one call. Positions are fractions of equity in [-1, 1] (the target is
 * direction × risk size) and equity compounds bar by bar. Team reward of a decision:
 * (equity after the next bar − equity before the decision's costs) / equity before, divided by the
 * relative volatility at decision time, so a one-sigma move at full size is worth about 1.
 */

export const TACTICAL_ACTIONS = ['LONG', 'FLAT', 'SHORT'] as const;
export type TacticalAction = (typeof TACTICAL_ACTIONS)[number];
export const RISK_SIZES = [0, 0.25, 0.5, 1] as const;
export const EXECUTION_ACTIONS = ['MARKET', 'LIMIT', 'WAIT'] as const;
export type ExecutionAction = (typeof EXECUTION_ACTIONS)[number];

/** The joint action as the environment needs it. */
export interface TradeDecision {
  tactical: TacticalAction;
  risk: number;
  execution: ExecutionAction;
  /** direction × risk, in [-1, 1]. */
  target_position: number;
}

/** What a decision is decoded against: the risk budget and the position held (see {@link decodeActions}). */
export interface DecisionLimits {
  /** The largest risk size the decision may take (the observations' `riskBudget`, see `RISK_BUDGET` in features.ts). */
  riskBudget: number;
  /** The position held when the decision is made (after the bar is settled), in [-1, 1]. */
  position: number;
}

/**
 * Decodes the three action indices (tactical, risk, execution) into a {@link TradeDecision}
 * against `limits` (the decision's observations carry both):
 * - The risk size is capped at `limits.riskBudget` (the risk budget by strategic confidence).
 * - Decisions are coherent: a direction with risk size 0 is FLAT, and FLAT carries risk 0, so a
 *   result never says LONG or SHORT with nothing at stake.
 * - The execution agent decides how a change of direction is traded, not whether: WAIT defers
 *   only a resize within the direction held. A decision whose direction differs from the held
 *   position's (opening from flat, closing to flat, reversing) with WAIT is traded as LIMIT. The
 *   three agents act at the same time, so the execution agent cannot see what tactical chose; a
 *   WAIT of its own would otherwise veto tactical's call (a trained team held longs through whole
 *   falling trends that way).
 * The action indices themselves are not changed (the trainer needs what each actor chose).
 */
export function decodeActions(actions: readonly number[], limits: DecisionLimits): TradeDecision {
  const chosen = TACTICAL_ACTIONS[actions[0] as number];
  const raw = RISK_SIZES[actions[1] as number];
  const size = raw === undefined ? undefined : Math.min(raw, Math.max(0, limits.riskBudget));
  const picked = EXECUTION_ACTIONS[actions[2] as number];
  if (chosen === undefined || size === undefined || picked === undefined) throw new RangeError(`bad actions ${actions.join(',')}`);
  let direction = chosen === 'LONG' ? 1 : chosen === 'SHORT' ? -1 : 0;
  if (size === 0) direction = 0;
  const execution: ExecutionAction = picked === 'WAIT' && direction !== Math.sign(limits.position) ? 'LIMIT' : picked;
  if (direction === 0) return { tactical: 'FLAT', risk: 0, execution, target_position: 0 };
  return { tactical: chosen, risk: size, execution, target_position: direction * size };
}

/** Trading costs, as fractions of traded notional. */
export interface TradingCosts {
  /** Fee of a MARKET order. @defaultValue 0.0004 (4 bp) */
  takerFee: number;
  /** Fee of a filled LIMIT order. @defaultValue 0.0001 (1 bp) */
  makerFee: number;
  /** Half the bid-ask spread, paid by MARKET orders only. @defaultValue 0.0002 (2 bp) */
  halfSpread: number;
  /** Limit price distance from the close in units of the relative volatility (range EMA). @defaultValue 0.25 */
  limitOffsetVol: number;
}

export const DEFAULT_COSTS: Readonly<TradingCosts> = Object.freeze({
  takerFee: 0.0004,
  makerFee: 0.0001,
  halfSpread: 0.0002,
  limitOffsetVol: 0.25,
});

/** A resting limit order, placed at a close and resolved against the next bar. */
export interface PendingOrder {
  /** Position change if filled (positive buys). */
  delta: number;
  limitPrice: number;
}

/** Everything a worker must checkpoint per symbol (plain JSON). */
export interface AgentState {
  v: 1;
  /** Bars seen. */
  bars: number;
  lastTs: number | null;
  lastClose: number | null;
  /** Fraction of equity held, in [-1, 1]; negative is short. */
  position: number;
  /** Average entry price of the current position (null when flat). */
  entryPrice: number | null;
  /** Equity, starting at 1. */
  equity: number;
  peakEquity: number;
  /** Equity just before the last decision's costs: the base of its reward. */
  equityAtDecision: number | null;
  /** Relative volatility at the last decision: the scale of its reward. */
  volAtDecision: number | null;
  pending: PendingOrder | null;
  /** The last limit order expired unfilled. */
  lastOrderUnfilled: boolean;
  /** EMA (α = 2/15) of (high − low)/close. */
  rangeEma: number | null;
  /** EMA (α = 2/15) of volume. */
  volumeEma: number | null;
  lastDecision: TradeDecision | null;
  /** Σ |position change| filled so far. */
  turnover: number;
  /** Σ fees and spread paid, in equity units. */
  costsPaid: number;
}

export function initialAgentState(): AgentState {
  return {
    v: 1,
    bars: 0,
    lastTs: null,
    lastClose: null,
    position: 0,
    entryPrice: null,
    equity: 1,
    peakEquity: 1,
    equityAtDecision: null,
    volAtDecision: null,
    pending: null,
    lastOrderUnfilled: false,
    rangeEma: null,
    volumeEma: null,
    lastDecision: null,
    turnover: 0,
    costsPaid: 0,
  };
}

/** Serialises an agent state (for Redis). */
export function agentStateToJSON(state: AgentState): string {
  return JSON.stringify(state);
}

/** Parses and checks a state saved by {@link agentStateToJSON}. */
export function agentStateFromJSON(text: string): AgentState {
  const s = JSON.parse(text) as Partial<AgentState>;
  const keys = Object.keys(initialAgentState()) as (keyof AgentState)[];
  if (s.v !== 1 || keys.some((k) => !(k in s))) throw new TypeError('not an AgentState v1');
  if (typeof s.position !== 'number' || !Number.isFinite(s.equity)) throw new TypeError('AgentState has a bad position or equity');
  return s as AgentState;
}

/** A bar with its open time, as the environment needs it. */
export interface EnvBar extends BarInput {
  ts: number;
}

/** Result of {@link settle}. */
export interface SettleResult {
  state: AgentState;
  /** Team reward of the previous decision (null before the first decision). */
  reward: number | null;
  /** Whether the previous bar's limit order filled (null when there was none). */
  filled: boolean | null;
}

const ALPHA = 2 / 15;
const ema = (prev: number | null, x: number): number => (prev === null ? x : prev + ALPHA * (x - prev));

function moveEntry(position: number, entry: number | null, delta: number, price: number): number | null {
  const next = position + delta;
  if (Math.abs(next) < 1e-12) return null;
  if (entry === null || Math.sign(next) !== Math.sign(position)) return price; // opened or flipped
  if (Math.abs(next) > Math.abs(position)) return (entry * Math.abs(position) + price * Math.abs(delta)) / Math.abs(next);
  return entry; // reduced: entry unchanged
}

/** Marks to market on `bar` and resolves the pending limit order (step 1 above). Pure. */
export function settle(state: AgentState, bar: EnvBar, costs: TradingCosts = DEFAULT_COSTS): SettleResult {
  const s: AgentState = { ...state, pending: null };
  let filled: boolean | null = null;
  if (state.lastClose !== null) {
    const prev = state.lastClose;
    const order = state.pending;
    if (order !== null) {
      filled = order.delta > 0 ? bar.low < order.limitPrice : bar.high > order.limitPrice;
      s.lastOrderUnfilled = !filled;
    }
    if (order !== null && filled) {
      const p = order.limitPrice;
      s.equity *= 1 + s.position * (p / prev - 1);
      const fee = Math.abs(order.delta) * costs.makerFee * s.equity;
      s.equity -= fee;
      s.costsPaid += fee;
      s.turnover += Math.abs(order.delta);
      s.entryPrice = moveEntry(s.position, s.entryPrice, order.delta, p);
      s.position = clampPosition(s.position + order.delta);
      s.equity *= 1 + s.position * (bar.close / p - 1);
    } else {
      s.equity *= 1 + s.position * (bar.close / prev - 1);
    }
  }
  let reward: number | null = null;
  if (state.equityAtDecision !== null && state.volAtDecision !== null) {
    reward = (s.equity - state.equityAtDecision) / state.equityAtDecision / state.volAtDecision;
  }
  s.peakEquity = Math.max(s.peakEquity, s.equity);
  s.rangeEma = ema(s.rangeEma, (bar.high - bar.low) / bar.close);
  s.volumeEma = ema(s.volumeEma, bar.volume);
  s.lastClose = bar.close;
  s.lastTs = bar.ts;
  s.bars += 1;
  s.equityAtDecision = null;
  s.volAtDecision = null;
  return { state: s, reward, filled };
}

function clampPosition(x: number): number {
  return Math.abs(x) < 1e-12 ? 0 : Math.max(-1, Math.min(1, x));
}

/** Reward scale: the range EMA, floored at 1e-4 so a flat market cannot blow the reward up. */
export function rewardScale(state: AgentState): number {
  return Math.max(state.rangeEma ?? 0.002, 1e-4);
}

/** Applies a decision made on the close of the settled bar (step 2 above). Pure. */
export function act(settled: AgentState, decision: TradeDecision, costs: TradingCosts = DEFAULT_COSTS): AgentState {
  if (settled.lastClose === null) throw new RangeError('act needs a settled bar');
  const s: AgentState = { ...settled, lastDecision: decision, equityAtDecision: settled.equity, volAtDecision: rewardScale(settled) };
  const close = settled.lastClose;
  const delta = clampPosition(decision.target_position) - s.position;
  if (Math.abs(delta) < 1e-12 || decision.execution === 'WAIT') return s;
  if (decision.execution === 'MARKET') {
    const cost = Math.abs(delta) * (costs.takerFee + costs.halfSpread) * s.equity;
    s.equity -= cost;
    s.costsPaid += cost;
    s.turnover += Math.abs(delta);
    s.entryPrice = moveEntry(s.position, s.entryPrice, delta, close);
    s.position = clampPosition(s.position + delta);
    return s;
  }
  const offset = costs.limitOffsetVol * rewardScale(settled) * close;
  s.pending = { delta, limitPrice: delta > 0 ? close - offset : close + offset };
  return s;
}

/** {@link settle} then {@link act}: the state after `bar` and the decision made on its close. */
export function advance(
  state: AgentState,
  bar: EnvBar,
  decision: TradeDecision,
  costs: TradingCosts = DEFAULT_COSTS,
): { state: AgentState; reward: number | null; filled: boolean | null } {
  const settled = settle(state, bar, costs);
  return { state: act(settled.state, decision, costs), reward: settled.reward, filled: settled.filled };
}

/** Observations of a decision on `bar`, given the state before the bar (settles internally). */
export function observe(
  stateBeforeBar: AgentState,
  bar: EnvBar,
  indicators: Indicators,
  strategic: StrategicInput | null,
  costs: TradingCosts = DEFAULT_COSTS,
): { observations: Observations; settled: SettleResult } {
  const settled = settle(stateBeforeBar, bar, costs);
  return { observations: buildObservations(indicators, strategic, bar, settled.state), settled };
}
