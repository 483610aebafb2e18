import { generateSyntheticMarket, type Regime } from '../producers/synthetic-market';
import type { ConfidenceLevel } from '../../schemas/strategic-context.schema';
import type { TacticalPolicy } from './policy';
import {
  annualisedSharpe,
  barReturns,
  blockBootstrap,
  maxDrawdown,
  netReturn,
  pairedSharpeGain,
  type BootstrapOptions,
  type Interval,
} from './stats';
import { strategicInputs } from './strategic-series';
import { backtest, prepareSeries, WARMUP_BARS, type DecisionRule, type MarketSeries } from './trading-agents';
import { DEFAULT_COSTS, RISK_SIZES, type EnvBar, type TradeDecision, type TradingCosts } from './trading-env';

/**
 * Walk-forward evaluation of the greedy policy against baselines on the same bars and costs, with
 * moving-block bootstrap intervals. Pure compute: the CLI (`cli/evaluate.ts`) reads the files and
 * writes the reports.
 */

const FLAT: TradeDecision = { tactical: 'FLAT', risk: 0, execution: 'WAIT', target_position: 0 };
const full = (direction: 1 | -1): TradeDecision =>
  direction > 0
    ? { tactical: 'LONG', risk: 1, execution: 'MARKET', target_position: 1 }
    : { tactical: 'SHORT', risk: 1, execution: 'MARKET', target_position: -1 };

export const flatBaseline: DecisionRule = () => FLAT;
export const buyAndHoldBaseline: DecisionRule = () => full(1);

/**
 * EMA-26 trend rule with hysteresis: long when the close is more than `band` ATRs above EMA-26,
 * short when more than `band` ATRs below, otherwise keep the current position; full size, MARKET.
 */
export function emaTrendBaseline(band = 0.5): DecisionRule {
  return ({ indicators, bar, state }) => {
    const { ema26, atr14 } = indicators;
    if (ema26 === null || atr14 === null) return FLAT;
    if (bar.close > ema26 + band * atr14) return full(1);
    if (bar.close < ema26 - band * atr14) return full(-1);
    if (state.position === 0) return FLAT;
    return { tactical: state.position > 0 ? 'LONG' : 'SHORT', risk: Math.abs(state.position), execution: 'WAIT', target_position: state.position };
  };
}

/**
 * The EMA trend rule's direction ({@link emaTrendBaseline}) at the size the policy's risk budget
 * allows (`RISK_BUDGET`: by the strategic confidence tier), MARKET orders: what the budget alone
 * costs a trend rule, the reference for the policy, whose size the same budget caps.
 */
export function emaTrendBudgetBaseline(band = 0.5): DecisionRule {
  const direction = emaTrendBaseline(band);
  return (input) => {
    const dir = Math.sign(direction(input).target_position);
    const size = Math.max(0, input.observations.riskBudget);
    if (dir === 0 || size === 0) return input.state.position === 0 ? FLAT : { ...FLAT, execution: 'MARKET' };
    return { tactical: dir > 0 ? 'LONG' : 'SHORT', risk: size, execution: 'MARKET', target_position: dir * size };
  };
}

/** MACD crossover for the direction, the policy's risk actor for the size (within the risk budget), MARKET orders. */
export function macdWithPolicySizing(policy: TacticalPolicy): DecisionRule {
  return ({ indicators, observations }) => {
    if (indicators.macd === null || indicators.macd_signal === null) return FLAT;
    const size = Math.min(RISK_SIZES[policy.decideObservations(observations).actionIndices.risk] as number, observations.riskBudget);
    if (size === 0) return FLAT;
    const dir = indicators.macd > indicators.macd_signal ? 1 : -1;
    return { tactical: dir > 0 ? 'LONG' : 'SHORT', risk: size, execution: 'MARKET', target_position: dir * size };
  };
}

/** Long in BULL, short in BEAR (the strategic view's most probable regime), flat otherwise; full size, MARKET. */
export const regimeBaseline: DecisionRule = ({ strategic }) => {
  const p = strategic?.regime_probabilities;
  if (!p) return FLAT;
  const best = Object.entries<number>(p).reduce((a, b) => (b[1] > a[1] ? b : a));
  return best[0] === 'BULL' ? full(1) : best[0] === 'BEAR' ? full(-1) : FLAT;
};

/** The greedy policy as a decision rule. */
export function policyRule(policy: TacticalPolicy): DecisionRule {
  return ({ observations }) => policy.decideObservations(observations);
}

/** Per-bar record of one rule over bars [from, to] of a series. */
export interface RuleRun {
  returns: number[];
  /** |position change| per bar. */
  turnover: number[];
  /** 1 when a position is held into the bar, else 0. */
  inMarket: number[];
  /** Equity path, starting at 1. */
  equity: number[];
  /** |target position| of each decision, and the strategic confidence it was made under. */
  sizes: { size: number; confidence: ConfidenceLevel | null }[];
}

export function runRule(series: MarketSeries, rule: DecisionRule, from: number, to: number, costs: TradingCosts): RuleRun {
  const sizes: RuleRun['sizes'] = [];
  const r = backtest(
    series,
    (input) => {
      const d = rule(input);
      sizes.push({ size: Math.abs(d.target_position), confidence: input.strategic?.confidence ?? null });
      return d;
    },
    from,
    to,
    costs,
  );
  const turnover: number[] = [];
  const inMarket: number[] = [];
  let prev = 0;
  // positions[i] is held from decision i into the next bar: the i-th return.
  for (const p of r.positions) {
    turnover.push(Math.abs(p - prev));
    inMarket.push(p !== 0 ? 1 : 0);
    prev = p;
  }
  const returns = barReturns(r.equity);
  return { returns, turnover: turnover.slice(0, returns.length), inMarket: inMarket.slice(0, returns.length), equity: r.equity, sizes };
}

/** The five metrics with 95 % intervals. */
export interface MetricsWithIntervals {
  netReturn: Interval;
  sharpe: Interval;
  maxDrawdown: Interval;
  turnover: Interval;
  timeInMarket: Interval;
  bars: number;
}

const sum = (a: Float64Array): number => a.reduce((x, y) => x + y, 0);
const mean = (a: Float64Array): number => (a.length === 0 ? 0 : sum(a) / a.length);

export function metricsWithIntervals(run: RuleRun, options: BootstrapOptions = {}): MetricsWithIntervals {
  const one = (stat: (r: Float64Array[]) => number): Interval => blockBootstrap([run.returns, run.turnover, run.inMarket], stat, options);
  return {
    netReturn: one((r) => netReturn(r[0] as Float64Array)),
    sharpe: one((r) => annualisedSharpe(r[0] as Float64Array)),
    maxDrawdown: one((r) => maxDrawdown(r[0] as Float64Array)),
    turnover: one((r) => sum(r[1] as Float64Array)),
    timeInMarket: one((r) => mean(r[2] as Float64Array)),
    bars: run.returns.length,
  };
}

export const BASELINES = ['flat', 'buyAndHold', 'emaTrend', 'emaTrendBudget', 'macdPolicySizing', 'regime'] as const;
export type RuleName = 'policy' | (typeof BASELINES)[number];

/** The rules compared, by name. */
export function rulesFor(policy: TacticalPolicy, emaBand = 0.5): Record<RuleName, DecisionRule> {
  return {
    policy: policyRule(policy),
    flat: flatBaseline,
    buyAndHold: buyAndHoldBaseline,
    emaTrend: emaTrendBaseline(emaBand),
    emaTrendBudget: emaTrendBudgetBaseline(emaBand),
    macdPolicySizing: macdWithPolicySizing(policy),
    regime: regimeBaseline,
  };
}

/** One evaluated market (a real symbol's test third, or one synthetic test series). */
export interface MarketEvaluation {
  name: string;
  bars: number;
  firstTs: number;
  lastTs: number;
  metrics: Record<RuleName, MetricsWithIntervals>;
  /** Paired Sharpe gain of the policy over each baseline. */
  policyGain: Record<(typeof BASELINES)[number], Interval>;
  /** Mean |target position| of the policy by strategic confidence (null: no decision at that level). */
  sizeByConfidence: Record<ConfidenceLevel | 'none', { mean: number | null; decisions: number }>;
  equity: Record<RuleName, number[]>;
  /** Consecutive sub-windows of the evaluated bars (the same trading, measured per window). */
  windows: { firstTs: number; lastTs: number; sharpe: Record<RuleName, number>; netReturn: Record<RuleName, number> }[];
}

/** Evaluates the policy and the baselines on bars [from, to] of a series. */
export function evaluateMarket(
  name: string,
  series: MarketSeries,
  rules: Record<RuleName, DecisionRule>,
  from: number,
  to: number,
  costs: TradingCosts = DEFAULT_COSTS,
  bootstrap: BootstrapOptions = {},
  windowBars = 0,
): MarketEvaluation {
  const runs = {} as Record<RuleName, RuleRun>;
  for (const [k, rule] of Object.entries(rules) as [RuleName, DecisionRule][]) runs[k] = runRule(series, rule, from, to, costs);
  const metrics = {} as Record<RuleName, MetricsWithIntervals>;
  const equity = {} as Record<RuleName, number[]>;
  for (const k of Object.keys(runs) as RuleName[]) {
    metrics[k] = metricsWithIntervals(runs[k], bootstrap);
    equity[k] = runs[k].equity;
  }
  const policyGain = {} as MarketEvaluation['policyGain'];
  for (const b of BASELINES) policyGain[b] = pairedSharpeGain(runs.policy.returns, runs[b].returns, bootstrap);
  const sizeByConfidence = {} as MarketEvaluation['sizeByConfidence'];
  for (const level of ['LOW', 'MEDIUM', 'HIGH', 'none'] as const) {
    const xs = runs.policy.sizes.filter((s) => (s.confidence ?? 'none') === level).map((s) => s.size);
    sizeByConfidence[level] = { mean: xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length, decisions: xs.length };
  }
  const windows: MarketEvaluation['windows'] = [];
  if (windowBars > 0) {
    for (const [a, b] of rollingWindows(0, to - from, windowBars)) {
      const sharpe = {} as Record<RuleName, number>;
      const net = {} as Record<RuleName, number>;
      for (const k of Object.keys(runs) as RuleName[]) {
        const slice = runs[k].returns.slice(a, b);
        sharpe[k] = annualisedSharpe(slice);
        net[k] = netReturn(slice);
      }
      windows.push({ firstTs: (series.bars[from + a] as EnvBar).ts, lastTs: (series.bars[from + b] as EnvBar).ts, sharpe, netReturn: net });
    }
  }
  return {
    name,
    windows,
    bars: to - from,
    firstTs: (series.bars[from] as EnvBar).ts,
    lastTs: (series.bars[to] as EnvBar).ts,
    metrics,
    policyGain,
    sizeByConfidence,
    equity,
  };
}

/** A 5m series with indicators and its strategic view (the analyzer over its 30m bars). */
export function withStrategicView(symbol: string, bars: readonly EnvBar[]): MarketSeries {
  return prepareSeries(bars, strategicInputs(symbol, bars));
}

/**
 * The mirror image of a bar series: every log price negated around the first open, so that each
 * up-move becomes the same down-move and the reverse (a BULL segment becomes a BEAR one). Price p
 * becomes p₀²/p (p₀ the first open, which stays where it was); high and low swap roles, volume and
 * times are unchanged. Training on a series and its mirror means the drift of a training period
 * cannot become a standing bias: a policy must read the direction from the features (which the
 * caller recomputes on the mirrored bars, as {@link mirroredWithStrategicView} does).
 */
export function mirrorBars(bars: readonly EnvBar[]): EnvBar[] {
  if (bars.length === 0) return [];
  const k = (bars[0] as EnvBar).open ** 2;
  return bars.map((b) => ({ ts: b.ts, open: k / b.open, high: k / b.low, low: k / b.high, close: k / b.close, volume: b.volume }));
}

/** Where a real series is cut: the first `trainFraction` trains, the rest is the test part. */
export function walkForwardSplit(n: number, trainFraction = 2 / 3): { trainEnd: number; testFrom: number; testTo: number } {
  const trainEnd = Math.floor(n * trainFraction);
  // The test part starts after the training part (no overlap) and after indicator warm-up.
  return { trainEnd, testFrom: Math.max(trainEnd, WARMUP_BARS), testTo: n - 1 };
}

/** Consecutive windows of `size` bars over [from, to]; the remainder is dropped. */
export function rollingWindows(from: number, to: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = from; a + size <= to; a += size) out.push([a, a + size]);
  return out;
}

/** A synthetic family of markets. */
export interface SyntheticFamily {
  name: string;
  description: string;
  regimes?: readonly Regime[];
  regimeSequence?: readonly Regime[];
  driftSigma: readonly [number, number];
  segmentBars: readonly [number, number];
  /** Whether trends persist (the target compares these with the EMA rule). */
  persistentTrends: boolean;
}

export const SYNTHETIC_FAMILIES: readonly SyntheticFamily[] = Object.freeze([
  { name: 'strong-trends', description: 'alternating BULL/BEAR segments of 3-7 days, drift 0.4-0.8 σ per bar', regimeSequence: ['BULL', 'BEAR'], driftSigma: [0.4, 0.8], segmentBars: [864, 2016], persistentTrends: true },
  { name: 'weak-trends', description: 'alternating BULL/BEAR segments of 3-7 days, drift 0.1-0.2 σ per bar', regimeSequence: ['BULL', 'BEAR'], driftSigma: [0.1, 0.2], segmentBars: [864, 2016], persistentTrends: true },
  { name: 'mixed-regimes', description: 'random BULL/BEAR/SIDEWAYS/VOLATILE segments of 1-3 days, drift 0.2-0.5 σ', driftSigma: [0.2, 0.5], segmentBars: [288, 864], persistentTrends: false },
  { name: 'no-trend', description: 'SIDEWAYS and VOLATILE segments only (no drift: nothing to earn)', regimes: ['SIDEWAYS', 'VOLATILE'], driftSigma: [0.2, 0.5], segmentBars: [288, 864], persistentTrends: false },
]);

/** The bars of one synthetic market of a family. */
export function syntheticMarket(family: SyntheticFamily, seed: number, bars = 8640): MarketSeries {
  const m = generateSyntheticMarket({
    seed,
    symbol: `SYN-${family.name}-${seed}`,
    bars,
    driftSigma: family.driftSigma,
    segmentBars: family.segmentBars,
    ...(family.regimeSequence ? { regimeSequence: family.regimeSequence } : {}),
    ...(family.regimes ? { regimes: family.regimes } : {}),
  });
  return withStrategicView(`SYN${seed}`, m.bars);
}
