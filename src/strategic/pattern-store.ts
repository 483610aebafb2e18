import { HierarchicalNSW } from 'hnswlib-node';
import { link, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
   * takes no more vectors and, once fully merged, is immutable. @defaultValue 262144
   */
  segmentCapacity?: number;
  /** Initial capacity of the growing graph and of the vector arrays; both grow by doubling. @defaultValue 1024 */
  initialCapacity?: number;
  /** Seed of every segment's HNSW level generator. @defaultValue 100 */
  randomSeed?: number;
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
  /** Path of the graph file holding the complete segment, once saved. */
  savedGraphPath: string | null;
}

interface StoreMetaFile {
  version: 1;
  dim: number;
  m: number;
  efConstruction: number;
  efSearch: number;
  segmentCapacity: number;
  initialCapacity: number;
  randomSeed: number;
  count: number;
  symbols: string[];
  segments: { start: number; end: number; merged: number; graphFile: string | null }[];
}

const CURRENT = 'CURRENT';
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
 * {@link load} rebuilds the incomplete segment's graph from its vectors (at most `segmentCapacity`
 * insertions) to exactly the merged prefix it had when saved. A store saved and loaded therefore
 * answers every later sequence of calls exactly as the original would have. {@link mergeInBackground}
 * merges by wall-clock slices and so is not deterministic relative to queries; the
 * {@link StrategicAnalyzer} uses count-bounded {@link mergeStep} calls instead.
 *
 * **Persistence.** {@link save} writes a new generation directory (typed-array files, complete
 * segment graphs, hard-linked when unchanged since the previous save, and `meta.json`), then switches
 * the `CURRENT` pointer file by writing a temp file and renaming it, so a crash mid-save leaves the
 * previous generation intact.
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
  private stopBackground = false;
  private saving: Promise<void> = Promise.resolve();
  private readonly scratch: number[];

  constructor(options: PatternStoreOptions) {
    const { dim } = options;
    if (!Number.isInteger(dim) || dim <= 0) throw new RangeError(`dim must be a positive integer, got ${dim}`);
    this.dim = dim;
    this.m = options.m ?? 16;
    this.efConstruction = options.efConstruction ?? 100;
    this.efSearch = options.efSearch ?? 48;
    this.segmentCapacity = options.segmentCapacity ?? 262_144;
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
    return this.n;
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
    if (!(id >= 0 && id < this.n)) throw new RangeError(`no pattern with id ${id}`);
    return {
      symbol: this.symbols[this.symbolArr[id] as number] as string,
      ts: this.tsArr[id] as number,
      regime: REGIME_NAMES[this.regimeArr[id] as number] as RegimeName,
      outcome: this.outcomeArr[id] as number,
    };
  }

  /** A copy of the vector of `id`. */
  vector(id: number): Float32Array {
    if (!(id >= 0 && id < this.n)) throw new RangeError(`no pattern with id ${id}`);
    return this.vectors.slice(id * this.dim, (id + 1) * this.dim);
  }

  /**
   * Adds one vector (copied) with its metadata; returns its id. Idempotent on `(symbol, ts)`: a second
   * add returns the first id and changes nothing except filling an unknown outcome.
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
    this.ensureCapacity(this.n + n);
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
    this.ensureCapacity(this.n + n);
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
    if (id < 0 || !Number.isNaN(this.outcomeArr[id] as number)) return false;
    this.outcomeArr[id] = outcome;
    return true;
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
    this.stopBackground = false;
    this.background = (async () => {
      try {
        while (!this.stopBackground && this.pendingMerge > 0) {
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

  /** Stops a running {@link mergeInBackground} after its current slice. */
  async stopMerging(): Promise<void> {
    this.stopBackground = true;
    await this.background;
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
    this.scanExact(query, 0, this.n, maxPatternTs, best);
    return best.ids();
  }

  /**
   * Writes the store under `dir` (see the class comment); resolves when the new generation is
   * current. Saves are serialised. Reflects the store as it was when called.
   */
  save(dir: string): Promise<void> {
    const run = this.saving.then(() => this.saveNow(dir));
    this.saving = run.catch(() => undefined);
    return run;
  }

  /** Reads a store written by {@link save}, rebuilding the incomplete segment's graph in slices. */
  static async load(dir: string, sliceMs = 10): Promise<PatternStore> {
    const gen = (await readFile(join(dir, CURRENT), 'utf8')).trim();
    const genDir = join(dir, gen);
    const meta = JSON.parse(await readFile(join(genDir, 'meta.json'), 'utf8')) as StoreMetaFile;
    if (meta.version !== 1) throw new RangeError(`unsupported pattern store version ${String(meta.version)}`);
    const store = new PatternStore({
      dim: meta.dim,
      m: meta.m,
      efConstruction: meta.efConstruction,
      efSearch: meta.efSearch,
      segmentCapacity: meta.segmentCapacity,
      initialCapacity: meta.initialCapacity,
      randomSeed: meta.randomSeed,
    });
    const n = meta.count;
    const vectors = await readTyped(join(genDir, 'vectors.f32'), Float32Array, n * meta.dim);
    const ts = await readTyped(join(genDir, 'ts.f64'), Float64Array, n);
    const outcomes = await readTyped(join(genDir, 'outcome.f64'), Float64Array, n);
    const syms = await readTyped(join(genDir, 'symbol.u32'), Uint32Array, n);
    const regimes = await readTyped(join(genDir, 'regime.u8'), Uint8Array, n);
    for (const s of meta.symbols) store.internSymbol(s);
    store.ensureCapacity(n);
    for (let i = 0; i < n; i++) {
      store.addOne(vectors, i * meta.dim, syms[i] as number, ts[i] as number, regimes[i] as number, outcomes[i] as number);
    }
    if (store.segments.length !== meta.segments.length) {
      throw new RangeError(`pattern store ${genDir} is inconsistent: segment count differs from meta.json`);
    }
    for (let s = 0; s < meta.segments.length; s++) {
      const saved = meta.segments[s] as StoreMetaFile['segments'][number];
      const seg = store.segments[s] as Segment;
      if (saved.graphFile) {
        const graph = new HierarchicalNSW('l2', meta.dim);
        await graph.readIndex(join(genDir, saved.graphFile));
        graph.setEf(store.efSearch);
        seg.graph = graph;
        seg.merged = saved.merged;
        seg.savedGraphPath = join(genDir, saved.graphFile);
      } else {
        // Rebuild to the same merged prefix with a fresh, identically seeded graph (see class comment).
        while (seg.merged < saved.merged) {
          const until = performance.now() + sliceMs;
          while (seg.merged < saved.merged && performance.now() < until) {
            store.insertIntoGraph(seg, seg.start + seg.merged);
            seg.merged++;
          }
          await yieldToEventLoop();
        }
      }
    }
    store.firstUnmerged = store.segments.findIndex((seg) => seg.merged < store.segmentCapacity);
    if (store.firstUnmerged < 0) store.firstUnmerged = store.segments.length;
    return store;
  }

  private async saveNow(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const gen = `gen-${Date.now().toString(36)}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const genDir = join(dir, gen);
    await mkdir(genDir);
    const n = this.n;
    // Snapshot everything that can still change while we await.
    const vectors = this.vectors.slice(0, n * this.dim);
    const ts = this.tsArr.slice(0, n);
    const outcomes = this.outcomeArr.slice(0, n);
    const syms = this.symbolArr.slice(0, n);
    const regimes = this.regimeArr.slice(0, n);
    const segs = this.segments.map((s) => ({ seg: s, start: s.start, end: s.end, merged: s.merged }));
    const meta: StoreMetaFile = {
      version: 1,
      dim: this.dim,
      m: this.m,
      efConstruction: this.efConstruction,
      efSearch: this.efSearch,
      segmentCapacity: this.segmentCapacity,
      initialCapacity: this.initialCapacity,
      randomSeed: this.randomSeed,
      count: n,
      symbols: this.symbols.slice(),
      segments: [],
    };
    await writeFile(join(genDir, 'vectors.f32'), bytes(vectors));
    await writeFile(join(genDir, 'ts.f64'), bytes(ts));
    await writeFile(join(genDir, 'outcome.f64'), bytes(outcomes));
    await writeFile(join(genDir, 'symbol.u32'), bytes(syms));
    await writeFile(join(genDir, 'regime.u8'), bytes(regimes));
    for (const { seg, start, end, merged } of segs) {
      let graphFile: string | null = null;
      if (merged === this.segmentCapacity && seg.graph) {
        // A complete segment never changes again: link the file of an earlier save when there is one.
        graphFile = `seg-${start}.hnsw`;
        const target = join(genDir, graphFile);
        let linked = false;
        if (seg.savedGraphPath && (await exists(seg.savedGraphPath))) {
          linked = await link(seg.savedGraphPath, target).then(
            () => true,
            () => false,
          );
        }
        if (!linked) await seg.graph.writeIndex(target);
        seg.savedGraphPath = target;
      }
      meta.segments.push({ start, end, merged, graphFile });
    }
    await writeFile(join(genDir, 'meta.json'), JSON.stringify(meta));
    const tmp = join(dir, `${CURRENT}.${gen}.tmp`);
    await writeFile(tmp, gen);
    await rename(tmp, join(dir, CURRENT));
    // Old generations are garbage now; a failure to remove one is harmless.
    for (const entry of await readdir(dir)) {
      if (entry.startsWith('gen-') && entry !== gen) await rm(join(dir, entry), { recursive: true, force: true });
    }
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
      if (!Number.isNaN(outcome) && Number.isNaN(this.outcomeArr[existing] as number)) this.outcomeArr[existing] = outcome;
      return existing;
    }
    const id = this.n;
    this.ensureCapacity(id + 1);
    const base = id * this.dim;
    const v = this.vectors;
    for (let d = 0; d < this.dim; d++) v[base + d] = src[offset + d] as number;
    this.tsArr[id] = ts;
    this.outcomeArr[id] = outcome;
    this.symbolArr[id] = sym;
    this.regimeArr[id] = regime;
    keys.set(ts, id);
    this.n = id + 1;
    const last = this.segments[this.segments.length - 1];
    if (last && last.end - last.start < this.segmentCapacity) last.end = id + 1;
    else this.segments.push({ start: id, end: id + 1, merged: 0, graph: null, savedGraphPath: null });
    return id;
  }

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
    const base = id * this.dim;
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
    return (this.tsArr[id] as number) <= maxPatternTs && !Number.isNaN(this.outcomeArr[id] as number);
  }

  private scanExact(query: ArrayLike<number>, from: number, to: number, maxPatternTs: number, best: TopK): void {
    const dim = this.dim;
    const v = this.vectors;
    for (let id = from; id < to; id++) {
      if (!this.eligible(id, maxPatternTs)) continue;
      const base = id * dim;
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
  next.set(arr as never);
  return next;
}

function bytes(arr: TypedArray): Uint8Array {
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

async function readTyped<T extends TypedArray>(
  path: string,
  ctor: { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number },
  length: number,
): Promise<T> {
  const buf = await readFile(path);
  if (buf.byteLength < length * ctor.BYTES_PER_ELEMENT) throw new RangeError(`${path} is truncated`);
  // Copy into an aligned buffer of our own (a Node Buffer may sit at any offset of a shared pool).
  const own = new ArrayBuffer(length * ctor.BYTES_PER_ELEMENT);
  new Uint8Array(own).set(buf.subarray(0, own.byteLength));
  return new ctor(own, 0, length);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function sliceOf<T>(arr: ArrayLike<T>, from: number, to: number): ArrayLike<T> {
  if (ArrayBuffer.isView(arr)) return (arr as unknown as Float64Array).subarray(from, to) as unknown as ArrayLike<T>;
  return Array.prototype.slice.call(arr, from, to) as T[];
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
