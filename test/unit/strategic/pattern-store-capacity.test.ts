import { EMBEDDING_DIM, PatternStore } from '../../../src/strategic';

/** The vector arrays' capacity, in patterns (private: read for this test only). */
const capacityOf = (store: PatternStore): number => (store as unknown as { capacity: number }).capacity;

describe('PatternStore capacity under retention', () => {
  it('stays bounded by the patterns held when batches keep coming after segments were dropped', () => {
    const store = new PatternStore({ dim: EMBEDDING_DIM, initialCapacity: 16, segmentCapacity: 64, retention: { maxCount: 256, maxAgeMs: 0 } });
    const batch = 32;
    for (let round = 0; round < 200; round++) {
      const vectors = new Float32Array(batch * EMBEDDING_DIM).map((_, i) => Math.sin(round * 7 + i));
      const ts = Array.from({ length: batch }, (_, i) => (round * batch + i) * 1_800_000);
      store.addBatch({ vectors, symbols: 'BTCUSDT', ts, regimes: ts.map(() => 'BULL' as const) });
    }
    // 6,400 patterns added, at most 256 held: the arrays must not have grown with the ids.
    expect(store.size).toBeLessThanOrEqual(256);
    expect(capacityOf(store)).toBeLessThanOrEqual(512);
  });
});
