import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bar30m } from '../../schemas/bar.schema';
import type { RegimeName } from '../../schemas/strategic-context.schema';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import type { Logger } from '../observability/logger';
import { createBreaker, type CountBreaker } from './breakers';
import type { FaultInjector } from './fault-injection';
import { EMBEDDING_DIM, StrategicAnalyzer, type PatternRetention, type PatternStore, type StrategicSymbolState } from '../strategic';
import { PatternStoreFiles } from '../state/pattern-store-files';
import type { TacticalFeedback } from '../strategic/uncertainty';
import type { DurableWrite, PreparedStage, StrategicAnalysis, StrategicStage } from './strategic-flow';

interface Live {
  analyzer: StrategicAnalyzer;
  files: PatternStoreFiles;
  barsSinceSave: number;
  /** The symbol's last sync started (settled-safe): the next bar waits for it before changing the store. */
  lastSync: Promise<void>;
  /** Whether `lastSync` may still be pending (the next bar must wait for it). */
  syncing: boolean;
}

/** Options of {@link AnalyticsStage}. */
export interface AnalyticsStageOptions {
  /** Directory of the pattern stores, one per symbol. */
  dir: string;
  /**
   * Bounds of each symbol's pattern store (`PIPELINE_PATTERN_MAX_PER_SYMBOL`,
   * `PIPELINE_PATTERN_MAX_AGE_DAYS`). @defaultValue no limit
   */
  retention?: PatternRetention;
  /**
   * Bars between saves of a symbol's pattern store. Must not exceed the analyzer's outcome horizon
   * (6), so that a restart from the Redis checkpoint can re-add every pattern the disk copy lacks.
   * @defaultValue 3
   */
  saveEveryBars?: number;
  /**
   * Return each sync as the step's `durable` write instead of awaiting it (the strategic worker:
   * its consumer publishes the context first and commits after the write). Off, the step awaits the
   * sync as before, for callers that drop the stage's directory once done (the gateway's process
   * routes). @defaultValue false
   */
  overlapSync?: boolean;
  /** Injected faults (resilience tests). @defaultValue none */
  faults?: FaultInjector;
  log: Logger;
}

/** Initial capacity of a symbol's new pattern store (vectors and HNSW graph). */
const PATTERN_STORE_INITIAL_CAPACITY = 64;

/**
 * The strategic analytics (feature matrix, regime, uncertainty, pattern store) as a stage of the
 * strategic flow. Each symbol has its own analyzer and pattern store: a store shared across symbols
 * would make a symbol's neighbours depend on how far the other symbols had got, that is on the
 * interleaving of messages, and the same bars must give the same results. The per-symbol state is
 * the analyzer's JSON (committed to Redis with each bar); the store's changes are appended to
 * `<dir>/<symbol>/` ({@link PatternStoreFiles}) every `saveEveryBars` bars, before the bar is
 * committed, so a restart reads the store back instead of rebuilding its graphs.
 *
 * With `overlapSync`, the append (an fdatasync, 0.2 ms typically but 10-20 ms at the 99th percentile
 * on these disks) is started by the step and returned as its `durable` write, not awaited: the context, which the
 * tactical bar completing the 30m period waits for, leaves at once, and the bar's commit waits for
 * the write instead. The symbol's next bar waits for that write before it touches the store, so
 * each sync still holds exactly the store as it was after its own bar (as when it was awaited here).
 */
export class AnalyticsStage implements StrategicStage {
  private readonly live = new Map<string, Live>();
  private readonly byState = new WeakMap<object, Live>();
  private readonly saveEvery: number;
  /** Records pattern store outcomes; while open, lookups are skipped (confidence from the posterior). */
  private readonly breaker: CountBreaker;

  constructor(private readonly options: AnalyticsStageOptions) {
    this.saveEvery = options.saveEveryBars ?? 3;
    this.breaker = createBreaker({ stage: 'pattern_store', log: options.log });
  }

  private storeDir(symbol: string): string {
    return join(this.options.dir, encodeURIComponent(symbol));
  }

  private async liveFor(symbol: string, state: unknown): Promise<Live> {
    if (state !== null && typeof state === 'object') {
      const cached = this.byState.get(state);
      if (cached !== undefined) return cached;
    }
    // A restart or a reset: rebuild from the checkpoint, keeping the store (idempotent on (symbol, ts)).
    const previous = this.live.get(symbol);
    let store = previous?.analyzer.store;
    let files = previous?.files;
    if (store === undefined || files === undefined) {
      const dir = this.storeDir(symbol);
      // No checkpoint: the symbol starts over, and so does its store.
      if (state === null) await rm(dir, { recursive: true, force: true });
      files = await PatternStoreFiles.open({
        dir,
        // Small at first, doubling as patterns come (one per 30m bar): with 1,000 symbols the
        // default 1,024 slots per symbol's vectors and graph held ~0.3 MB each before any pattern.
        // A store read back keeps the capacity it was written with.
        store: { dim: EMBEDDING_DIM, initialCapacity: PATTERN_STORE_INITIAL_CAPACITY },
        ...(this.options.retention ? { retention: this.options.retention } : {}),
      });
      if (files.loadReport.patterns > 0) this.options.log.info({ symbol, ...files.loadReport }, 'pattern store loaded');
      store = files.store;
      if (this.options.faults !== undefined) store = withFaults(store, this.options.faults);
    }
    const analyzer =
      state === null
        ? new StrategicAnalyzer({ store })
        : StrategicAnalyzer.fromJSON([state as StrategicSymbolState], { store });
    // An uninterrupted run merges every pattern into the graph in the bar that adds it (2 merges a
    // bar, 1 pattern a bar), so after each bar nothing is left in the exact-search tail. Patterns
    // that restore() re-added (the disk copy was a bar or two behind the checkpoint) must be merged
    // now too, or the next searches would differ from an uninterrupted run's.
    store.mergeStep(store.pendingMerge);
    const live: Live = { analyzer, files, barsSinceSave: 0, lastSync: previous?.lastSync ?? Promise.resolve(), syncing: previous?.syncing ?? false };
    this.live.set(symbol, live);
    return live;
  }

  async step(
    state: unknown,
    bar: Bar30m,
    feedback: ((regime: RegimeName) => TacticalFeedback | null) | null,
  ): Promise<{ state: unknown; analysis: StrategicAnalysis; durable: DurableWrite | null }> {
    const prepared = this.prepare(state, bar);
    const { analysis, finish } = (prepared instanceof Promise ? await prepared : prepared).analyse(feedback);
    const done = finish();
    if (done.durable !== null && this.options.overlapSync !== true) {
      await done.durable.done;
      return { ...done, durable: null, analysis };
    }
    return { ...done, analysis };
  }

  /**
   * Readies the symbol for `bar`: its analyzer (restored from `state` after a restart) and the end
   * of its previous sync (which reads the store). Synchronous in the usual case (the symbol's
   * analyzer in memory, no sync of it under way), so a batch of bars runs in one pass.
   */
  prepare(state: unknown, bar: Bar30m): PreparedStage | Promise<PreparedStage> {
    const cached = state !== null && typeof state === 'object' ? this.byState.get(state) : undefined;
    if (cached !== undefined && !cached.syncing) return this.prepared(cached, bar);
    return (async () => {
      const live = cached ?? (await this.liveFor(bar.symbol, state));
      // The sync of an earlier bar reads the store when it runs: let it finish before this bar changes it.
      await live.lastSync;
      return this.prepared(live, bar);
    })();
  }

  private prepared(live: Live, bar: Bar30m): PreparedStage {
    return {
      analyse: (feedback) => {
        // Open breaker: skip the store; half-open lets this bar try it.
        const skipPatterns = this.breaker.opened;
        // The insert and merge wait for finish(): the analysis is final without them.
        const out = live.analyzer.onBar(bar, feedback, { skipPatterns, deferInsert: true });
        const searchFailed = out.patternStore === 'failed';
        const analysis: StrategicAnalysis = {
          regime: out.regime,
          regime_probabilities: out.regime_probabilities,
          confidence: out.confidence,
          uncertainty: out.uncertainty,
          similar_patterns: out.similar_patterns,
          degraded: searchFailed || out.patternStore === 'skipped' ? ['pattern_store'] : [],
        };
        const finish = (): { state: unknown; durable: DurableWrite | null } => {
          const insertFailed = live.analyzer.completeBar() === 'failed';
          if (out.patternStore !== 'skipped') {
            // The breaker counts the outcome; its state only matters to later bars.
            if (searchFailed || insertFailed) this.breaker.failed();
            else this.breaker.succeeded();
          }
          if (out.patternStore === 'skipped' || searchFailed || insertFailed) pipelineEvents.emit(PipelineEvent.BreakerFallback, { stage: 'pattern_store' });
          if (insertFailed && !searchFailed) this.options.log.warn({ symbol: bar.symbol, ts: bar.ts }, 'pattern store insert failed after the context was computed');
          live.barsSinceSave++;
          let durable: DurableWrite | null = null;
          if (live.barsSinceSave >= this.saveEvery) {
            durable = this.startSync(live);
            live.barsSinceSave = 0;
          }
          const next = live.analyzer.toJSON(bar.symbol);
          if (next !== null) this.byState.set(next, live);
          return { state: next, durable };
        };
        return { analysis, finish };
      },
    };
  }

  /** Starts a sync of the symbol's store; a failure is left to the caller's `retry` (the next sync also retries it). */
  private startSync(live: Live): DurableWrite {
    const sync = (): Promise<void> => {
      const done = live.files.sync();
      live.syncing = true;
      const settled = done.then(
        () => undefined,
        () => undefined,
      );
      live.lastSync = settled;
      void settled.then(() => {
        if (live.lastSync === settled) live.syncing = false;
      });
      return done;
    };
    return { done: sync(), retry: sync };
  }

  /** Syncs every store to disk (on shutdown). */
  async flush(): Promise<void> {
    for (const [symbol, live] of this.live) {
      await live.files.sync().catch((err: unknown) => this.options.log.error({ err, symbol }, 'pattern store save failed'));
    }
  }
}

/** Wraps a store so that its lookups and inserts throw while the injector lists `pattern_store`. */
function withFaults(store: PatternStore, faults: FaultInjector): PatternStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if ((prop === 'search' || prop === 'add') && typeof value === 'function') {
        return (...args: unknown[]) => {
          faults.check('pattern_store');
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
