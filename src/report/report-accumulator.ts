/**
 * What the report needs of a results file, gathered one result at a time: per symbol the compact
 * columns of {@link SymbolSeries}, the latencies, and the counts, so that neither the file nor its
 * parsed results are ever held whole. Repeats of a `(symbol, ts)` are recognised by a bit per bar
 * ({@link BarKeySet}); the first delivery counts.
 *
 * Memory stays flat however long the file: past `spillAfter` lines, every symbol's rows and the
 * latencies go in blocks to a scratch file ({@link SpillFile}, unlinked at once), and the report then
 * reads back one symbol at a time ({@link ReportData.groups} loads a series when asked for it). Only
 * the blocks being filled (`chunkRows` rows per symbol, 43 bytes each) and the bit set (about 13 kB
 * per symbol-year) stay in memory. Every figure is computed from the same rows in the same order as
 * in memory, so the report is the same byte for byte (test/unit/report/results-file.test.ts).
 */
import type { IntegratedResult } from '../../schemas/integrated-result.schema';
import { BarKeySet } from './bar-key-set';
import { SpillFile, type SpilledBlock } from './spill-file';
import { SymbolSeries } from './symbol-series';

/** The counts of the report's last section. */
export interface Counts {
  results: number;
  symbols: number;
  /** Deliveries of a `(symbol, ts)` already seen. */
  repeats: number;
  stale: number;
  /** Results without a regime (strategic warm-up or fallback). */
  noRegime: number;
  degraded: Map<string, number>;
  /** Results with at least one degraded stage. */
  degradedResults: number;
  modelVersions: Map<string, number>;
  firstTs: number | null;
  lastTs: number | null;
}

/** Numbers read a block at a time (a column that may live in a scratch file). */
export interface NumberChunks {
  readonly length: number;
  /** Calls `fn` with every value, in order, one block at a time; may be called any number of times. */
  forEachChunk(fn: (values: Float64Array) => void): void;
}

/** Everything the report draws. */
export interface ReportData {
  /**
   * Per symbol (sorted by symbol), one result per ts, in ts order. Of a large file, each `get` or
   * step of an iteration reads that symbol back from the scratch file: hold one series at a time.
   */
  groups: ReadonlyMap<string, SymbolSeries>;
  counts: Counts;
  /** `latency_ms` of every result read, repeats included. */
  latencies: Float64Array | NumberChunks;
  /** Releases the scratch file, if any; `groups` and `latencies` are not to be read afterwards. */
  close(): void;
}

export interface ReportAccumulatorOptions {
  /** Lines held in memory before blocks go to a scratch file. @defaultValue 200,000 (about 10 MB) */
  spillAfter?: number;
  /** Rows of a symbol (and 16× as many latencies) written to the scratch file at once. @defaultValue 4096 */
  chunkRows?: number;
  /** Folder of the scratch file. @defaultValue os.tmpdir() */
  dir?: string;
}

/** The numbers of a column: in one growing array until the spill starts, then in blocks. */
class NumberColumn {
  private buf = new Float64Array(1024);
  private held = 0;
  private readonly blocks: SpilledBlock[] = [];
  private total = 0;

  constructor(private readonly chunk: number) {}

  get length(): number {
    return this.total;
  }

  push(v: number, spill: SpillFile | null): void {
    if (this.held === this.buf.length) {
      if (spill !== null && this.held >= this.chunk) this.flush(spill);
      else {
        const grown = new Float64Array(Math.ceil(this.held * 1.5));
        grown.set(this.buf);
        this.buf = grown;
      }
    }
    this.buf[this.held++] = v;
    this.total++;
  }

  private flush(spill: SpillFile): void {
    const bytes = new Uint8Array(this.buf.buffer, 0, this.held * 8);
    this.blocks.push(spill.append(bytes, this.held));
    this.held = 0;
    if (this.buf.length > this.chunk) this.buf = new Float64Array(this.chunk);
  }

  /** Every value in one array (a column that never spilled). */
  inMemory(): Float64Array {
    return this.buf.slice(0, this.held);
  }

  spilled(spill: SpillFile): NumberChunks {
    const blocks = [...this.blocks];
    const tail = this.buf.slice(0, this.held);
    const length = this.total;
    return {
      length,
      forEachChunk(fn) {
        let scratch = new Uint8Array(0);
        for (const b of blocks) {
          if (scratch.byteLength < b.bytes) scratch = new Uint8Array(b.bytes);
          spill.read(b, scratch);
          fn(new Float64Array(scratch.buffer, 0, b.count));
        }
        if (tail.length > 0) fn(tail);
      },
    };
  }
}

interface SymbolRows {
  /** Rows not yet written to the scratch file (all of them until the spill starts). */
  buffer: SymbolSeries;
  blocks: SpilledBlock[];
}

/** The series of a spilled file, each read back from the scratch file when asked for. */
class SpilledGroups implements ReadonlyMap<string, SymbolSeries> {
  /** The read buffer, reused block after block. */
  private scratch = new Uint8Array(0);

  constructor(
    private readonly rows: ReadonlyMap<string, SymbolRows>,
    private readonly spill: SpillFile,
  ) {}

  get size(): number {
    return this.rows.size;
  }

  has(symbol: string): boolean {
    return this.rows.has(symbol);
  }

  get(symbol: string): SymbolSeries | undefined {
    const r = this.rows.get(symbol);
    if (r === undefined) return undefined;
    const s = new SymbolSeries();
    s.reserve(r.blocks.reduce((a, b) => a + b.count, r.buffer.length));
    for (const b of r.blocks) {
      if (this.scratch.byteLength < b.bytes) this.scratch = new Uint8Array(b.bytes);
      s.appendEncoded(this.spill.read(b, this.scratch), b.count);
    }
    s.appendEncoded(r.buffer.encode(), r.buffer.length);
    s.sortByTs();
    return s;
  }

  *keys(): MapIterator<string> {
    yield* this.rows.keys();
  }

  *values(): MapIterator<SymbolSeries> {
    for (const k of this.rows.keys()) yield this.get(k) as SymbolSeries;
  }

  *entries(): MapIterator<[string, SymbolSeries]> {
    for (const k of this.rows.keys()) yield [k, this.get(k) as SymbolSeries];
  }

  [Symbol.iterator](): MapIterator<[string, SymbolSeries]> {
    return this.entries();
  }

  forEach(fn: (value: SymbolSeries, key: string, map: ReadonlyMap<string, SymbolSeries>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}

export class ReportAccumulator {
  private readonly rows = new Map<string, SymbolRows>();
  private readonly seen = new BarKeySet();
  private readonly latencies: NumberColumn;
  private readonly spillAfter: number;
  private readonly chunkRows: number;
  private readonly dir: string | undefined;
  private spill: SpillFile | null = null;
  private lines = 0;
  private readonly c: Counts = {
    results: 0,
    symbols: 0,
    repeats: 0,
    stale: 0,
    noRegime: 0,
    degraded: new Map(),
    degradedResults: 0,
    modelVersions: new Map(),
    firstTs: null,
    lastTs: null,
  };

  constructor(options: ReportAccumulatorOptions = {}) {
    this.spillAfter = options.spillAfter ?? 200_000;
    this.chunkRows = options.chunkRows ?? 4096;
    if (!(Number.isInteger(this.spillAfter) && this.spillAfter >= 0)) throw new RangeError(`spillAfter must be a non-negative integer, got ${this.spillAfter}`);
    if (!(Number.isInteger(this.chunkRows) && this.chunkRows >= 1)) throw new RangeError(`chunkRows must be a positive integer, got ${this.chunkRows}`);
    this.dir = options.dir;
    this.latencies = new NumberColumn(this.chunkRows * 16);
  }

  add(r: IntegratedResult): void {
    if (this.spill === null && this.lines >= this.spillAfter) this.spill = new SpillFile(this.dir);
    this.lines++;
    this.latencies.push(r.latency_ms, this.spill);
    const c = this.c;
    if (!this.seen.add(r.symbol, r.ts)) {
      c.repeats++;
      return;
    }
    let rows = this.rows.get(r.symbol);
    if (rows === undefined) this.rows.set(r.symbol, (rows = { buffer: new SymbolSeries(), blocks: [] }));
    if (this.spill !== null && rows.buffer.length >= this.chunkRows) {
      rows.blocks.push(this.spill.append(rows.buffer.encode(), rows.buffer.length));
      rows.buffer.clear();
    }
    rows.buffer.push(r);
    c.results++;
    if (r.strategic.stale) c.stale++;
    if (r.strategic.regime === null) c.noRegime++;
    if (r.degraded.length > 0) c.degradedResults++;
    for (const d of r.degraded) c.degraded.set(d, (c.degraded.get(d) ?? 0) + 1);
    const mv = r.model_version ?? 'null';
    c.modelVersions.set(mv, (c.modelVersions.get(mv) ?? 0) + 1);
    c.firstTs = c.firstTs === null ? r.ts : Math.min(c.firstTs, r.ts);
    c.lastTs = c.lastTs === null ? r.ts : Math.max(c.lastTs, r.ts);
  }

  /** Whether blocks went to a scratch file. */
  get spilled(): boolean {
    return this.spill !== null;
  }

  /** Releases the scratch file without finishing (a file that turned out bad). */
  discard(): void {
    this.spill?.close();
  }

  /** The data; the accumulator is not to be used afterwards. */
  finish(): ReportData {
    const sorted = new Map<string, SymbolRows>();
    for (const symbol of [...this.rows.keys()].sort()) sorted.set(symbol, this.rows.get(symbol) as SymbolRows);
    const counts = { ...this.c, symbols: sorted.size };
    const spill = this.spill;
    if (spill === null) {
      const groups = new Map<string, SymbolSeries>();
      for (const [symbol, rows] of sorted) {
        rows.buffer.sortByTs();
        groups.set(symbol, rows.buffer);
      }
      return { groups, counts, latencies: this.latencies.inMemory(), close: () => undefined };
    }
    return {
      groups: new SpilledGroups(sorted, spill),
      counts,
      latencies: this.latencies.spilled(spill),
      close: () => spill.close(),
    };
  }
}

/** The report data of results already in memory. */
export function accumulate(results: readonly IntegratedResult[]): ReportData {
  const a = new ReportAccumulator({ spillAfter: Number.MAX_SAFE_INTEGER });
  for (const r of results) a.add(r);
  return a.finish();
}
