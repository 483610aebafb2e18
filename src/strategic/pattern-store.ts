import { HierarchicalNSW } from 'hnswlib-node';
import type { RegimeName } from '../../schemas/strategic-context.schema';
import { REGIME_NAMES } from './regime-names';

/** Options of {@link PatternStore}. */
export interface PatternStoreOptions {
  /** Length of every vector. */
  dim: number;
  /** HNSW `M` (links per node). @defaultValue 16 */
  m?: number;
  /** HNSW `efConstruction`. @defaultValue 100 */
  efConstruction?: number;
  /** HNSW `ef` at query time (raised to the fetch size when a query over-fetches). @defaultValue 48 */
  efSearch?: number;
  /**
   * Vectors per segment. Each segment has its own HNSW graph; a segment that has reached this size
   * takes no more vectors and, once fully merged, is immutable. It also bounds a restart: the graph
   * of the newest segment is rebuilt on load (about 2 s at 32768), every older one is read from its
   * file. @defaultValue 32768
   */
  segmentCapacity?: number;
  /** Initial capacity of the growing graph and of the vector arrays; both grow by doubling. @defaultValue 1024 */
  initialCapacity?: number;
  /** Seed of every segment's HNSW level generator. @defaultValue 100 */
  randomSeed?: number;
  /** When whole old segments are dropped. @defaultValue no limit */
  retention?: PatternRetention;
}

/**
 * Bounds of a store, enforced by dropping its oldest segments whole (see
 * {@link PatternStore.enforceRetention}). 0 switches a bound off.
 */
export interface PatternRetention {
  /**
   * The oldest segment is dropped while the store holds more than this many patterns, so the store
   * holds between `maxCount − segmentCapacity` and `maxCount` once it is full. @defaultValue 0
   */
  maxCount?: number;
  /**
   * The oldest segment is dropped once its newest pattern's `ts` is more than this before the newest
   * `ts` stored (bar time, not the clock). @defaultValue 0
   */
  maxAgeMs?: number;
}

/** A segment as {@link PatternStore.segmentsInfo} shows it to a persister. */
export interface PatternSegmentInfo {
  /** First id. */
  start: number;
  /** One past the last id. */
  end: number;
  /** Ids `start .. start + merged − 1` are in `graph`. */
  merged: number;
  /** Full: takes no more vectors. Sealed and fully merged, it never changes again. */
  sealed: boolean;
  graph: HierarchicalNSW | null;
}

/** Records `firstId ..` of a store, column by column (see {@link PatternStore.records}). */
export interface PatternRecords {
  firstId: number;
  /** `dim` values per record. */
  vectors: Float32Array;
  ts: Float64Array;
  /** NaN where unknown. */
  outcomes: Float64Array;
  /** Index into {@link PatternStore.symbolNames}. */
  symbols: Uint32Array;
  /** Index into `REGIME_NAMES`. */
  regimes: Uint8Array;
}

/** What is stored with every vector. */
export interface PatternMeta {
  symbol: string;
  /** Open time of the 30m bar whose window the vector embeds. */
  ts: number;
  /** The regime detected for that bar. */
  regime: RegimeName;
}

/** One neighbour returned by {@link PatternStore.search}. */
export interface PatternNeighbour extends PatternMeta {
  /** Insertion index of the vector (its label in the HNSW graph). */
  id: number;
  /** Euclidean (not squared) distance to the query. */
  distance: number;
  /** The forward outcome (log return over the horizon); always known for returned neighbours. */
  outcome: number;
}

/** A batch for {@link PatternStore.addBatch}: `n` vectors of `dim` values, row after row. */
export interface PatternBatch {
  vectors: Float32Array;
  symbols: readonly string[] | string;
  ts: ArrayLike<number>;
  regimes: ArrayLike<number> | readonly RegimeName[];
  /** Known outcomes, NaN where unknown. Omitted: all unknown. */
  outcomes?: ArrayLike<number>;
}

interface Segment {
  /** First id of the segment. */
  start: number;
  /** One past the last id currently in the segment. */
  end: number;
  /** Ids `start .. start + merged - 1` are in `graph`; the rest (the fresh tail) are searched exactly. */
  merged: number;
  graph: HierarchicalNSW | null;
  /** Newest `ts` in the segment (retention by age). */
  maxTs: number;
}

const NO_RETENTION = { maxCount: 0, maxAgeMs: 0 } as const;
const REGIME_INDEX = new Map<string, number>(REGIME_NAMES.map((r, i) => [r, i]));

/**
 * A shared, growable store of pattern vectors with k-nearest-neighbour search (squared-L2 HNSW from
 * hnswlib-node plus exact search of what is not yet in a graph). Emits no events.
 *
 * **Layout.** Vectors get consecutive ids in insertion order and live in one growable Float32Array
 * with their metadata (symbol, ts, regime) and forward outcome (NaN until {@link setOutcome}). Ids are
 * cut into segments of `segmentCapacity`; each segment has its own HNSW graph holding a prefix of its
 * ids, and the rest of the segment (the *fresh tail*) is searched exactly by brute force. Adding is
 * therefore a copy (bulk ingest runs at millions of vectors per second) and every added vector is
 * searchable at once; {@link mergeStep} / {@link mergeInBackground} move fresh vectors into the
 * graphs in bounded slices, so the event loop is never blocked for long and the fresh tails stay
 * small. A query searches every graph and every fresh tail and merges the results.
 *
 * **Idempotence.** A vector is keyed by `(symbol, ts)`: adding it again returns the existing id and
 * changes nothing, so replaying a bar after a crash does not insert twice. {@link setOutcome} only
 * fills an unknown outcome.
 *
 * **Determinism.** Query results are a function of the sequence of calls to `add`/`addBatch`,
 * `setOutcome` and `mergeStep` (graph contents and insertion order), nothing else: every segment's
 * graph is created with the same seed and filled in id order. hnswlib does not persist its level
 * generator, so a graph read back from disk would give later insertions different levels than an
 * uninterrupted run; that is why only *complete* segments are written as graph files, and
 * {@link rebuildGraphs} rebuilds the incomplete segment's graph from its vectors (at most
 * `segmentCapacity` insertions) to exactly the merged prefix it had when saved. A store saved and loaded therefore
 * answers every later sequence of calls exactly as the original would have. {@link mergeInBackground}
 * merges by wall-clock slices and so is not deterministic relative to queries; the
 * {@link StrategicAnalyzer} uses count-bounded {@link mergeStep} calls instead.
 *
 * **Retention.** With {@link PatternStoreOptions.retention}, the oldest segments are dropped whole
 * (see {@link enforceRetention}); ids are never reused, so ids below {@link firstId} are gone. An add
 * of a `(symbol, ts)` at or before the newest dropped `ts` of its symbol is ignored (returns -1).
 *
 * **Persistence.** This module does no I/O. A persister (`PatternStoreFiles` in `src/state/`) reads
 * what it must write through {@link records}, {@link takeOutcomeChanges}, {@link segmentsInfo} and
 * {@link mergedThrough}, and rebuilds a store with {@link restore}, {@link attachGraph} and
 * {@link rebuildGraphs}.
 */
export class PatternStore {
  readonly dim: number;
  private readonly m: number;
  private readonly efConstruction: number;
  private readonly efSearch: number;
  private readonly segmentCapacity: number;
  private readonly initialCapacity: number;
  private readonly randomSeed: number;

  private capacity: number;
  private n = 0;
  private vectors: Float32Array;
  private tsArr: Float64Array;
  private outcomeArr: Float64Array;
  private symbolArr: Uint32Array;
  private regimeArr: Uint8Array;

  private readonly symbols: string[] = [];
  private readonly symbolIndex = new Map<string, number>();
  /** Per symbol index: (ts → id). */
  private readonly keys: SymbolKeys[] = [];
  private readonly segments: Segment[] = [];
  /** Index of the first segment whose graph is not complete. */
  private firstUnmerged = 0;

  private background: Promise<void> | null = null;
  private readonly scratch: number[];

  /** First id held; arrays are indexed by `id − base`. */
  private base = 0;
  /** Per symbol index, the newest ts of its dropped patterns. */
  private readonly floors = new Map<number, number>();
  /** Newest ts ever added (bar time; retention by age counts back from it). */
  private latestTs = Number.NEGATIVE_INFINITY;
  private retention: Required<PatternRetention>;
  private tracking = false;
  private outcomeChanges: number[] = [];

  constructor(options: PatternStoreOptions) {
    const { dim } = options;
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`dim must be a positive integer, got ${dim}`);
    this.dim = dim;
    this.m = options.m ?? 16;
    this.efConstruction = options.efConstruction ?? 100;
    this.efSearch = options.efSearch ?? 48;
    this.segmentCapacity = options.segmentCapacity ?? 32_768;
    this.initialCapacity = Math.max(16, options.initialCapacity ?? 1024);
    this.randomSeed = options.randomSeed ?? 100;
    for (const [name, v] of [
      ['m', this.m],
      ['efConstruction', this.efConstruction],
      ['efSearch', this.efSearch],
      ['segmentCapacity', this.segmentCapacity],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    this.retention = { maxCount: options.retention?.maxCount ?? 0, maxAgeMs: options.retention?.maxAgeMs ?? 0 };
    if (!(Number.isInteger(this.retention.maxCount) && this.retention.maxCount >= 0)) {
      throw new RangeError(`retention.maxCount must be a non-negative integer, got ${this.retention.maxCount}`);
    }
    if (!(this.retention.maxAgeMs >= 0)) throw new RangeError(`retention.maxAgeMs must be >= 0, got ${this.retention.maxAgeMs}`);
    this.capacity = this.initialCapacity;
    this.vectors = new Float32Array(this.capacity * dim);
    this.tsArr = new Float64Array(this.capacity);
    this.outcomeArr = new Float64Array(this.capacity);
    this.symbolArr = new Uint32Array(this.capacity);
    this.regimeArr = new Uint8Array(this.capacity);
    this.scratch = new Array<number>(dim).fill(0);
  }

  /** Number of vectors stored. */
  get size(): number {
    return this.n - this.base;
  }

  /** Number of vectors not yet merged into a graph (searched exactly). */
  get pendingMerge(): number {
    let pending = 0;
    for (let s = this.firstUnmerged; s < this.segments.length; s++) {
      const seg = this.segments[s] as Segment;
      pending += seg.end - seg.start - seg.merged;
    }
    return pending;
  }

  /** Number of segments (graphs) a query visits. */
  get segmentCount(): number {
    return this.segments.length;
  }

  /** The id stored for `(symbol, ts)`, or -1. */
  idOf(symbol: string, ts: number): number {
    const s = this.symbolIndex.get(symbol);
    if (s === undefined) return -1;
    return this.keys[s]?.get(ts) ?? -1;
  }

  /** Metadata and outcome of an id (NaN outcome when unknown). */
  get(id: number): PatternMeta & { outcome: number } {
    if (!(id >= this.base && id < this.n)) throw new RangeError(`no pattern with id ${id}`);
    const i = id - this.base;
    return {
      symbol: this.symbols[this.symbolArr[i] as number] as string,
      ts: this.tsArr[i] as number,
      regime: REGIME_NAMES[this.regimeArr[i] as number] as RegimeName,
      outcome: this.outcomeArr[i] as number,
    };
  }

  /**
   * Adds one vector (copied) with its metadata; returns its id. Idempotent on `(symbol, ts)`: a second
   * add returns the first id and changes nothing except filling an unknown outcome. Returns -1 (and
   * adds nothing) when retention has dropped patterns of the symbol at or after `ts`.
   */
  add(vector: ArrayLike<number>, meta: PatternMeta, outcome = Number.NaN): number {
    if (vector.length !== this.dim) throw new RangeError(`vector has ${vector.length} values, expected ${this.dim}`);
    const regime = REGIME_INDEX.get(meta.regime);
    if (regime === undefined) throw new RangeError(`unknown regime ${String(meta.regime)}`);
    return this.addOne(vector, 0, this.internSymbol(meta.symbol), meta.ts, regime, outcome);
  }

  /**
   * Adds a batch (see {@link PatternBatch}); returns the number of new vectors. A synchronous copy:
   * keep batches bounded (about 50k vectors take ~10 ms) or use {@link ingest}.
   */
  addBatch(batch: PatternBatch): number {
    const n = batch.ts.length;
    if (batch.vectors.length !== n * this.dim) {
      throw new RangeError(`batch has ${batch.vectors.length} values, expected ${n} × ${this.dim}`);
    }
    const single = typeof batch.symbols === 'string' ? this.internSymbol(batch.symbols) : -1;
    const before = this.n;
    // Capacity is of held patterns (ids from `base`): ids keep growing after retention drops.
    this.ensureCapacity(this.n - this.base + n);
    for (let i = 0; i < n; i++) {
      const sym = single >= 0 ? single : this.internSymbol((batch.symbols as readonly string[])[i] as string);
      const r = batch.regimes[i];
      const regime = typeof r === 'number' ? r : REGIME_INDEX.get(r as string);
      if (regime === undefined || !(regime >= 0 && regime < REGIME_NAMES.length)) {
        throw new RangeError(`unknown regime ${String(r)} at ${i}`);
      }
      const outcome = batch.outcomes ? (batch.outcomes[i] as number) : Number.NaN;
      this.addOne(batch.vectors, i * this.dim, sym, batch.ts[i] as number, regime, outcome);
    }
    return this.n - before;
  }

  /** {@link addBatch} in slices of `sliceSize`, yielding to the event loop between slices. */
  async ingest(batch: PatternBatch, sliceSize = 32_768): Promise<number> {
    const n = batch.ts.length;
    // Grow once for the whole batch rather than doubling (and copying) repeatedly on the way.
    this.ensureCapacity(this.n - this.base + n);
    let added = 0;
    for (let from = 0; from < n; from += sliceSize) {
      const to = Math.min(n, from + sliceSize);
      added += this.addBatch({
        vectors: batch.vectors.subarray(from * this.dim, to * this.dim),
        symbols: typeof batch.symbols === 'string' ? batch.symbols : batch.symbols.slice(from, to),
        ts: sliceOf(batch.ts, from, to),
        regimes: sliceOf(batch.regimes as ArrayLike<number | string>, from, to) as ArrayLike<number>,
        ...(batch.outcomes ? { outcomes: sliceOf(batch.outcomes, from, to) } : {}),
      });
      if (to < n) await yieldToEventLoop();
    }
    return added;
  }

  /** Sets the forward outcome of `(symbol, ts)` if it is stored and its outcome unknown; returns whether it did. */
  setOutcome(symbol: string, ts: number, outcome: number): boolean {
    const id = this.idOf(symbol, ts);
    if (id < 0 || !Number.isNaN(this.outcomeArr[id - this.base])) return false;
    this.fillOutcome(id, outcome);
    return true;
  }

  private fillOutcome(id: number, outcome: number): void {
    this.outcomeArr[id - this.base] = outcome;
    if (this.tracking && !Number.isNaN(outcome)) this.outcomeChanges.push(id, outcome);
  }

  /**
   * Moves up to `maxInserts` fresh vectors into their segment's graph, oldest first (synchronous,
   * deterministic). Returns how many it moved. An insertion costs roughly 0.1 ms.
   */
  mergeStep(maxInserts: number): number {
    let done = 0;
    while (done < maxInserts && this.firstUnmerged < this.segments.length) {
      const seg = this.segments[this.firstUnmerged] as Segment;
      const total = seg.end - seg.start;
      while (done < maxInserts && seg.merged < total) {
        this.insertIntoGraph(seg, seg.start + seg.merged);
        seg.merged++;
        done++;
      }
      if (seg.merged === this.segmentCapacity) this.firstUnmerged++;
      else break; // the last, still growing segment: nothing more to merge now
    }
    return done;
  }

  /**
   * Merges in the background in slices of at most `sliceMs` of work, yielding to the event loop
   * between slices, until nothing is pending. Returns a promise that resolves then (the same promise
   * while one is running). Wall-clock driven, so not deterministic relative to queries.
   */
  mergeInBackground(sliceMs = 5): Promise<void> {
    if (this.background) return this.background;
    this.background = (async () => {
      try {
        while (this.pendingMerge > 0) {
          const until = performance.now() + sliceMs;
          while (performance.now() < until && this.mergeStep(32) > 0);
          await yieldToEventLoop();
        }
      } finally {
        this.background = null;
      }
    })();
    return this.background;
  }

  /**
   * The `k` nearest stored vectors to `query` among those whose outcome is known and whose `ts` is
   * at most `maxPatternTs` (pass the query bar's ts minus the outcome horizon to rule out
   * look-ahead), nearest first. Graphs are asked for more than `k` and the answer filtered; a graph
   * is asked again with a larger count when too few of its answers qualify.
   */
  search(query: ArrayLike<number>, k: number, maxPatternTs = Number.POSITIVE_INFINITY): PatternNeighbour[] {
    if (query.length !== this.dim) throw new RangeError(`query has ${query.length} values, expected ${this.dim}`);
    if (k <= 0 || this.n === 0) return [];
    const best = new TopK(k);
    const q = this.scratch;
    for (let d = 0; d < this.dim; d++) q[d] = query[d] as number;
    for (const seg of this.segments) {
      if (seg.merged > 0 && seg.graph) this.searchGraph(seg, q, k, maxPatternTs, best);
      this.scanExact(query, seg.start + seg.merged, seg.end, maxPatternTs, best);
    }
    return best.ids().map((id, i) => ({
      id,
      distance: Math.sqrt(best.distanceAt(i)),
      ...this.get(id),
    }));
  }

  /** Exact k-NN by brute force over everything (for measuring recall), same filter as {@link search}. */
  exactSearch(query: ArrayLike<number>, k: number, maxPatternTs = Number.POSITIVE_INFINITY): number[] {
    const best = new TopK(k);
    this.scanExact(query, this.base, this.n, maxPatternTs, best);
    return best.ids();
  }

  /**
   * Drops the oldest segments, whole, while the retention rules of the options are broken (see
   * {@link PatternRetention}); returns the number of patterns dropped. Called after every new pattern,
   * so a store never holds more than the rules allow for longer than one add; call it yourself only
   * after {@link restore}. Decided by counts and bar times, never by the clock, so a replay drops
   * exactly what the original run dropped. The segment holding the newest pattern is never dropped.
   */
  enforceRetention(): number {
    const { maxCount, maxAgeMs } = this.retention;
    let dropped = 0;
    while (this.segments.length > 1) {
      const oldest = this.segments[0] as Segment;
      const tooMany = maxCount > 0 && this.n - this.base > maxCount;
      const tooOld = maxAgeMs > 0 && oldest.maxTs < this.latestTs - maxAgeMs;
      if (!tooMany && !tooOld) break;
      dropped += this.dropOldestSegment();
    }
    return dropped;
  }

  /** First id still held (ids of dropped segments are below it and never reused). */
  get firstId(): number {
    return this.base;
  }

  /** One past the last id ever assigned. */
  get nextId(): number {
    return this.n;
  }

  /** Every id below this is in a graph (merging goes in id order), the rest in the fresh tails. */
  get mergedThrough(): number {
    for (let s = this.firstUnmerged; s < this.segments.length; s++) {
      const seg = this.segments[s] as Segment;
      if (seg.merged < this.segmentCapacity) return seg.start + seg.merged;
    }
    return this.n;
  }

  /** The options the store was built with, defaults filled in (persisted with the store). */
  get resolvedOptions(): Required<Omit<PatternStoreOptions, 'retention'>> {
    return {
      dim: this.dim,
      m: this.m,
      efConstruction: this.efConstruction,
      efSearch: this.efSearch,
      segmentCapacity: this.segmentCapacity,
      initialCapacity: this.initialCapacity,
      randomSeed: this.randomSeed,
    };
  }

  /** Symbol names in interning order: a record's `symbol` index points into this. */
  symbolNames(): string[] {
    return this.symbols.slice();
  }

  /**
   * Per symbol, the newest bar time of its dropped patterns: an add at or before it is ignored, so a
   * replayed old bar cannot bring a dropped pattern back.
   */
  retentionFloors(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [sym, ts] of this.floors) out[this.symbols[sym] as string] = ts;
    return out;
  }

  /** The segments, oldest first, with their graph (null before the first merge). */
  segmentsInfo(): readonly PatternSegmentInfo[] {
    return this.segments.map((s) => ({
      start: s.start,
      end: s.end,
      merged: s.merged,
      sealed: s.end - s.start === this.segmentCapacity,
      graph: s.graph,
    }));
  }

  /** Copies of the records of ids `fromId .. toId − 1` (all held). */
  records(fromId: number, toId: number): PatternRecords {
    if (!(fromId >= this.base && fromId <= toId && toId <= this.n)) {
      throw new RangeError(`records ${fromId}..${toId} are not held (held: ${this.base}..${this.n})`);
    }
    const a = fromId - this.base;
    const b = toId - this.base;
    return {
      firstId: fromId,
      vectors: this.vectors.slice(a * this.dim, b * this.dim),
      ts: this.tsArr.slice(a, b),
      outcomes: this.outcomeArr.slice(a, b),
      symbols: this.symbolArr.slice(a, b),
      regimes: this.regimeArr.slice(a, b),
    };
  }

  /**
   * From now on, remembers every outcome that is filled in, for {@link takeOutcomeChanges}. A
   * persister calls it once; a store nobody persists keeps no such list.
   */
  trackOutcomeChanges(): void {
    this.tracking = true;
  }

  /** Outcomes filled in since the last call, as `[id, outcome, id, outcome, ...]`. */
  takeOutcomeChanges(): Float64Array {
    const out = Float64Array.from(this.outcomeChanges);
    this.outcomeChanges.length = 0;
    return out;
  }

  /** Puts back an outcome change a persister took but failed to write (it is taken again next time). */
  returnOutcomeChange(id: number, outcome: number): void {
    if (this.tracking && id >= this.base) this.outcomeChanges.push(id, outcome);
  }

  /**
   * A store holding exactly the given records (ids `records.firstId` on, in order), with no graph
   * yet: attach the graphs that were saved ({@link attachGraph}) and rebuild the rest
   * ({@link rebuildGraphs}). Retention is not applied (call {@link enforceRetention}).
   */
  static restore(options: PatternStoreOptions, symbols: readonly string[], records: PatternRecords, floors: Record<string, number> = {}): PatternStore {
    const store = new PatternStore(options);
    const n = records.ts.length;
    if (records.vectors.length !== n * store.dim) throw new RangeError('records: vectors and ts differ in length');
    for (const s of symbols) store.internSymbol(s);
    for (const [symbol, ts] of Object.entries(floors)) store.floors.set(store.internSymbol(symbol), ts);
    if (records.firstId % store.segmentCapacity !== 0) {
      throw new RangeError(`records must start at a segment boundary, got id ${records.firstId}`);
    }
    store.base = records.firstId;
    store.n = records.firstId;
    store.ensureCapacity(n);
    const retention = store.retention;
    store.retention = NO_RETENTION;
    try {
      for (let i = 0; i < n; i++) {
        const sym = records.symbols[i] as number;
        if (sym >= store.symbols.length) throw new RangeError(`record ${records.firstId + i} names unknown symbol ${sym}`);
        const id = store.addOne(records.vectors, i * store.dim, sym, records.ts[i] as number, records.regimes[i] as number, records.outcomes[i] as number);
        if (id !== records.firstId + i) throw new RangeError(`record ${records.firstId + i} repeats (symbol, ts) of id ${id}`);
      }
    } finally {
      store.retention = retention;
    }
    return store;
  }

  /** Uses `graph` (read from a file) as the complete graph of the sealed segment starting at `start`. */
  attachGraph(start: number, graph: HierarchicalNSW): void {
    const seg = this.segments.find((s) => s.start === start);
    if (seg === undefined || seg.end - seg.start !== this.segmentCapacity) throw new RangeError(`no sealed segment starts at ${start}`);
    if (graph.getCurrentCount() !== this.segmentCapacity) {
      throw new RangeError(`graph of segment ${start} holds ${graph.getCurrentCount()} vectors, expected ${this.segmentCapacity}`);
    }
    graph.setEf(this.efSearch);
    seg.graph = graph;
    seg.merged = this.segmentCapacity;
    while (this.firstUnmerged < this.segments.length && (this.segments[this.firstUnmerged] as Segment).merged === this.segmentCapacity) {
      this.firstUnmerged++;
    }
  }

  /**
   * Merges, in id order, every id below `mergedThrough` that has no graph yet, with fresh,
   * identically seeded graphs, so they come out exactly as the original run built them (see the
   * class comment); yields to the event loop every `sliceMs`. Segments with an attached graph, or
   * whose start is in `skip` (their graph is being read, to be attached), are skipped.
   */
  async rebuildGraphs(mergedThrough: number, sliceMs = 10, skip: ReadonlySet<number> = new Set()): Promise<void> {
    for (const seg of this.segments) {
      if (skip.has(seg.start)) continue;
      const target = Math.min(seg.end, Math.max(seg.start, mergedThrough)) - seg.start;
      if (seg.merged >= target) continue;
      if (seg.merged > 0) throw new RangeError(`segment ${seg.start} is partly merged; rebuild from an empty graph`);
      while (seg.merged < target) {
        const until = performance.now() + sliceMs;
        while (seg.merged < target && performance.now() < until) {
          this.insertIntoGraph(seg, seg.start + seg.merged);
          seg.merged++;
        }
        if (seg.merged < target) await yieldToEventLoop();
      }
    }
    this.firstUnmerged = this.segments.findIndex((seg) => seg.merged < this.segmentCapacity);
    if (this.firstUnmerged < 0) this.firstUnmerged = this.segments.length;
  }

  private dropOldestSegment(): number {
    const seg = this.segments.shift() as Segment;
    const count = seg.end - seg.start;
    for (let id = seg.start; id < seg.end; id++) {
      const i = id - this.base;
      const sym = this.symbolArr[i] as number;
      const ts = this.tsArr[i] as number;
      if (!((this.floors.get(sym) ?? Number.NEGATIVE_INFINITY) >= ts)) this.floors.set(sym, ts);
    }
    const newBase = seg.end;
    for (const keys of this.keys) keys.dropBelow(newBase);
    const shift = newBase - this.base;
    const live = this.n - newBase;
    this.vectors.copyWithin(0, shift * this.dim, (shift + live) * this.dim);
    this.tsArr.copyWithin(0, shift, shift + live);
    this.outcomeArr.copyWithin(0, shift, shift + live);
    this.symbolArr.copyWithin(0, shift, shift + live);
    this.regimeArr.copyWithin(0, shift, shift + live);
    this.base = newBase;
    this.firstUnmerged = Math.max(0, this.firstUnmerged - 1);
    if (this.tracking) {
      // Outcome changes of dropped ids are of no use to anyone any more.
      const kept: number[] = [];
      for (let i = 0; i < this.outcomeChanges.length; i += 2) {
        if ((this.outcomeChanges[i] as number) >= newBase) kept.push(this.outcomeChanges[i] as number, this.outcomeChanges[i + 1] as number);
      }
      this.outcomeChanges = kept;
    }
    return count;
  }

  private internSymbol(symbol: string): number {
    let s = this.symbolIndex.get(symbol);
    if (s === undefined) {
      s = this.symbols.length;
      this.symbols.push(symbol);
      this.symbolIndex.set(symbol, s);
      this.keys.push(new SymbolKeys());
    }
    return s;
  }

  private addOne(src: ArrayLike<number>, offset: number, sym: number, ts: number, regime: number, outcome: number): number {
    const keys = this.keys[sym] as SymbolKeys;
    const existing = keys.get(ts);
    if (existing >= 0) {
      if (!Number.isNaN(outcome) && Number.isNaN(this.outcomeArr[existing - this.base])) this.fillOutcome(existing, outcome);
      return existing;
    }
    const floor = this.floors.get(sym);
    if (floor !== undefined && ts <= floor) return -1;
    const id = this.n;
    const i = id - this.base;
    this.ensureCapacity(i + 1);
    const base = i * this.dim;
    const v = this.vectors;
    for (let d = 0; d < this.dim; d++) v[base + d] = src[offset + d] as number;
    this.tsArr[i] = ts;
    this.outcomeArr[i] = outcome;
    this.symbolArr[i] = sym;
    this.regimeArr[i] = regime;
    keys.set(ts, id);
    this.n = id + 1;
    if (ts > this.latestTs) this.latestTs = ts;
    const last = this.segments[this.segments.length - 1];
    if (last && last.end - last.start < this.segmentCapacity) {
      last.end = id + 1;
      if (ts > last.maxTs) last.maxTs = ts;
    } else {
      this.segments.push({ start: id, end: id + 1, merged: 0, graph: null, maxTs: ts });
    }
    if (this.retention.maxCount > 0 || this.retention.maxAgeMs > 0) this.enforceRetention();
    return id;
  }

  /** Room for `needed` held patterns (not ids: ids below `base` were dropped). */
  private ensureCapacity(needed: number): void {
    if (needed <= this.capacity) return;
    let cap = this.capacity;
    while (cap < needed) cap *= 2;
    this.vectors = grow(this.vectors, cap * this.dim);
    this.tsArr = grow(this.tsArr, cap);
    this.outcomeArr = grow(this.outcomeArr, cap);
    this.symbolArr = grow(this.symbolArr, cap);
    this.regimeArr = grow(this.regimeArr, cap);
    this.capacity = cap;
  }

  private insertIntoGraph(seg: Segment, id: number): void {
    if (!seg.graph) {
      seg.graph = new HierarchicalNSW('l2', this.dim);
      seg.graph.initIndex({
        maxElements: Math.min(this.segmentCapacity, this.initialCapacity),
        m: this.m,
        efConstruction: this.efConstruction,
        randomSeed: this.randomSeed,
      });
      seg.graph.setEf(this.efSearch);
    }
    const graph = seg.graph;
    if (graph.getCurrentCount() >= graph.getMaxElements()) {
      // Grow in place, without a restart; the graph structure is unaffected by resizing.
      graph.resizeIndex(Math.min(this.segmentCapacity, graph.getMaxElements() * 2));
    }
    const point = this.scratch;
    const base = (id - this.base) * this.dim;
    for (let d = 0; d < this.dim; d++) point[d] = this.vectors[base + d] as number;
    graph.addPoint(point, id);
  }

  private searchGraph(seg: Segment, q: number[], k: number, maxPatternTs: number, best: TopK): void {
    const graph = seg.graph as HierarchicalNSW;
    let fetch = Math.min(seg.merged, k + 16);
    for (;;) {
      graph.setEf(Math.max(this.efSearch, fetch));
      const res = graph.searchKnn(q, fetch);
      let eligible = 0;
      for (let i = 0; i < res.neighbors.length; i++) {
        const id = res.neighbors[i] as number;
        if (this.eligible(id, maxPatternTs)) eligible++;
      }
      if (eligible >= k || fetch >= seg.merged) {
        for (let i = 0; i < res.neighbors.length; i++) {
          const id = res.neighbors[i] as number;
          if (this.eligible(id, maxPatternTs)) best.offer(res.distances[i] as number, id);
        }
        return;
      }
      fetch = Math.min(seg.merged, fetch * 4);
    }
  }

  private eligible(id: number, maxPatternTs: number): boolean {
    const i = id - this.base;
    return (this.tsArr[i] as number) <= maxPatternTs && !Number.isNaN(this.outcomeArr[i]);
  }

  private scanExact(query: ArrayLike<number>, from: number, to: number, maxPatternTs: number, best: TopK): void {
    const dim = this.dim;
    const v = this.vectors;
    for (let id = from; id < to; id++) {
      if (!this.eligible(id, maxPatternTs)) continue;
      const base = (id - this.base) * dim;
      let dist = 0;
      for (let d = 0; d < dim; d++) {
        const diff = (v[base + d] as number) - (query[d] as number);
        dist += diff * diff;
      }
      if (dist < best.worst()) best.offer(dist, id);
    }
  }
}

/**
 * `ts → id` of one symbol. Bars of a symbol arrive in ts order, so the usual case is an append to a
 * sorted array (O(1), no hashing) and lookups are binary searches; a ts older than the newest one
 * that is not already present goes to a small overflow map.
 */
class SymbolKeys {
  private ts = new Float64Array(64);
  private ids = new Int32Array(64);
  private n = 0;
  private overflow: Map<number, number> | null = null;

  get(ts: number): number {
    const n = this.n;
    if (n > 0 && ts <= (this.ts[n - 1] as number)) {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((this.ts[mid] as number) < ts) lo = mid + 1;
        else hi = mid;
      }
      if (lo < n && this.ts[lo] === ts) return this.ids[lo] as number;
    }
    return this.overflow?.get(ts) ?? -1;
  }

  /** Forgets every entry whose id is below `id` (ids grow with insertion, as does the sorted part). */
  dropBelow(id: number): void {
    let k = 0;
    while (k < this.n && (this.ids[k] as number) < id) k++;
    if (k > 0) {
      this.ts.copyWithin(0, k, this.n);
      this.ids.copyWithin(0, k, this.n);
      this.n -= k;
    }
    if (this.overflow) for (const [ts, v] of this.overflow) if (v < id) this.overflow.delete(ts);
  }

  /** Records a ts known to be absent. */
  set(ts: number, id: number): void {
    const n = this.n;
    if (n > 0 && ts <= (this.ts[n - 1] as number)) {
      (this.overflow ??= new Map()).set(ts, id);
      return;
    }
    if (n === this.ts.length) {
      this.ts = grow(this.ts, n * 2);
      this.ids = grow(this.ids, n * 2);
    }
    this.ts[n] = ts;
    this.ids[n] = id;
    this.n = n + 1;
  }
}

/** The k smallest (distance, id) pairs, ties broken by the smaller id so results never depend on visit order. */
class TopK {
  private readonly dist: number[] = [];
  private readonly id: number[] = [];
  constructor(private readonly k: number) {}

  worst(): number {
    return this.dist.length < this.k ? Number.POSITIVE_INFINITY : (this.dist[this.dist.length - 1] as number);
  }

  offer(distance: number, id: number): void {
    let i = this.dist.length;
    if (i === this.k) {
      const wd = this.dist[i - 1] as number;
      if (distance > wd || (distance === wd && id > (this.id[i - 1] as number))) return;
      this.dist.pop();
      this.id.pop();
      i--;
    }
    while (i > 0) {
      const d = this.dist[i - 1] as number;
      if (d < distance || (d === distance && (this.id[i - 1] as number) < id)) break;
      i--;
    }
    this.dist.splice(i, 0, distance);
    this.id.splice(i, 0, id);
  }

  ids(): number[] {
    return this.id.slice();
  }

  distanceAt(i: number): number {
    return this.dist[i] as number;
  }
}

type TypedArray = Float32Array | Float64Array | Uint32Array | Uint8Array | Int32Array;

function grow<T extends TypedArray>(arr: T, length: number): T {
  const next = new (arr.constructor as new (n: number) => T)(length);
  next.set(arr);
  return next;
}

function sliceOf<T>(arr: ArrayLike<T>, from: number, to: number): ArrayLike<T> {
  if (ArrayBuffer.isView(arr)) return (arr as unknown as Float64Array).subarray(from, to) as unknown as ArrayLike<T>;
  return Array.prototype.slice.call(arr, from, to) as T[];
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
