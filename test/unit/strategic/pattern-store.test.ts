import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatternStore, REGIME_NAMES } from '../../../src/strategic';
import { SeededRandom } from '../../../src/util/random';

const DIM = 32;

/** Clustered vectors (like real windows: many near-duplicates) with one symbol per 1000 vectors. */
function dataset(n: number, seed: number): { vectors: Float32Array; ts: Float64Array; symbols: string[] } {
  const rng = new SeededRandom(seed);
  const centres = Array.from({ length: 64 }, () => Array.from({ length: DIM }, () => rng.normal() * 2));
  const vectors = new Float32Array(n * DIM);
  const walk = new Float64Array(DIM);
  for (let i = 0; i < n; i++) {
    if (i % 50 === 0) walk.set(rng.pick(centres));
    for (let d = 0; d < DIM; d++) {
      walk[d] = (walk[d] as number) + 0.3 * rng.normal();
      vectors[i * DIM + d] = walk[d] as number;
    }
  }
  const ts = Float64Array.from({ length: n }, (_, i) => 1_700_000_000_000 + (i % 1000) * 1_800_000);
  const symbols = Array.from({ length: n }, (_, i) => `S${Math.floor(i / 1000)}`);
  return { vectors, ts, symbols };
}

describe('PatternStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pattern-store-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reaches recall@10 of at least 0.95 against brute force at 20k vectors', async () => {
    const n = 20_000;
    const data = dataset(n, 1);
    const store = new PatternStore({ dim: DIM, segmentCapacity: 8192 });
    store.addBatch({ ...data, regimes: new Uint8Array(n), outcomes: new Float64Array(n).fill(0.001) });
    await store.mergeInBackground();
    expect(store.pendingMerge).toBe(0);
    expect(store.segmentCount).toBe(3);
    const rng = new SeededRandom(2);
    let hits = 0;
    const queries = 300;
    for (let q = 0; q < queries; q++) {
      const base = rng.int(0, n - 1) * DIM;
      const query = Float32Array.from(data.vectors.subarray(base, base + DIM), (x) => x + 0.2 * rng.normal());
      const exact = new Set(store.exactSearch(query, 10));
      for (const hit of store.search(query, 10)) if (exact.has(hit.id)) hits++;
    }
    const recall = hits / (queries * 10);
    console.log(`recall@10 at 20k: ${recall.toFixed(4)}`);
    expect(recall).toBeGreaterThanOrEqual(0.95);
  }, 60_000); // 20k graph insertions: seconds when the 2 cores are shared, beyond jest's 5 s default

  it('grows past its initial capacity without a restart and finds every vector', () => {
    const store = new PatternStore({ dim: DIM, initialCapacity: 16, segmentCapacity: 300 });
    const data = dataset(1000, 3);
    for (let i = 0; i < 1000; i++) {
      store.add(data.vectors.subarray(i * DIM, (i + 1) * DIM), { symbol: 'A', ts: i, regime: 'BULL' }, 0);
      store.mergeStep(1);
    }
    expect(store.size).toBe(1000);
    expect(store.pendingMerge).toBe(0);
    for (let i = 0; i < 1000; i += 37) {
      const [nearest] = store.search(data.vectors.subarray(i * DIM, (i + 1) * DIM), 1);
      expect(nearest?.distance).toBe(0);
      expect(nearest?.ts).toBe(i);
    }
  });

  it('is idempotent on (symbol, ts) and fills an outcome only once', () => {
    const store = new PatternStore({ dim: DIM });
    const v = new Float32Array(DIM).fill(1);
    const id = store.add(v, { symbol: 'A', ts: 10, regime: 'BEAR' });
    expect(store.add(new Float32Array(DIM), { symbol: 'A', ts: 10, regime: 'BULL' })).toBe(id);
    expect(store.size).toBe(1);
    expect(store.setOutcome('A', 10, 0.5)).toBe(true);
    expect(store.setOutcome('A', 10, -0.5)).toBe(false);
    expect(store.get(id)).toEqual({ symbol: 'A', ts: 10, regime: 'BEAR', outcome: 0.5 });
    expect(store.add(v, { symbol: 'B', ts: 10, regime: 'BEAR' })).not.toBe(id);
  });

  it('returns only neighbours whose outcome is known and whose ts is not after the cut-off', () => {
    const store = new PatternStore({ dim: DIM, segmentCapacity: 64 });
    const v = new Float32Array(DIM);
    for (let i = 0; i < 200; i++) {
      v.fill(i / 200);
      store.add(v, { symbol: 'A', ts: i, regime: REGIME_NAMES[i % 4]! }, i % 3 === 0 ? Number.NaN : i);
    }
    store.mergeStep(150); // part in graphs, part in the exact fresh tail
    v.fill(150 / 200);
    const hits = store.search(v, 10, 120);
    expect(hits).toHaveLength(10);
    for (const h of hits) {
      expect(h.ts).toBeLessThanOrEqual(120);
      expect(h.ts % 3).not.toBe(0);
      expect(h.outcome).toBe(h.ts);
    }
    expect(hits[0]?.ts).toBe(119);
  });

  it('drops whole old segments by count, and ignores a re-add of a dropped pattern', () => {
    const store = new PatternStore({ dim: DIM, segmentCapacity: 100, retention: { maxCount: 350 } });
    const v = new Float32Array(DIM);
    const sizes: number[] = [];
    for (let i = 0; i < 2000; i++) {
      v.fill(i / 2000);
      store.add(v, { symbol: 'A', ts: i * 1000, regime: 'BULL' }, 0.01);
      store.mergeStep(2);
      sizes.push(store.size);
    }
    // Growth stops: never more than maxCount, and at least maxCount − segmentCapacity once full.
    expect(Math.max(...sizes)).toBe(350);
    expect(Math.min(...sizes.slice(400))).toBeGreaterThan(250);
    expect(store.firstId % 100).toBe(0);
    expect(store.firstId).toBeGreaterThan(1500);
    expect(store.idOf('A', 0)).toBe(-1);
    // A replayed old bar does not come back (the result would differ from the original run's).
    expect(store.add(v, { symbol: 'A', ts: 1000, regime: 'BULL' })).toBe(-1);
    expect(store.setOutcome('A', 1000, 1)).toBe(false);
    expect(store.search(v, 5).every((h) => h.id >= store.firstId)).toBe(true);
  });

  it('drops whole old segments by bar time, never by the clock', () => {
    const hour = 3_600_000;
    const make = (): PatternStore => new PatternStore({ dim: DIM, segmentCapacity: 50, retention: { maxAgeMs: 100 * hour } });
    const a = make();
    const b = make();
    const v = new Float32Array(DIM);
    const sizes: number[] = [];
    for (let i = 0; i < 1000; i++) {
      v.fill(Math.sin(i));
      for (const s of [a, b]) s.add(v, { symbol: 'A', ts: i * hour, regime: 'BEAR' }, 0);
      sizes.push(a.size);
    }
    expect(Math.max(...sizes.slice(200))).toBeLessThanOrEqual(150);
    const oldest = a.get(a.firstId).ts;
    expect(999 * hour - oldest).toBeLessThanOrEqual(150 * hour);
    expect(a.firstId).toBe(b.firstId); // same bars, same drops
  });
});
