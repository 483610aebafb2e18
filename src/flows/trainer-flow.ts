import { ValidationError } from '../errors';
import {
  backtest,
  Mappo,
  MappoTrainer,
  meanMetrics,
  performance,
  selectBackend,
  shouldPromote,
  TacticalPolicy,
  TRADING_MAPPO_OPTIONS,
  TRADING_TEAM_SPEC,
  type MappoSnapshot,
  type MarketSeries,
  type ModelMetrics,
  type ModelRegistry,
  type PerformanceMetrics,
  type PromotionOptions,
  type TrainerUpdateMetrics,
} from '../learning';
import type { Logger } from '../observability/logger';
import type { ExperienceTransition } from './agent-stage';

/** Options of {@link TrainerFlow.create}. */
export interface TrainerFlowOptions {
  /** Where versions are saved and promoted (the trainer is its only writer). */
  registry: ModelRegistry;
  /** Transitions per training batch; the trainer consumer trains when this many are buffered. */
  batchSize: number;
  /**
   * Seed of the initial team (used while no version is promoted) and of minibatch shuffling. Pass
   * the tactical workers' initial policy seed (`INITIAL_POLICY_SEED`, 1) so that the first candidate
   * is trained from the weights that produced the experience.
   */
  seed: number;
  /** Latest fraction of each symbol's bars in a batch held out for evaluation. @defaultValue 0.2 */
  heldOutFraction?: number;
  /** Promotion rule options. @defaultValue `{}` (candidate Sharpe ≥ parent Sharpe) */
  promotion?: PromotionOptions;
  log: Logger;
}

/** What one {@link TrainerFlow.train} did. */
export interface TrainOutcome {
  /** The saved candidate. */
  version: string;
  /** The promoted version it was trained from (null: the seeded initial team). */
  parent: string | null;
  /** Whether the candidate is now the promoted version. */
  promoted: boolean;
  /** Held-out metrics of the candidate. */
  candidate: ModelMetrics;
  /** Held-out metrics of the parent on the same window (the seeded initial team when `parent` is null). */
  parentMetrics: ModelMetrics | null;
  update: TrainerUpdateMetrics;
}

/** The held-out bars of one batch: one series per symbol and the index of its first held-out bar. */
export interface HeldOutWindow {
  /** Stable identity: symbols and ts ranges, e.g. `BTCUSD:1700000000000-1700003300000`. */
  id: string;
  series: { symbol: string; series: MarketSeries; from: number }[];
}

/** Fewest held-out bars of a symbol that give a Sharpe (two returns). */
export const MIN_HELD_OUT_BARS = 3;

/**
 * Online training of the tactical team from published experience, one batch at a time:
 *
 * 1. Per symbol, transitions are ordered by `ts` (duplicates dropped); the latest
 *    `heldOutFraction` of each symbol's bars form the held-out window, the rest is trained on.
 * 2. A trainer is built from the latest promoted version's snapshot (or the seeded initial team)
 *    and makes one PPO update on the training part.
 * 3. Candidate and parent are backtested greedily on the held-out window (rebuilt from the
 *    transitions' market inputs); the metric is the mean annualised Sharpe over symbols.
 * 4. The candidate is saved with parent = the promoted version and its metrics, and promoted only
 *    when {@link shouldPromote} says so.
 *
 * Every batch starts from the promoted version's saved weights, not from the previous candidate, so
 * a rejected candidate leaves no trace and the outcome depends only on the registry, the batch and
 * the seed (deterministic; a restarted trainer gives the same result). Pure apart from the
 * registry's disk I/O; emits no events. One `train` at a time.
 */
export class TrainerFlow {
  private parentVersion: string | null;
  private parentSnapshot: MappoSnapshot;
  private busy = false;
  readonly batchSize: number;
  readonly heldOutFraction: number;

  private constructor(
    private readonly options: TrainerFlowOptions,
    parent: { version: string | null; snapshot: MappoSnapshot },
  ) {
    this.batchSize = options.batchSize;
    this.heldOutFraction = options.heldOutFraction ?? 0.2;
    this.parentVersion = parent.version;
    this.parentSnapshot = parent.snapshot;
  }

  /** Resumes from the latest promoted version of the registry, or the seeded initial team. */
  static async create(options: TrainerFlowOptions): Promise<TrainerFlow> {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 2) {
      throw new RangeError(`batchSize must be an integer >= 2, got ${options.batchSize}`);
    }
    const fraction = options.heldOutFraction ?? 0.2;
    if (!(fraction > 0 && fraction < 1)) throw new RangeError(`heldOutFraction must be in (0, 1), got ${fraction}`);
    if (!Number.isFinite(options.seed)) throw new RangeError(`seed must be finite, got ${options.seed}`);
    await selectBackend();
    const version = await options.registry.latestPromoted();
    const snapshot = await loadParent(options.registry, version, options.seed);
    options.log.info({ parent: version ?? `initial-${options.seed}` }, 'trainer resumed');
    return new TrainerFlow(options, { version, snapshot });
  }

  /** The promoted version candidates are trained from (null: the seeded initial team). */
  get parent(): string | null {
    return this.parentVersion;
  }

  /** Trains, evaluates, saves and (maybe) promotes a candidate on one batch (see the class comment). */
  async train(batch: readonly ExperienceTransition[]): Promise<TrainOutcome> {
    if (this.busy) throw new RangeError('TrainerFlow.train must not run concurrently');
    this.busy = true;
    try {
      return await this.trainOnce(batch);
    } finally {
      this.busy = false;
    }
  }

  private async trainOnce(batch: readonly ExperienceTransition[]): Promise<TrainOutcome> {
    const { registry, log, seed } = this.options;
    const started = Date.now();
    // Someone may have promoted or rolled back since (the CLI): always train from what is promoted.
    const promoted = await registry.latestPromoted();
    if (promoted !== this.parentVersion) {
      this.parentSnapshot = await loadParent(registry, promoted, seed);
      this.parentVersion = promoted;
    }
    const { training, window } = this.split(batch);
    if (MappoTrainer.trajectories(training).trajectories.length === 0) {
      throw new ValidationError(
        `batch of ${batch.length} transitions has none to train on (each symbol needs two consecutive 5m bars outside the held-out window): raise the training batch size`,
      );
    }
    const parentPolicy = new TacticalPolicy(this.parentVersion ?? `initial-${seed}`, this.parentSnapshot.actors);
    const trainer = new MappoTrainer({ snapshot: this.parentSnapshot, mappo: { seed } });
    try {
      const { metrics: update } = await trainer.update(training);
      const parentMetrics = this.evaluate(parentPolicy, window);
      const candidateMetrics = this.evaluate(trainer.policy('candidate'), window);
      const promote = shouldPromote(candidateMetrics, parentMetrics, this.options.promotion);
      const candidate: ModelMetrics = {
        ...candidateMetrics,
        parent_sharpe: parentMetrics.sharpe,
        promoted: promote,
        transitions: training.length,
        held_out_transitions: batch.length - training.length,
        update,
      };
      const version = await registry.save(trainer, { parent: this.parentVersion, metrics: candidate });
      const parent = this.parentVersion;
      if (promote) {
        await registry.promote(version);
        this.parentVersion = version;
        this.parentSnapshot = trainer.snapshot();
      }
      log.info(
        {
          version,
          parent,
          promoted: promote,
          sharpe: candidateMetrics.sharpe,
          parentSharpe: parentMetrics.sharpe,
          window: window.id,
          transitions: batch.length,
          durationMs: Date.now() - started,
        },
        promote ? 'candidate promoted' : 'candidate saved, not promoted',
      );
      return { version, parent, promoted: promote, candidate, parentMetrics, update };
    } finally {
      trainer.dispose();
    }
  }

  /**
   * Splits a batch into the transitions to train on and the held-out window: per symbol (sorted by
   * `ts`, one transition per `ts`), the latest `floor(n × heldOutFraction)` bars are held out when
   * that is at least {@link MIN_HELD_OUT_BARS}; otherwise the symbol is only trained on.
   */
  split(batch: readonly ExperienceTransition[]): { training: ExperienceTransition[]; window: HeldOutWindow } {
    const bySymbol = new Map<string, Map<number, ExperienceTransition>>();
    for (const t of batch) {
      const byTs = bySymbol.get(t.symbol) ?? new Map<number, ExperienceTransition>();
      if (!byTs.has(t.ts)) byTs.set(t.ts, t); // a redelivered duplicate counts once
      bySymbol.set(t.symbol, byTs);
    }
    const training: ExperienceTransition[] = [];
    const series: HeldOutWindow['series'] = [];
    const ids: string[] = [];
    for (const symbol of [...bySymbol.keys()].sort()) {
      const list = [...(bySymbol.get(symbol) as Map<number, ExperienceTransition>).values()].sort((a, b) => a.ts - b.ts);
      const heldOut = Math.floor(list.length * this.heldOutFraction);
      if (heldOut < MIN_HELD_OUT_BARS) {
        training.push(...list);
        continue;
      }
      const from = list.length - heldOut;
      training.push(...list.slice(0, from));
      // The series includes the training bars before the window: backtest warms its state on them.
      series.push({
        symbol,
        from,
        series: {
          bars: list.map((t) => ({ ...t.market.bar })),
          indicators: list.map((t) => t.market.indicators),
          strategic: list.map((t) => t.market.strategic),
        },
      });
      ids.push(`${symbol}:${(list[from] as ExperienceTransition).ts}-${(list[list.length - 1] as ExperienceTransition).ts}`);
    }
    return { training, window: { id: ids.join(','), series } };
  }

  /**
   * Greedy backtest of a policy on the held-out window: mean metrics over symbols, Sharpe NaN when
   * the window is empty (then nothing is promoted).
   */
  evaluate(policy: TacticalPolicy, window: HeldOutWindow): ModelMetrics {
    const rows: PerformanceMetrics[] = window.series.map(({ series, from }) =>
      performance(
        backtest(series, ({ observations }) => policy.decideObservations(observations), from, series.bars.length - 1, policy.costs),
      ),
    );
    const mean = meanMetrics(rows);
    return {
      ...mean,
      sharpe: rows.length === 0 ? Number.NaN : mean.sharpe,
      window: window.id,
      symbols: rows.length,
    };
  }
}

/** The team to train from: a promoted version's snapshot, or the seeded initial team. */
async function loadParent(registry: ModelRegistry, version: string | null, seed: number): Promise<MappoSnapshot> {
  const initial = (): MappoSnapshot => {
    const mappo = new Mappo(TRADING_TEAM_SPEC, { ...TRADING_MAPPO_OPTIONS, seed });
    try {
      return mappo.snapshot();
    } finally {
      mappo.dispose();
    }
  };
  if (version === null) return initial();
  const meta = await registry.meta(version);
  if (meta.networks.some((n) => n.name === 'critic') && meta.valueNorm !== null && meta.options !== null) {
    return registry.loadSnapshot(version);
  }
  // Saved from a policy (actors only, e.g. by the evaluation CLI): train its actors with a fresh critic.
  return { ...initial(), actors: await registry.loadActorWeights(version) };
}
