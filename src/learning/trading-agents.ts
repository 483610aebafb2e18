import type { Indicators } from '../../schemas/integrated-result.schema';
import { SeededRandom } from '../util/random';
import {
  EXECUTION_OBS_DIM,
  GLOBAL_STATE_DIM,
  RISK_OBS_DIM,
  SimpleIndicators,
  TACTICAL_OBS_DIM,
  type Observations,
  type StrategicInput,
} from './features';
import type { Mappo, MappoOptions, Step, TeamSpec, Trajectory } from './mappo';
import { mlpParameterCount } from './network';
import {
  act,
  DEFAULT_COSTS,
  decodeActions,
  EXECUTION_ACTIONS,
  initialAgentState,
  observe,
  RISK_SIZES,
  TACTICAL_ACTIONS,
  type AgentState,
  type EnvBar,
  type TradeDecision,
  type TradingCosts,
} from './trading-env';

/**
 * The three trading agents and the simulation loop that trains them on bar series.
 *
 * Actor sizes: two ReLU hidden layers each, chosen per actor so that every actor has about
 * 102k parameters (the seed's figure is 102,405):
 * - tactical 23 → 352 → 264 → 3: 102,435
 * - risk 10 → 312 → 312 → 4: 102,340
 * - execution 10 → 432 → 224 → 3: 102,419
 * and the critic 43 → 256 → 256 → 1: 77,313.
 */
export const TRADING_TEAM_SPEC: TeamSpec = Object.freeze({
  agents: [
    { name: 'tactical', obsDim: TACTICAL_OBS_DIM, nActions: TACTICAL_ACTIONS.length, hidden: [352, 264] },
    { name: 'risk', obsDim: RISK_OBS_DIM, nActions: RISK_SIZES.length, hidden: [312, 312] },
    { name: 'execution', obsDim: EXECUTION_OBS_DIM, nActions: EXECUTION_ACTIONS.length, hidden: [432, 224] },
  ],
  stateDim: GLOBAL_STATE_DIM,
  criticHidden: [256, 256],
});

/** Exact parameter count of each trading actor and the critic. */
export function tradingParameterCounts(spec: TeamSpec = TRADING_TEAM_SPEC): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of spec.agents) out[a.name] = mlpParameterCount([a.obsDim, ...a.hidden, a.nActions]);
  out.critic = mlpParameterCount([spec.stateDim, ...spec.criticHidden, 1]);
  return out;
}

/**
 * MAPPO options for trading: the reference defaults except 4 epochs of 2 minibatches, so that a
 * 2,880-step update (10 episodes of 288 bars) with ~102k-parameter actors stays near a second.
 */
export const TRADING_MAPPO_OPTIONS: MappoOptions = Object.freeze({ ppoEpochs: 4, numMiniBatch: 2 });

/** A bar series with its indicators and (optional) strategic context per bar, ready to simulate. */
export interface MarketSeries {
  bars: EnvBar[];
  indicators: Indicators[];
  strategic: (StrategicInput | null)[];
}

/** Bars before which decisions are not trained or evaluated (all indicators warm). */
export const WARMUP_BARS = 35;

/** Computes indicators for a bar series (strategic context null unless given). */
export function prepareSeries(bars: readonly EnvBar[], strategic?: (StrategicInput | null)[]): MarketSeries {
  const ind = new SimpleIndicators();
  return {
    bars: [...bars],
    indicators: bars.map((b) => ind.update(b.high, b.low, b.close)),
    strategic: strategic ?? bars.map(() => null),
  };
}

/** Options of {@link collectEpisodes}. */
export interface CollectOptions {
  /** Episodes run side by side. @defaultValue 10 */
  episodes?: number;
  /** Decisions per episode. @defaultValue 288 (one day of 5m bars) */
  steps?: number;
  costs?: TradingCosts;
  /** Generator of episode start points. */
  rng: SeededRandom;
}

/**
 * Rollouts of the current (sampling) policy from random start points of random series. The
 * episodes step in lock-step so each actor runs one batched WebAssembly SIMD forward pass per bar.
 */
export function collectEpisodes(mappo: Mappo, series: readonly MarketSeries[], options: CollectOptions): { trajectories: Trajectory[]; meanReward: number } {
  const episodes = options.episodes ?? 10;
  const steps = options.steps ?? 288;
  const costs = options.costs ?? DEFAULT_COSTS;
  let total = 0;
  const envs = Array.from({ length: episodes }, () => {
    const s = options.rng.pick(series);
    if (s.bars.length < WARMUP_BARS + steps + 2) throw new RangeError('series too short for an episode');
    const start = options.rng.int(WARMUP_BARS, s.bars.length - steps - 2);
    let state: AgentState = initialAgentState();
    // Warm the state's EMAs on a few bars before the first decision.
    for (let t = start - 14; t < start; t++) state = observe(state, s.bars[t] as EnvBar, s.indicators[t] as Indicators, null, costs).settled.state;
    return { s, start, state, out: [] as Step[], last: null as Observations | null };
  });
  for (let k = 0; k <= steps; k++) {
    const current = envs.map((env) => {
      const t = env.start + k;
      const r = observe(env.state, env.s.bars[t] as EnvBar, env.s.indicators[t] as Indicators, env.s.strategic[t] ?? null, costs);
      if (k > 0 && r.settled.reward !== null) {
        (env.out[k - 1] as Step).reward = r.settled.reward;
        total += r.settled.reward;
      }
      return r;
    });
    if (k === steps) {
      envs.forEach((env, e) => (env.last = (current[e] as (typeof current)[number]).observations));
      break;
    }
    const teams = mappo.actBatch([
      current.map((c) => c.observations.tactical),
      current.map((c) => c.observations.risk),
      current.map((c) => c.observations.execution),
    ]);
    envs.forEach((env, e) => {
      const { observations, settled } = current[e] as (typeof current)[number];
      const team = teams[e] as (typeof teams)[number];
      env.state = act(settled.state, decodeActions(team.actions, observations), costs);
      env.out.push({
        obs: [observations.tactical, observations.risk, observations.execution],
        state: observations.global,
        actions: team.actions,
        logProbs: team.logProbs,
        reward: 0,
      });
    });
  }
  const trajectories: Trajectory[] = envs.map((env) => ({ steps: env.out, terminal: false, nextState: (env.last as Observations).global }));
  return { trajectories, meanReward: total / (episodes * steps) };
}

/** Per-bar equity path and totals of running a decision rule over a series. */
export interface BacktestResult {
  /** Equity after each decided bar, starting at 1. */
  equity: number[];
  turnover: number;
  costsPaid: number;
  /** Position held into the next bar after each decision (after MARKET fills; LIMIT orders fill later). */
  positions: number[];
  /** Target position of each decision. */
  targets: number[];
}

/** A decision rule: the team's greedy policy or a baseline. */
export type DecisionRule = (input: {
  indicators: Indicators;
  strategic: StrategicInput | null;
  bar: EnvBar;
  state: AgentState;
  observations: Observations;
}) => TradeDecision;

/** Runs a decision rule over bars [from, to) of a series (settling one more bar at the end). */
export function backtest(series: MarketSeries, rule: DecisionRule, from = WARMUP_BARS, to = series.bars.length - 1, costs: TradingCosts = DEFAULT_COSTS): BacktestResult {
  let state = initialAgentState();
  for (let t = Math.max(0, from - 14); t < from; t++) state = observe(state, series.bars[t] as EnvBar, series.indicators[t] as Indicators, null, costs).settled.state;
  const equity: number[] = [];
  const positions: number[] = [];
  const targets: number[] = [];
  for (let t = from; t <= to; t++) {
    const bar = series.bars[t] as EnvBar;
    const indicators = series.indicators[t] as Indicators;
    const strategic = series.strategic[t] ?? null;
    const { observations, settled } = observe(state, bar, indicators, strategic, costs);
    // Equity is measured after every settled bar from the second on, so returns line up with decisions.
    if (t > from) equity.push(settled.state.equity);
    if (t === to) {
      state = settled.state;
      break;
    }
    const decision = rule({ indicators, strategic, bar, state: settled.state, observations });
    state = act(settled.state, decision, costs);
    positions.push(state.position);
    targets.push(decision.target_position);
  }
  return { equity: [1, ...equity], turnover: state.turnover, costsPaid: state.costsPaid, positions, targets };
}
