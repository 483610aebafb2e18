import { crc32 } from 'node:zlib';
import { HierarchicalNSW } from 'hnswlib-node';
import { mkdir, open, readFile, readdir, rm, stat, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StateStoreError } from '../errors';
import {
  PatternStore,
  type PatternRecords,
  type PatternRetention,
  type PatternStoreOptions,
} from '../strategic/pattern-store';
import { fsyncDir, writeAtomicWith, writeFileAtomic } from './atomic-file';

/** Options of {@link PatternStoreFiles.open}. */
export interface PatternStoreFilesOptions {
  /** Directory of this store (one per symbol in the pipeline). Created when missing. */
  dir: string;
  /**
   * Graph options of a store created here. A store read back keeps the options it was written with
   * (its graphs depend on them). @defaultValue `{ dim: 32 }`
   */
  store?: PatternStoreOptions;
  /** Retention applied to the store, also right after loading. @defaultValue no limit */
  retention?: PatternRetention;
  /** Largest slice of graph rebuilding between yields to the event loop while loading. @defaultValue 10 */
  rebuildSliceMs?: number;
}

/** What {@link PatternStoreFiles.open} found and did, for logs and the benchmark. */
export interface PatternStoreLoadReport {
  /** Patterns held after loading (and retention). */
  patterns: number;
  /** Segment graphs read from their files. */
  graphsRead: number;
  /** Graph insertions done to rebuild what has no file (at most about one segment). */
  rebuiltInserts: number;
  /** Bytes of a torn last write that were cut off. */
  truncatedBytes: number;
  /** Reading the manifest, the symbols and the logs, and restoring the records. */
  logsMs: number;
  /** Rebuilding the graphs without a file (graph files are read meanwhile). */
  rebuildMs: number;
  /** The whole load, graph files attached. */
  loadMs: number;
}

interface Manifest {
  version: 2;
  options: Required<Omit<PatternStoreOptions, 'retention'>>;
  /** First id held: segment logs and graphs below it are dropped. */
  firstId: number;
  /** Per symbol, the newest ts retention dropped. */
  floors: Record<string, number>;
}

const MANIFEST = 'manifest.json';
const SYMBOLS = 'symbols.log';
const FRAME_ADDS = 1;
const FRAME_OUTCOMES = 2;
const FRAME_MERGED = 3;
const FRAME_HEADER_BYTES = 8;
const SEGMENT_LOG = /^seg-(\d{12})\.log$/;
const SEGMENT_GRAPH = /^seg-(\d{12})\.hnsw$/;

const segName = (start: number, ext: 'log' | 'hnsw'): string =>
  `seg-${String(start).padStart(12, '0')}.${ext}`;

/**
 * Keeps a {@link PatternStore} on disk incrementally, so that a restart reads it back in seconds
 * instead of rebuilding every HNSW graph. Emits no events.
 *
 * **Layout** of `dir`:
 * - `manifest.json`: graph options, the first id held and the retention floors; replaced atomically
 *   (temp file, fsync, rename, fsync of the directory) when retention drops segments.
 * - `symbols.log`: one JSON string per line, appended, the symbol of index i on line i.
 * - `seg-<first id, 12 digits>.log`: the segment's append-only log of frames
 *   `[u32 payload bytes][u32 CRC-32 of payload][payload]` (little-endian); a payload starts with its
 *   kind: 1 = patterns (count, first id, then columns: ts f64, outcome f64, symbol u32, regime u8,
 *   vectors f32), 2 = outcomes filled in later (`id f64, outcome f64` pairs), 3 = merged-through id
 *   (f64). Kinds 2 and 3 go to the newest segment's log. Each {@link sync} appends and fdatasyncs.
 * - `seg-<first id>.hnsw`: the HNSW graph of a segment that is full and fully merged, written once,
 *   atomically, and never changed.
 *
 * **Loading** reads the logs (a torn last frame, from a crash mid-write, fails its CRC and is cut
 * off), reads the graph files, and rebuilds only the graphs without a file (the newest segment, at most
 * `segmentCapacity` insertions) to the merged-through id of the last sync, identically seeded, so the
 * store answers exactly as it did when synced. Retention drops whole segments: the manifest moves
 * first, then the files go.
 */
export class PatternStoreFiles {
  private persistedId: number;
  private persistedSymbols: number;
  private persistedFirstId: number;
  private persistedMerged = -1;
  private readonly graphFiles: Set<number>;
  private syncing: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    readonly store: PatternStore,
    state: {
      persistedId: number;
      persistedSymbols: number;
      firstId: number;
      graphFiles: Set<number>;
    },
    /** What loading found; null for a new store. */
    readonly loadReport: PatternStoreLoadReport,
  ) {
    this.persistedId = state.persistedId;
    this.persistedSymbols = state.persistedSymbols;
    this.persistedFirstId = state.firstId;
    this.graphFiles = state.graphFiles;
  }

  /** Reads the store in `options.dir`, or creates an empty one there. */
  static async open(options: PatternStoreFilesOptions): Promise<PatternStoreFiles> {
    const started = performance.now();
    const { dir } = options;
    await mkdir(dir, { recursive: true });
    const manifest = await readManifest(dir);
    if (manifest === null && (await exists(join(dir, LEGACY_CURRENT))))
      return PatternStoreFiles.migrateLegacy(options, started);
    if (manifest === null) {
      const store = new PatternStore({
        dim: 32,
        ...options.store,
        ...(options.retention ? { retention: options.retention } : {}),
      });
      const created: Manifest = {
        version: 2,
        options: store.resolvedOptions,
        firstId: 0,
        floors: {},
      };
      // Stale files of an earlier store without a manifest would be read as this one's: remove them.
      for (const entry of await readdir(dir)) {
        if (SEGMENT_LOG.test(entry) || SEGMENT_GRAPH.test(entry) || entry === SYMBOLS)
          await rm(join(dir, entry), { force: true });
      }
      await writeFileAtomic(join(dir, MANIFEST), JSON.stringify(created));
      store.trackOutcomeChanges();
      const loadMs = performance.now() - started;
      const report = {
        patterns: 0,
        graphsRead: 0,
        rebuiltInserts: 0,
        truncatedBytes: 0,
        logsMs: loadMs,
        rebuildMs: 0,
        loadMs,
      };
      return new PatternStoreFiles(
        dir,
        store,
        { persistedId: 0, persistedSymbols: 0, firstId: 0, graphFiles: new Set() },
        report,
      );
    }
    const dim = manifest.options.dim;
    const symbols = await readSymbols(dir);
    const entries = await readdir(dir);
    // Leftovers: files of dropped segments (a crash after the manifest moved) and temp files.
    for (const entry of entries) {
      const m = SEGMENT_LOG.exec(entry) ?? SEGMENT_GRAPH.exec(entry);
      if ((m && Number(m[1]) < manifest.firstId) || entry.endsWith('.tmp'))
        await rm(join(dir, entry), { force: true });
    }
    const logs = entries
      .map((e) => SEGMENT_LOG.exec(e))
      .filter((m): m is RegExpExecArray => m !== null && Number(m[1]) >= manifest.firstId)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const graphs = new Set(
      entries
        .map((e) => SEGMENT_GRAPH.exec(e))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1])),
    );

    const adds: AddsFrame[] = [];
    const outcomes: Float64Array[] = [];
    let mergedThrough = manifest.firstId;
    let nextId = manifest.firstId;
    let truncatedBytes = 0;
    let broken = false;
    for (const start of logs) {
      const path = join(dir, segName(start, 'log'));
      if (broken || start !== nextId) {
        // A gap (a log lost or cut short before this one): nothing from here on can be placed.
        broken = true;
        truncatedBytes += (await stat(path)).size;
        await rm(path, { force: true });
        continue;
      }
      const buf = await readFile(path);
      let off = 0;
      while (off + FRAME_HEADER_BYTES <= buf.length) {
        const len = buf.readUInt32LE(off);
        const crc = buf.readUInt32LE(off + 4);
        const end = off + FRAME_HEADER_BYTES + len;
        if (end > buf.length || len === 0) break;
        const payload = buf.subarray(off + FRAME_HEADER_BYTES, end);
        if (crc32(payload) >>> 0 !== crc) break;
        const kind = payload[0];
        if (kind === FRAME_ADDS) {
          const frame = decodeAdds(payload, dim);
          if (frame.firstId !== nextId || frame.symbols.some((s) => s >= symbols.length)) break;
          adds.push(frame);
          nextId += frame.ts.length;
        } else if (kind === FRAME_OUTCOMES) {
          outcomes.push(copyOut(payload, 1, Float64Array, (payload.length - 1) / 8));
        } else if (kind === FRAME_MERGED) {
          mergedThrough = Math.max(mergedThrough, payload.readDoubleLE(1));
        } else {
          break;
        }
        off = end;
      }
      if (off < buf.length) {
        // A torn last write (or damage): keep what came before it; appends continue from there.
        truncatedBytes += buf.length - off;
        await truncate(path, off);
      }
    }

    const records = concatAdds(manifest.firstId, adds, dim);
    for (const pairs of outcomes) {
      for (let i = 0; i + 1 < pairs.length; i += 2) {
        const at = (pairs[i] as number) - manifest.firstId;
        if (at >= 0 && at < records.ts.length && Number.isNaN(records.outcomes[at]))
          records.outcomes[at] = pairs[i + 1] as number;
      }
    }
    const store = PatternStore.restore(
      { ...manifest.options, ...(options.retention ? { retention: options.retention } : {}) },
      symbols,
      records,
      manifest.floors,
    );
    mergedThrough = Math.min(mergedThrough, store.nextId);
    const logsMs = performance.now() - started;
    // Graph files are read on libuv's threads while this thread rebuilds the graphs that have none.
    const graphFiles = new Set<number>();
    const reads: Promise<{ start: number; graph: HierarchicalNSW }>[] = [];
    for (const seg of store.segmentsInfo()) {
      if (!seg.sealed || mergedThrough < seg.end || !graphs.has(seg.start)) continue;
      const graph = new HierarchicalNSW('l2', dim);
      reads.push(
        graph
          .readIndex(join(dir, segName(seg.start, 'hnsw')))
          .then(() => ({ start: seg.start, graph })),
      );
      graphFiles.add(seg.start);
    }
    const readsDone = Promise.all(reads);
    readsDone.catch(() => undefined); // awaited below; not unhandled while the rebuild runs
    await store.rebuildGraphs(mergedThrough, options.rebuildSliceMs ?? 10, graphFiles);
    const rebuiltInserts = store
      .segmentsInfo()
      .reduce((sum, s) => sum + (graphFiles.has(s.start) ? 0 : s.merged), 0);
    const rebuildMs = performance.now() - started - logsMs;
    for (const { start, graph } of await readsDone) store.attachGraph(start, graph);
    store.trackOutcomeChanges();
    const files = new PatternStoreFiles(
      dir,
      store,
      {
        persistedId: store.nextId,
        persistedSymbols: symbols.length,
        firstId: manifest.firstId,
        graphFiles,
      },
      {
        patterns: store.size,
        graphsRead: reads.length,
        rebuiltInserts,
        truncatedBytes,
        logsMs,
        rebuildMs,
        loadMs: 0,
      },
    );
    files.persistedMerged = mergedThrough;
    // Retention may be tighter than when the store was written, or a drop may not have reached disk.
    if (store.enforceRetention() > 0) await files.sync();
    files.loadReport.patterns = store.size;
    files.loadReport.loadMs = performance.now() - started;
    return files;
  }

  /**
   * Reads a store saved in the version-1 format (whole typed-array files per generation), writes it in
   * this format, then removes the old files. It keeps its segment size (262,144 by default then), so
   * its restarts rebuild up to that many insertions until retention has replaced its segments.
   */
  private static async migrateLegacy(
    options: PatternStoreFilesOptions,
    started: number,
  ): Promise<PatternStoreFiles> {
    const { dir } = options;
    const gen = (await readFile(join(dir, LEGACY_CURRENT), 'utf8')).trim();
    const genDir = join(dir, gen);
    const meta = JSON.parse(await readFile(join(genDir, 'meta.json'), 'utf8')) as LegacyMeta;
    if (meta.version !== 1)
      throw new StateStoreError(
        `${genDir}: unsupported pattern store version ${String(meta.version)}`,
      );
    const n = meta.count;
    const read = async <T extends Float64Array | Float32Array | Uint32Array | Uint8Array>(
      file: string,
      ctor: { new (length: number): T; BYTES_PER_ELEMENT: number },
      length: number,
    ): Promise<T> => {
      const buf = await readFile(join(genDir, file));
      if (buf.length < length * ctor.BYTES_PER_ELEMENT)
        throw new StateStoreError(`${join(genDir, file)} is truncated`);
      return copyOut(buf, 0, ctor, length);
    };
    const records: PatternRecords = {
      firstId: 0,
      vectors: await read('vectors.f32', Float32Array, n * meta.dim),
      ts: await read('ts.f64', Float64Array, n),
      outcomes: await read('outcome.f64', Float64Array, n),
      symbols: await read('symbol.u32', Uint32Array, n),
      regimes: await read('regime.u8', Uint8Array, n),
    };
    const { version: _v, count: _c, symbols, segments, ...graphOptions } = meta;
    const store = PatternStore.restore(
      { ...graphOptions, ...(options.retention ? { retention: options.retention } : {}) },
      symbols,
      records,
    );
    let mergedThrough = n;
    for (const seg of segments) {
      if (seg.graphFile !== null && seg.merged === meta.segmentCapacity) {
        const graph = new HierarchicalNSW('l2', meta.dim);
        await graph.readIndex(join(genDir, seg.graphFile));
        store.attachGraph(seg.start, graph);
      } else if (seg.merged < seg.end - seg.start || seg.end - seg.start < meta.segmentCapacity) {
        mergedThrough = Math.min(mergedThrough, seg.start + seg.merged);
      }
    }
    await store.rebuildGraphs(mergedThrough, options.rebuildSliceMs ?? 10);
    store.trackOutcomeChanges();
    for (const entry of await readdir(dir)) {
      if (SEGMENT_LOG.test(entry) || SEGMENT_GRAPH.test(entry) || entry === SYMBOLS)
        await rm(join(dir, entry), { force: true });
    }
    const files = new PatternStoreFiles(
      dir,
      store,
      { persistedId: 0, persistedSymbols: 0, firstId: 0, graphFiles: new Set() },
      {
        patterns: store.size,
        graphsRead: segments.filter((s) => s.graphFile !== null).length,
        rebuiltInserts: 0,
        truncatedBytes: 0,
        logsMs: 0,
        rebuildMs: 0,
        loadMs: 0,
      },
    );
    // Logs and graphs first, the manifest last: until it exists, the old generation is what counts.
    await files.sync();
    const manifest: Manifest = {
      version: 2,
      options: store.resolvedOptions,
      firstId: 0,
      floors: {},
    };
    await writeFileAtomic(join(dir, MANIFEST), JSON.stringify(manifest));
    await rm(join(dir, LEGACY_CURRENT), { force: true });
    for (const entry of await readdir(dir))
      if (entry.startsWith('gen-') || entry.startsWith(`${LEGACY_CURRENT}.`))
        await rm(join(dir, entry), { recursive: true, force: true });
    await fsyncDir(dir);
    // Retention may drop segments at once: a later sync writes that (the manifest exists now).
    if (store.enforceRetention() > 0) await files.sync();
    files.loadReport.patterns = store.size;
    files.loadReport.loadMs = performance.now() - started;
    return files;
  }

  /**
   * Appends what changed since the last sync (new patterns, filled outcomes, merge progress) to the
   * segment logs and fdatasyncs them, writes the graph file of every segment that became full and
   * fully merged, and removes the files of segments retention dropped. Reflects the store as it is
   * when called; syncs are serialised.
   */
  sync(): Promise<void> {
    const run = this.syncing.then(() => this.syncNow());
    this.syncing = run.catch(() => undefined);
    return run;
  }

  private async syncNow(): Promise<void> {
    const store = this.store;
    // Everything is read synchronously first: the store can change while we await.
    const cap = store.resolvedOptions.segmentCapacity;
    const firstId = store.firstId;
    const nextId = store.nextId;
    const from = Math.max(this.persistedId, firstId);
    const records = from < nextId ? store.records(from, nextId) : null;
    const outcomePairs = store.takeOutcomeChanges();
    const mergedThrough = store.mergedThrough;
    const symbols = store.symbolNames();
    const floors = store.retentionFloors();
    const segments = store.segmentsInfo();
    const newestStart = nextId > firstId ? nextId - 1 - ((nextId - 1) % cap) : -1;
    const changed =
      records !== null ||
      outcomePairs.length > 0 ||
      mergedThrough !== this.persistedMerged ||
      firstId > this.persistedFirstId;
    if (
      !changed &&
      segments.every((s) => !s.sealed || s.merged < cap || this.graphFiles.has(s.start))
    )
      return;

    try {
      if (symbols.length > this.persistedSymbols) {
        const lines = symbols
          .slice(this.persistedSymbols)
          .map((s) => `${JSON.stringify(s)}\n`)
          .join('');
        await appendDurably(
          join(this.dir, SYMBOLS),
          Buffer.from(lines, 'utf8'),
          this.persistedSymbols === 0,
        );
        this.persistedSymbols = symbols.length;
      }
      // Older segments first, so a log is durable before any later one is written.
      const writes = new Map<number, Buffer[]>();
      if (records !== null) {
        for (let a = 0; a < records.ts.length;) {
          const id = records.firstId + a;
          const segStart = id - (id % cap);
          const b = Math.min(records.ts.length, segStart + cap - records.firstId);
          writes.set(segStart, [frame(encodeAdds(records, a, b))]);
          a = b;
        }
      }
      if (
        newestStart >= 0 &&
        (records !== null || outcomePairs.length > 0 || mergedThrough !== this.persistedMerged)
      ) {
        const tail = writes.get(newestStart) ?? [];
        const kept: number[] = [];
        for (let i = 0; i + 1 < outcomePairs.length; i += 2) {
          if ((outcomePairs[i] as number) >= firstId)
            kept.push(outcomePairs[i] as number, outcomePairs[i + 1] as number);
        }
        if (kept.length > 0) tail.push(frame(encodeOutcomes(kept)));
        tail.push(frame(encodeMerged(mergedThrough)));
        writes.set(newestStart, tail);
      }
      for (const start of [...writes.keys()].sort((a, b) => a - b)) {
        await appendDurably(
          join(this.dir, segName(start, 'log')),
          Buffer.concat(writes.get(start) as Buffer[]),
          start >= this.persistedId,
        );
      }
      this.persistedId = nextId;
      this.persistedMerged = mergedThrough;

      for (const seg of segments) {
        if (
          !seg.sealed ||
          seg.merged < cap ||
          seg.graph === null ||
          this.graphFiles.has(seg.start) ||
          seg.start < firstId
        )
          continue;
        const graph = seg.graph;
        await writeAtomicWith(join(this.dir, segName(seg.start, 'hnsw')), (tmp) =>
          graph.writeIndex(tmp),
        );
        this.graphFiles.add(seg.start);
      }

      if (firstId > this.persistedFirstId) {
        const manifest: Manifest = { version: 2, options: store.resolvedOptions, firstId, floors };
        await writeFileAtomic(join(this.dir, MANIFEST), JSON.stringify(manifest));
        for (const entry of await readdir(this.dir)) {
          const m = SEGMENT_LOG.exec(entry) ?? SEGMENT_GRAPH.exec(entry);
          if (m && Number(m[1]) < firstId) await rm(join(this.dir, entry), { force: true });
        }
        for (const start of [...this.graphFiles])
          if (start < firstId) this.graphFiles.delete(start);
        await fsyncDir(this.dir);
        this.persistedFirstId = firstId;
      }
    } catch (err) {
      // Outcome changes taken above were not written: give them back so the next sync retries them.
      for (let i = 0; i + 1 < outcomePairs.length; i += 2) {
        const id = outcomePairs[i] as number;
        if (id >= store.firstId) store.returnOutcomeChange(id, outcomePairs[i + 1] as number);
      }
      throw new StateStoreError(`pattern store ${this.dir}: sync failed`, { cause: err });
    }
  }
}

/** The format written before this class (version 1): a generation directory named by `CURRENT`. */
interface LegacyMeta {
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

const LEGACY_CURRENT = 'CURRENT';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

interface AddsFrame {
  firstId: number;
  ts: Float64Array;
  outcomes: Float64Array;
  symbols: Uint32Array;
  regimes: Uint8Array;
  vectors: Float32Array;
}

async function appendDurably(path: string, data: Buffer, maybeNew: boolean): Promise<void> {
  const fh = await open(path, 'a');
  try {
    await fh.write(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  if (maybeNew) await fsyncDir(dirname(path));
}

function frame(payload: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE(crc32(payload) >>> 0, 4);
  return Buffer.concat([header, payload]);
}

function encodeAdds(r: PatternRecords, a: number, b: number): Buffer {
  const n = b - a;
  const dim = r.vectors.length / r.ts.length;
  const parts = [
    Buffer.alloc(1 + 4 + 8),
    viewBytes(r.ts.subarray(a, b)),
    viewBytes(r.outcomes.subarray(a, b)),
    viewBytes(r.symbols.subarray(a, b)),
    viewBytes(r.regimes.subarray(a, b)),
    viewBytes(r.vectors.subarray(a * dim, b * dim)),
  ];
  const head = parts[0] as Buffer;
  head.writeUInt8(FRAME_ADDS, 0);
  head.writeUInt32LE(n, 1);
  head.writeDoubleLE(r.firstId + a, 5);
  return Buffer.concat(parts);
}

function decodeAdds(payload: Buffer, dim: number): AddsFrame {
  const n = payload.readUInt32LE(1);
  const firstId = payload.readDoubleLE(5);
  let off = 13;
  const take = <T extends Float64Array | Float32Array | Uint32Array | Uint8Array>(
    ctor: { new (length: number): T; BYTES_PER_ELEMENT: number },
    length: number,
  ): T => {
    const out = copyOut(payload, off, ctor, length);
    off += length * ctor.BYTES_PER_ELEMENT;
    return out;
  };
  if (payload.length !== 13 + n * (8 + 8 + 4 + 1 + 4 * dim))
    throw new StateStoreError('pattern log frame has the wrong length');
  return {
    firstId,
    ts: take(Float64Array, n),
    outcomes: take(Float64Array, n),
    symbols: take(Uint32Array, n),
    regimes: take(Uint8Array, n),
    vectors: take(Float32Array, n * dim),
  };
}

function encodeOutcomes(pairs: number[]): Buffer {
  const body = Float64Array.from(pairs);
  return Buffer.concat([Buffer.from([FRAME_OUTCOMES]), viewBytes(body)]);
}

function encodeMerged(mergedThrough: number): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt8(FRAME_MERGED, 0);
  b.writeDoubleLE(mergedThrough, 1);
  return b;
}

function concatAdds(firstId: number, frames: AddsFrame[], dim: number): PatternRecords {
  const n = frames.reduce((sum, f) => sum + f.ts.length, 0);
  const out: PatternRecords = {
    firstId,
    vectors: new Float32Array(n * dim),
    ts: new Float64Array(n),
    outcomes: new Float64Array(n),
    symbols: new Uint32Array(n),
    regimes: new Uint8Array(n),
  };
  let at = 0;
  for (const f of frames) {
    out.vectors.set(f.vectors, at * dim);
    out.ts.set(f.ts, at);
    out.outcomes.set(f.outcomes, at);
    out.symbols.set(f.symbols, at);
    out.regimes.set(f.regimes, at);
    at += f.ts.length;
  }
  return out;
}

function viewBytes(arr: Float64Array | Float32Array | Uint32Array | Uint8Array): Buffer {
  return Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
}

/** Copies `length` elements at byte `offset` of `buf` into a new (aligned) typed array. */
function copyOut<T extends Float64Array | Float32Array | Uint32Array | Uint8Array>(
  buf: Buffer,
  offset: number,
  ctor: { new (length: number): T; BYTES_PER_ELEMENT: number },
  length: number,
): T {
  const out = new ctor(length);
  new Uint8Array(out.buffer).set(buf.subarray(offset, offset + length * ctor.BYTES_PER_ELEMENT));
  return out;
}

async function readManifest(dir: string): Promise<Manifest | null> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const manifest = JSON.parse(text) as Manifest;
  if (manifest.version !== 2) {
    throw new StateStoreError(
      `${join(dir, MANIFEST)}: unsupported pattern store version ${String(manifest.version)}`,
    );
  }
  return manifest;
}

async function readSymbols(dir: string): Promise<string[]> {
  let buf: Buffer;
  try {
    buf = await readFile(join(dir, SYMBOLS));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: string[] = [];
  let good = 0;
  // Only complete lines count; a torn last line (no newline yet) is cut off.
  for (let nl = buf.indexOf(0x0a, good); nl >= 0; nl = buf.indexOf(0x0a, good)) {
    let symbol: unknown;
    try {
      symbol = JSON.parse(buf.toString('utf8', good, nl));
    } catch {
      break;
    }
    if (typeof symbol !== 'string') break;
    out.push(symbol);
    good = nl + 1;
  }
  if (good < buf.length) await truncate(join(dir, SYMBOLS), good);
  return out;
}
