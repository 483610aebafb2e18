import { generateSyntheticMarket, type Regime } from '../producers/synthetic-market';
import { SeededRandom } from '../util/random';
import { Mappo, type MappoOptions, type MappoSnapshot } from './mappo';
import { TacticalPolicy } from './policy';
import { annualisedSharpe, barReturns } from './stats';
import {
  backtest,
  collectEpisodes,
  prepareSeries,
  TRADING_MAPPO_OPTIONS,
  TRADING_TEAM_SPEC,
  type BacktestResult,
  type DecisionRule,
  type MarketSeries,
} from './trading-agents';

/**
 * Training on synthetic regime markets, with checkpoint selection on held-out series (the
 * walk-forward evaluation against the baselines is src/learning/walk-forward.ts).
 */

/** Performance of one equity path. */
export interface PerformanceMetrics {
  /** Annualised Sharpe of per-bar returns (0 when they do not vary). */
  sharpe: number;
  /** Largest peak-to-trough fall of equity, as a fraction. */
  maxDrawdown: number;
  /** Σ |position change| (1 = the whole equity traded once). */
  turnover: number;
  /** Final equity − 1, after costs. */
  netReturn: number;
  bars: number;
}

export function performance(result: BacktestResult): PerformanceMetrics {
  const e = result.equity;
  const r = barReturns(e);
  let peak = -Infinity;
  let mdd = 0;
  for (const v of e) {
    peak = Math.max(peak, v);
    mdd = Math.max(mdd, 1 - v / peak);
  }
  return {
    sharpe: annualisedSharpe(r),
    maxDrawdown: mdd,
    turnover: result.turnover,
    netReturn: (e[e.length - 1] as number) - 1,
    bars: r.length,
  };
}

/**
 * The team's greedy policy as a decision rule, on the live network: the actors' current weights in
 * a {@link TacticalPolicy}, so evaluation decides exactly as the workers would.
 */
export function greedyRule(mappo: Mappo): DecisionRule {
  const policy = new TacticalPolicy('greedy', mappo.actors.map((a) => a.getWeights()));
  return ({ observations }) => {
    const { actionIndices: _, ...decision } = policy.decideObservations(observations);
    return decision;
  };
}

/** Options of the synthetic markets used for training and evaluation. */
export interface SyntheticSetOptions {
  seeds: readonly number[];
  /** @defaultValue 8640 (30 days) */
  bars?: number;
  /** @defaultValue ['BULL', 'BEAR'] */
  regimeSequence?: readonly Regime[];
  /** @defaultValue [864, 2016] (3 to 7 days) */
  segmentBars?: readonly [number, number];
  /** @defaultValue [0.15, 0.3] */
  driftSigma?: readonly [number, number];
}

/** Synthetic markets with persistent trends (alternating BULL/BEAR segments of days by default). */
export function syntheticSeries(options: SyntheticSetOptions): MarketSeries[] {
  return options.seeds.map((seed) => {
    const m = generateSyntheticMarket({
      seed,
      bars: options.bars ?? 8640,
      regimeSequence: options.regimeSequence ?? ['BULL', 'BEAR'],
      segmentBars: options.segmentBars ?? [864, 2016],
      driftSigma: options.driftSigma ?? [0.15, 0.3],
    });
    return prepareSeries(m.bars);
  });
}

/** Options of {@link trainOnSeries}. */
export interface TrainOptions {
  seed: number;
  /** PPO iterations. @defaultValue 60 */
  iterations?: number;
  /** Episodes per iteration. @defaultValue 10 */
  episodes?: number;
  /** Steps per episode. @defaultValue 288 */
  steps?: number;
  mappo?: MappoOptions;
  onIteration?: (it: number, info: { meanReward: number; collectMs: number; updateMs: number; mappo: Mappo }) => void;
  /**
   * Held-out series for checkpoint selection: every `validateEvery` iterations the greedy policy is
   * backtested on it and the best snapshot is what is returned: the highest {@link validationScore}
   * of the parts' Sharpes (mean minus one standard error), among iterates that trade. One series, or
   * parts of several. Without it the last iterate is returned.
   */
  validation?: MarketSeries | readonly ValidationPart[];
  /** @defaultValue 5 */
  validateEvery?: number;
  /**
   * After each validation: the mean Sharpe over the parts and the selection score
   * ({@link validationScore}), both NaN when the policy does not trade (not eligible), and the
   * Sharpe of each part (in the order of `validation`).
   */
  onValidation?: (it: number, sharpe: number, score: number, sharpes: number[]) => void;
}

/** A part of a series held out for checkpoint selection (bars [from, to]), in a stratum of like parts. */
export interface ValidationPart {
  series: MarketSeries;
  from?: number;
  to?: number;
  /** Parts of one stratum are alike (e.g. the real symbols, or one synthetic family). @defaultValue one stratum */
  stratum?: string;
}

/**
 * The checkpoint-selection score of per-part validation Sharpes: the mean over all parts minus one
 * standard error of that mean, a one-sided lower bound. The standard error is the stratified one
 * (Σ_g w_g² s_g² / n_g with w_g = n_g / N, s_g the sample standard deviation inside stratum g), so
 * only the spread between like parts (real symbols; seeds of one synthetic family) counts as noise,
 * not the difference between a strong-trend market and a real one. An iterate that is good on one
 * symbol by luck and poor on the others scores below one that is steadily good, so one noisy window
 * cannot pick the checkpoint. A stratum of one part adds no spread.
 */
export function validationScore(sharpes: readonly number[], strata?: readonly string[]): number {
  const n = sharpes.length;
  if (n === 0) return Number.NaN;
  const groups = new Map<string, number[]>();
  sharpes.forEach((x, i) => {
    const key = strata?.[i] ?? '';
    const g = groups.get(key);
    if (g) g.push(x);
    else groups.set(key, [x]);
  });
  const mean = sharpes.reduce((a, b) => a + b, 0) / n;
  let variance = 0;
  for (const g of groups.values()) {
    if (g.length < 2) continue;
    const m = g.reduce((a, b) => a + b, 0) / g.length;
    const s2 = g.reduce((a, b) => a + (b - m) ** 2, 0) / (g.length - 1);
    variance += (g.length / n) ** 2 * (s2 / g.length);
  }
  return mean - Math.sqrt(variance);
}

/** Trains a fresh team on the given series. */
export async function trainOnSeries(series: readonly MarketSeries[], options: TrainOptions): Promise<Mappo> {
  const mappo = new Mappo(TRADING_TEAM_SPEC, { ...TRADING_MAPPO_OPTIONS, ...options.mappo, seed: options.seed });
  const rng = new SeededRandom(options.seed + 1000);
  let best: { score: number; snapshot: MappoSnapshot | null; iteration: number } = { score: -Infinity, snapshot: null, iteration: 0 };
  for (let it = 1; it <= (options.iterations ?? 60); it++) {
    const t0 = Date.now();
    const { trajectories, meanReward } = collectEpisodes(mappo, series, { rng, episodes: options.episodes ?? 10, steps: options.steps ?? 288 });
    const t1 = Date.now();
    await mappo.update(trajectories);
    options.onIteration?.(it, { meanReward, collectMs: t1 - t0, updateMs: Date.now() - t1, mappo });
    if (options.validation && it % (options.validateEvery ?? 5) === 0) {
      const parts: readonly ValidationPart[] = Array.isArray(options.validation)
        ? (options.validation as readonly ValidationPart[])
        : [{ series: options.validation as MarketSeries }];
      const rule = greedyRule(mappo);
      const runs = parts.map((p) => performance(backtest(p.series, rule, p.from, p.to)));
      const sharpe = runs.reduce((a, r) => a + r.sharpe, 0) / runs.length;
      const score = validationScore(
        runs.map((r) => r.sharpe),
        parts.map((p) => p.stratum ?? ''),
      );
      // A policy that does not trade is never chosen (its Sharpe 0 would beat every losing iterate).
      const trades = runs.some((r) => r.turnover > 0);
      options.onValidation?.(it, trades ? sharpe : Number.NaN, trades ? score : Number.NaN, runs.map((r) => r.sharpe));
      if (trades && score > best.score) best = { score, snapshot: mappo.snapshot(), iteration: it };
    }
  }
  if (best.snapshot) {
    const chosen = Mappo.fromSnapshot(best.snapshot);
    mappo.dispose();
    return chosen;
  }
  return mappo;
}

/** Mean of each metric over rows. */
export function meanMetrics(rows: readonly PerformanceMetrics[]): PerformanceMetrics {
  const m = (k: keyof PerformanceMetrics): number => rows.reduce((a, r) => a + r[k], 0) / Math.max(1, rows.length);
  return { sharpe: m('sharpe'), maxDrawdown: m('maxDrawdown'), turnover: m('turnover'), netReturn: m('netReturn'), bars: m('bars') };
}
