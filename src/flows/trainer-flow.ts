import { ValidationError } from '../errors';
import {
  backtest,
  barReturns,
  Mappo,
  MappoTrainer,
  meanMetrics,
  performance,
  promotionVerdict,
  TacticalPolicy,
  TRADING_MAPPO_OPTIONS,
  TRADING_TEAM_SPEC,
  type HeldOutRun,
  type MappoSnapshot,
  type MarketSeries,
  type ModelMetrics,
  type ModelRegistry,
  type PerformanceMetrics,
  type PromotionOptions,
  type PromotionVerdict,
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
   * Seed of the initial team (used while no version is promoted), of minibatch shuffling and of the
   * promotion bootstrap. Pass the tactical workers' initial policy seed (`INITIAL_POLICY_SEED`, 1)
   * so that the first candidate is trained from the weights that produced the experience.
   */
  seed: number;
  /** Latest fraction of each symbol's bars in a batch held out for evaluation. @defaultValue 0.2 */
  heldOutFraction?: number;
  /**
   * Held-out bars kept across batches (in the registry directory, `held-out.json`): candidate and
   * parent are compared on the latest this many held-out bars of all batches so far, bars no
   * version was trained on. @defaultValue 3000
   */
  heldOutBars?: number;
  /** Promotion rule options ({@link promotionVerdict}). */
  promotion?: PromotionOptions;
  /**
   * Train part of each update in a second thread. Off for the online trainer: every batch builds a
   * new trainer, so the thread (its own V8 isolate, under tsx also its own TypeScript loader and
   * esbuild process) was started and ended once per batch, ~0.5 s of CPU and ~130 MB of peak RSS
   * for a 2,048-transition batch that trains in ~1 s on one thread, and it put the trainer on both
   * cores at once, beside the live path. The updates are the same to the bit either way.
   * @defaultValue false
   */
  threads?: boolean;
  log: Logger;
}

/** What one {@link TrainerFlow.train} did with a batch it trained. */
export interface TrainOutcome {
  skipped: false;
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
  verdict: PromotionVerdict;
  /** Transitions dropped because another model version than the parent acted in them. */
  stale: number;
  /** The batch had been trained before (a redelivery after a restart): the saved version is returned. */
  replayed: boolean;
}

/** A batch with no experience of the current version: nothing trained, nothing saved. */
export interface SkippedOutcome {
  skipped: true;
  version: null;
  parent: string | null;
  promoted: false;
  stale: number;
  reason: string;
}

/** A held-out segment: one symbol's consecutive held-out bars, with up to 14 warm-up bars before them. */
export interface HeldOutSegment {
  symbol: string;
  series: MarketSeries;
  /** Index of the first held-out bar in `series`. */
  from: number;
}

/** The held-out window: segments of one or more batches. */
export interface HeldOutWindow {
  /** Stable identity: symbols and ts ranges, e.g. `BTCUSD:1700000000000-1700003300000`. */
  id: string;
  series: HeldOutSegment[];
}

/** Fewest held-out bars of a symbol in a batch for it to contribute a segment (two returns). */
export const MIN_HELD_OUT_BARS = 3;
const WARMUP = 14;
const HELD_OUT_FILE = 'held-out.json';

/**
 * Online training of the tactical team from published experience, one batch at a time:
 *
 * 1. A batch already trained (same transitions; its id is saved with the version) is not trained
 *    again: the saved version's outcome is returned (and its promotion completed if a crash cut
 *    it), so one batch gives one version across restarts.
 * 2. Per symbol, transitions are ordered by `ts` (duplicates dropped); the latest
 *    `heldOutFraction` of each symbol's bars is held out and appended to the rolling held-out
 *    window (the latest `heldOutBars` held-out bars, kept in the registry directory).
 * 3. On-policy only: of the rest, transitions another version than the parent acted in are
 *    dropped (counted as `stale`); PPO's ratio is only valid for the policy that sampled.
 * 4. A trainer is built from the promoted version's snapshot (or the seeded initial team) and
 *    makes one PPO update.
 * 5. Candidate and parent run greedily over every held-out segment (rebuilt from the transitions'
 *    market inputs); {@link promotionVerdict} decides: enough bars, a candidate that trades and is
 *    not stuck on one position, and a paired bootstrap Sharpe gain whose 95 % lower bound clears
 *    the margin. Ties never promote.
 * 6. The candidate is saved with parent, metrics, verdict and batch id, and promoted if so.
 *
 * Every batch starts from the promoted version's saved weights, so a rejected candidate leaves no
 * trace and the outcome depends only on the registry directory, the batch and the seed. Emits no
 * events. One `train` at a time.
 */
export class TrainerFlow {
  private parentVersion: string | null;
  private parentSnapshot: MappoSnapshot;
  private busy = false;
  private heldOut: HeldOutSegment[] | null = null;
  readonly batchSize: number;
  readonly heldOutFraction: number;
  readonly heldOutBars: number;

  private constructor(
    private readonly options: TrainerFlowOptions,
    parent: { version: string | null; snapshot: MappoSnapshot },
  ) {
    this.batchSize = options.batchSize;
    this.heldOutFraction = options.heldOutFraction ?? 0.2;
    this.heldOutBars = options.heldOutBars ?? 3000;
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
    const keep = options.heldOutBars ?? 3000;
    if (!Number.isInteger(keep) || keep < 2) throw new RangeError(`heldOutBars must be an integer >= 2, got ${keep}`);
    if (!Number.isFinite(options.seed)) throw new RangeError(`seed must be finite, got ${options.seed}`);
    const version = await options.registry.latestPromoted();
    const snapshot = await loadParent(options.registry, version, options.seed);
    options.log.info({ parent: version ?? `initial-${options.seed}` }, 'trainer resumed');
    return new TrainerFlow(options, { version, snapshot });
  }

  /** The promoted version candidates are trained from (null: the seeded initial team). */
  get parent(): string | null {
    return this.parentVersion;
  }

  /** The version name the parent acts under in experience (`initial-<seed>` before any promotion). */
  get parentName(): string {
    return this.parentVersion ?? `initial-${this.options.seed}`;
  }

  /** Trains, evaluates, saves and (maybe) promotes a candidate on one batch (see the class comment). */
  async train(batch: readonly ExperienceTransition[]): Promise<TrainOutcome | SkippedOutcome> {
    if (this.busy) throw new RangeError('TrainerFlow.train must not run concurrently');
    this.busy = true;
    try {
      return await this.trainOnce(batch);
    } finally {
      this.busy = false;
    }
  }

  /** Identity of a batch: its distinct (symbol, ts, acting version), order-free (FNV-1a, 2 × 32 bits). */
  static batchId(batch: readonly ExperienceTransition[]): string {
    const keys = [...new Set(batch.map((t) => `${t.symbol}|${t.ts}|${t.model_version ?? ''}`))].sort();
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193;
    for (const k of keys) {
      for (let i = 0; i < k.length; i++) {
        const c = k.charCodeAt(i);
        h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
        h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
      }
      h1 = Math.imul(h1 ^ 10, 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ 10, 0x5bd1e995) >>> 0;
    }
    return `${keys.length}-${h1.toString(16).padStart(8, '0')}${h2.toString(16).padStart(8, '0')}`;
  }

  private async trainOnce(batch: readonly ExperienceTransition[]): Promise<TrainOutcome | SkippedOutcome> {
    const { registry, log, seed } = this.options;
    const started = Date.now();
    // Someone may have promoted or rolled back since (the CLI): always train from what is promoted.
    const promoted = await registry.latestPromoted();
    if (promoted !== this.parentVersion) {
      this.parentSnapshot = await loadParent(registry, promoted, seed);
      this.parentVersion = promoted;
    }
    const batchId = TrainerFlow.batchId(batch);
    const done = await registry.findByBatch(batchId);
    if (done !== null) return this.replay(done.version, done.parent, done.metrics as ModelMetrics);

    const { training, window: fresh } = this.split(batch);
    const acting = this.parentName;
    const onPolicy = training.filter((t) => t.model_version === acting);
    const stale = training.length - onPolicy.length;
    const window = await this.extendHeldOut(fresh);
    if (MappoTrainer.trajectories(onPolicy).trajectories.length === 0) {
      if (stale > 0) {
        const reason = `${stale} of ${training.length} transitions were made by other versions than ${acting}; nothing on-policy to train on`;
        log.warn({ stale, parent: acting, transitions: batch.length }, 'batch skipped: ' + reason);
        return { skipped: true, version: null, parent: this.parentVersion, promoted: false, stale, reason };
      }
      throw new ValidationError(
        `batch of ${batch.length} transitions has none to train on (each symbol needs two consecutive 5m bars outside the held-out window): raise the training batch size`,
      );
    }
    const parentPolicy = new TacticalPolicy(acting, this.parentSnapshot.actors);
    const trainer = new MappoTrainer({ snapshot: this.parentSnapshot, mappo: { seed }, threads: this.options.threads ?? false });
    try {
      const { metrics: update } = await trainer.update(onPolicy);
      const parentRun = this.run(parentPolicy, window);
      const candidateRun = this.run(trainer.policy('candidate'), window);
      const verdict = promotionVerdict(candidateRun.run, parentRun.run, { bootstrap: { seed }, ...this.options.promotion });
      const promote = verdict.promote;
      const candidate: ModelMetrics = {
        ...candidateRun.metrics,
        parent_sharpe: parentRun.metrics.sharpe,
        parent_metrics: parentRun.metrics,
        promoted: promote,
        verdict,
        batch_id: batchId,
        transitions: onPolicy.length,
        stale_transitions: stale,
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
          reason: verdict.reason,
          sharpe: candidateRun.metrics.sharpe,
          parentSharpe: parentRun.metrics.sharpe,
          heldOutBars: verdict.heldOutBars,
          stale,
          transitions: batch.length,
          durationMs: Date.now() - started,
        },
        promote ? 'candidate promoted' : 'candidate saved, not promoted',
      );
      return { skipped: false, version, parent, promoted: promote, candidate, parentMetrics: parentRun.metrics, update, verdict, stale, replayed: false };
    } finally {
      trainer.dispose();
    }
  }

  /** The outcome of a batch trained before; completes a promotion a crash interrupted. */
  private async replay(version: string, parent: string | null, metrics: ModelMetrics): Promise<TrainOutcome> {
    const { registry, log, seed } = this.options;
    const verdict = metrics.verdict as PromotionVerdict;
    let promoted = false;
    const current = await registry.latestPromoted();
    if (metrics.promoted === true && (current === version || current === parent)) {
      if (current !== version) {
        await registry.promote(version);
        this.parentSnapshot = await loadParent(registry, version, seed);
        this.parentVersion = version;
      }
      promoted = true;
    }
    log.info({ version, promoted, batch: metrics.batch_id }, 'batch trained before: no new version');
    return {
      skipped: false,
      version,
      parent,
      promoted,
      candidate: metrics,
      parentMetrics: (metrics.parent_metrics as ModelMetrics | undefined) ?? null,
      update: metrics.update as TrainerUpdateMetrics,
      verdict,
      stale: Number(metrics.stale_transitions ?? 0),
      replayed: true,
    };
  }

  /**
   * Splits a batch into the transitions to train on and the batch's held-out segments: per symbol
   * (sorted by `ts`, one transition per `ts`), the latest `floor(n × heldOutFraction)` bars are held
   * out when that is at least {@link MIN_HELD_OUT_BARS}; otherwise the symbol is only trained on.
   */
  split(batch: readonly ExperienceTransition[]): { training: ExperienceTransition[]; window: HeldOutWindow } {
    const bySymbol = new Map<string, Map<number, ExperienceTransition>>();
    for (const t of batch) {
      const byTs = bySymbol.get(t.symbol) ?? new Map<number, ExperienceTransition>();
      if (!byTs.has(t.ts)) byTs.set(t.ts, t); // a redelivered duplicate counts once
      bySymbol.set(t.symbol, byTs);
    }
    const training: ExperienceTransition[] = [];
    const series: HeldOutSegment[] = [];
    for (const symbol of [...bySymbol.keys()].sort()) {
      const list = [...(bySymbol.get(symbol) as Map<number, ExperienceTransition>).values()].sort((a, b) => a.ts - b.ts);
      const heldOut = Math.floor(list.length * this.heldOutFraction);
      if (heldOut < MIN_HELD_OUT_BARS) {
        training.push(...list);
        continue;
      }
      const cut = list.length - heldOut;
      training.push(...list.slice(0, cut));
      // Up to 14 training bars before the segment: backtest warms its state on them.
      const first = Math.max(0, cut - WARMUP);
      const part = list.slice(first);
      series.push({
        symbol,
        from: cut - first,
        series: {
          bars: part.map((t) => ({ ...t.market.bar })),
          indicators: part.map((t) => t.market.indicators),
          strategic: part.map((t) => t.market.strategic),
        },
      });
    }
    return { training, window: { id: windowId(series), series } };
  }

  /**
   * Appends a batch's segments to the rolling held-out window (idempotent on symbol and first
   * held-out ts), keeps the latest `heldOutBars` held-out bars and saves it in the registry.
   */
  private async extendHeldOut(fresh: HeldOutWindow): Promise<HeldOutWindow> {
    this.heldOut ??= (await this.options.registry.readJson<HeldOutSegment[]>(HELD_OUT_FILE)) ?? [];
    const key = (s: HeldOutSegment): string => `${s.symbol}:${(s.series.bars[s.from] as { ts: number }).ts}`;
    const known = new Set(this.heldOut.map(key));
    const added = fresh.series.filter((s) => !known.has(key(s)));
    if (added.length === 0 && this.heldOut.length > 0) return { id: windowId(this.heldOut), series: this.heldOut };
    const all = [...this.heldOut, ...added].sort((a, b) => lastTs(a) - lastTs(b) || a.symbol.localeCompare(b.symbol));
    let total = 0;
    let keepFrom = all.length;
    while (keepFrom > 0) {
      const n = heldOutBarsOf(all[keepFrom - 1] as HeldOutSegment);
      if (total + n > this.heldOutBars && total > 0) break;
      total += n;
      keepFrom--;
    }
    this.heldOut = all.slice(keepFrom);
    await this.options.registry.writeJson(HELD_OUT_FILE, this.heldOut);
    return { id: windowId(this.heldOut), series: this.heldOut };
  }

  /** The greedy run of a policy over every segment of a window, per-bar returns concatenated. */
  run(policy: TacticalPolicy, window: HeldOutWindow): { metrics: ModelMetrics; run: HeldOutRun } {
    const returns: number[] = [];
    let turnover = 0;
    const counts = new Map<number, number>();
    let decisions = 0;
    let inMarket = 0;
    const rows: PerformanceMetrics[] = [];
    for (const { series, from } of window.series) {
      const r = backtest(series, ({ observations }) => policy.decideObservations(observations), from, series.bars.length - 1, policy.costs);
      rows.push(performance(r));
      returns.push(...barReturns(r.equity));
      turnover += r.turnover;
      for (const t of r.targets) counts.set(t, (counts.get(t) ?? 0) + 1);
      decisions += r.targets.length;
      inMarket += r.positions.filter((p) => p !== 0).length;
    }
    const whole = performance({ equity: equityOf(returns), turnover, costsPaid: 0, positions: [], targets: [] });
    const dominant = decisions === 0 ? 1 : Math.max(...counts.values()) / decisions;
    return {
      metrics: {
        ...meanMetrics(rows),
        sharpe: returns.length < 2 ? Number.NaN : whole.sharpe,
        netReturn: whole.netReturn,
        maxDrawdown: whole.maxDrawdown,
        turnover,
        bars: returns.length,
        time_in_market: decisions === 0 ? 0 : inMarket / decisions,
        dominant_action_share: dominant,
        window: window.id,
        symbols: new Set(window.series.map((s) => s.symbol)).size,
      },
      run: { returns, turnover, dominantActionShare: dominant },
    };
  }

  /** Held-out metrics of a policy on a window (see {@link run}). */
  evaluate(policy: TacticalPolicy, window: HeldOutWindow): ModelMetrics {
    return this.run(policy, window).metrics;
  }
}

function lastTs(s: HeldOutSegment): number {
  return (s.series.bars[s.series.bars.length - 1] as { ts: number }).ts;
}

function heldOutBarsOf(s: HeldOutSegment): number {
  return s.series.bars.length - s.from;
}

function equityOf(returns: readonly number[]): number[] {
  const e = [1];
  for (const r of returns) e.push((e[e.length - 1] as number) * (1 + r));
  return e;
}

/** `SYMBOL:firstTs-lastTs` of each segment's held-out bars, joined by commas. */
function windowId(series: readonly HeldOutSegment[]): string {
  return series.map((s) => `${s.symbol}:${(s.series.bars[s.from] as { ts: number }).ts}-${lastTs(s)}`).join(',');
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
