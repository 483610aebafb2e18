import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatternStoreFiles } from '../../../src/state/pattern-store-files';
import { PatternStore } from '../../../src/strategic';
import { SeededRandom } from '../../../src/util/random';

const DIM = 13;
const HOUR = 3_600_000;

/** A random walk of 13-dim vectors (like consecutive windows), deterministic in `seed`. */
function walk(seed: number): () => Float32Array {
  const rng = new SeededRandom(seed);
  const v = new Float32Array(DIM);
  return () => {
    for (let d = 0; d < DIM; d++) v[d] = (v[d] as number) * 0.9 + rng.normal();
    return v;
  };
}

/**
 * What the strategic analyzer does per bar: set the outcome of the pattern 6 bars back, add this
 * bar's pattern, merge 2. Both stores given get exactly the same calls.
 */
function feed(stores: PatternStore[], from: number, to: number, next: () => Float32Array): void {
  for (let i = from; i < to; i++) {
    const v = next();
    for (const s of stores) {
      if (i >= 6) s.setOutcome('AAA', (i - 6) * HOUR, Math.sin(i) / 100);
      s.add(v, { symbol: 'AAA', ts: i * HOUR, regime: i % 3 === 0 ? 'BULL' : 'SIDEWAYS' });
      s.mergeStep(2);
    }
  }
}

function answers(store: PatternStore, seed: number, maxTs = Number.POSITIVE_INFINITY): string {
  const rng = new SeededRandom(seed);
  const out: unknown[] = [];
  for (let q = 0; q < 60; q++) {
    const query = Float32Array.from({ length: DIM }, () => rng.normal() * 2);
    out.push(store.search(query, 10, maxTs));
  }
  return JSON.stringify(out);
}

describe('PatternStoreFiles', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pattern-files-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reloads a store that answers every kNN query exactly as before, and after further identical work', async () => {
    // Sparse graphs (m 3, efConstruction 8) answer approximately, so their answers show any
    // difference in graph structure: a rebuilt graph must be the very graph the original run built.
    const options = {
      dim: DIM,
      segmentCapacity: 512,
      initialCapacity: 64,
      m: 3,
      efConstruction: 8,
    };
    const files = await PatternStoreFiles.open({ dir, store: options });
    const twin = (await PatternStoreFiles.open({ dir: join(dir, 'twin'), store: options })).store;
    const next = walk(1);
    for (let bar = 0; bar < 1500; bar += 3) {
      feed([files.store, twin], bar, bar + 3, next);
      await files.sync(); // as the analytics stage does every 3 bars
    }
    const before = answers(files.store, 7);
    const reloaded = await PatternStoreFiles.open({ dir });
    // Sealed segments come back from their graph files; only the open one is rebuilt.
    expect(reloaded.loadReport.graphsRead).toBe(2);
    expect(reloaded.loadReport.rebuiltInserts).toBe(1500 - 1024);
    expect(reloaded.store.size).toBe(1500);
    expect(reloaded.store.pendingMerge).toBe(files.store.pendingMerge);
    expect(answers(reloaded.store, 7)).toBe(before);
    expect(answers(reloaded.store, 8, 1000 * HOUR)).toBe(answers(files.store, 8, 1000 * HOUR));
    // Not a trivially equal comparison: the answers hold neighbours with known outcomes.
    expect(before).toContain('"outcome"');
    expect(new Set((JSON.parse(before) as { id: number }[][]).map((a) => a[0]?.id)).size).toBeGreaterThan(
      10,
    );

    // The same further calls give the same answers as the store that never restarted.
    const cont = walk(2);
    const cont2 = walk(2);
    feed([twin], 1500, 2300, cont);
    feed([reloaded.store], 1500, 2300, cont2);
    expect(answers(reloaded.store, 9)).toBe(answers(twin, 9));
  });

  it('writes the graph file of a sealed segment once and never rewrites it', async () => {
    const files = await PatternStoreFiles.open({ dir, store: { dim: DIM, segmentCapacity: 128 } });
    const next = walk(3);
    feed([files.store], 0, 300, next);
    await files.sync();
    const graph = join(dir, 'seg-000000000000.hnsw');
    const first = statSync(graph);
    feed([files.store], 300, 600, next);
    await files.sync();
    const again = statSync(graph);
    expect(again.ino).toBe(first.ino);
    expect(again.mtimeMs).toBe(first.mtimeMs);
    expect(readdirSync(dir).filter((f) => f.endsWith('.hnsw'))).toHaveLength(4);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toHaveLength(0);
  });

  it('cuts off a torn last write and keeps everything synced before it', async () => {
    const files = await PatternStoreFiles.open({ dir, store: { dim: DIM, segmentCapacity: 128 } });
    const next = walk(4);
    feed([files.store], 0, 200, next);
    await files.sync();
    const synced = answers(files.store, 5);
    feed([files.store], 200, 230, next);
    await files.sync();
    // The last sync was torn: only part of its bytes reached the disk.
    const log = join(dir, 'seg-000000000128.log');
    const size = statSync(log).size;
    const lastWrite = 30 * (8 + 8 + 4 + 1 + 4 * DIM) + 13 + 8 + 8 + 8 * 12 + 1 + 8 + 9;
    truncateSync(log, size - lastWrite + 40);
    appendFileSync(log, Buffer.from('garbage'));

    const reloaded = await PatternStoreFiles.open({ dir });
    expect(reloaded.loadReport.truncatedBytes).toBeGreaterThan(0);
    expect(reloaded.store.size).toBe(200);
    expect(answers(reloaded.store, 5)).toBe(synced);
    // Appends continue cleanly after the cut.
    feed([reloaded.store], 200, 260, walk(6));
    await reloaded.sync();
    const third = await PatternStoreFiles.open({ dir });
    expect(third.loadReport.truncatedBytes).toBe(0);
    expect(third.store.size).toBe(260);
    expect(answers(third.store, 5)).toBe(answers(reloaded.store, 5));
  });

  it('keeps disk and memory bounded with retention, across restarts', async () => {
    const retention = { maxCount: 400, maxAgeMs: 0 };
    const files = await PatternStoreFiles.open({
      dir,
      store: { dim: DIM, segmentCapacity: 100 },
      retention,
    });
    const next = walk(5);
    const diskFiles: number[] = [];
    for (let bar = 0; bar < 3000; bar += 30) {
      feed([files.store], bar, bar + 30, next);
      await files.sync();
      diskFiles.push(readdirSync(dir).length);
      expect(files.store.size).toBeLessThanOrEqual(400);
    }
    // Growth stops: at most 4 segments (a log and a graph each), the manifest and the symbols.
    expect(Math.max(...diskFiles.slice(20))).toBeLessThanOrEqual(10);
    expect(files.store.firstId).toBe(2600);
    const reloaded = await PatternStoreFiles.open({ dir, retention });
    expect(reloaded.store.firstId).toBe(2600);
    expect(reloaded.store.size).toBe(files.store.size);
    expect(answers(reloaded.store, 3)).toBe(answers(files.store, 3));
    // The floor survives the restart: a replayed bar whose pattern was dropped stays out.
    expect(
      reloaded.store.add(new Float32Array(DIM), { symbol: 'AAA', ts: 100 * HOUR, regime: 'BULL' }),
    ).toBe(-1);

    // A tighter bound on restart is applied at once, and its files go.
    const tighter = await PatternStoreFiles.open({ dir, retention: { maxCount: 150 } });
    expect(tighter.store.size).toBeLessThanOrEqual(150);
    expect(readdirSync(dir).filter((f) => f.endsWith('.log'))).toHaveLength(2);
  });

  it('reads a store saved in the former whole-file format, rewrites it in segments, and answers the same', async () => {
    const options = {
      dim: DIM,
      segmentCapacity: 256,
      initialCapacity: 64,
      m: 3,
      efConstruction: 8,
    };
    const old = new PatternStore(options);
    feed([old], 0, 700, walk(8));
    // What the former PatternStore.save wrote: a generation directory named by CURRENT.
    const gen = join(dir, 'gen-legacy');
    mkdirSync(gen, { recursive: true });
    const r = old.records(0, old.nextId);
    const bytes = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    writeFileSync(join(gen, 'vectors.f32'), bytes(r.vectors));
    writeFileSync(join(gen, 'ts.f64'), bytes(r.ts));
    writeFileSync(join(gen, 'outcome.f64'), bytes(r.outcomes));
    writeFileSync(join(gen, 'symbol.u32'), bytes(r.symbols));
    writeFileSync(join(gen, 'regime.u8'), bytes(r.regimes));
    const segments = [];
    for (const seg of old.segmentsInfo()) {
      let graphFile: string | null = null;
      if (seg.sealed && seg.merged === 256 && seg.graph) {
        graphFile = `seg-${seg.start}.hnsw`;
        await seg.graph.writeIndex(join(gen, graphFile));
      }
      segments.push({ start: seg.start, end: seg.end, merged: seg.merged, graphFile });
    }
    writeFileSync(
      join(gen, 'meta.json'),
      JSON.stringify({
        version: 1,
        ...old.resolvedOptions,
        count: old.size,
        symbols: old.symbolNames(),
        segments,
      }),
    );
    writeFileSync(join(dir, 'CURRENT'), 'gen-legacy');

    const migrated = await PatternStoreFiles.open({ dir });
    expect(migrated.store.size).toBe(700);
    expect(answers(migrated.store, 11)).toBe(answers(old, 11));
    expect(existsSync(join(dir, 'CURRENT'))).toBe(false);
    expect(existsSync(gen)).toBe(false);
    const again = await PatternStoreFiles.open({ dir });
    expect(again.loadReport.graphsRead).toBe(2);
    expect(answers(again.store, 11)).toBe(answers(old, 11));
    feed([old], 700, 900, walk(9));
    feed([again.store], 700, 900, walk(9));
    expect(answers(again.store, 12)).toBe(answers(old, 12));
  });
});
