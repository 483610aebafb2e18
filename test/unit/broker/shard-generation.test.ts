import {
  consumedBy,
  contextShards,
  layoutMismatch,
  parseLayout,
  readLayout,
  sourceGeneration,
  steadyLayout,
  writeLayout,
  type ShardLayout,
} from '../../../src/broker/shard-generation';
import { bindings, EXCHANGE_BARS, EXCHANGE_INTERNAL, EXCHANGE_TACTICAL_RING, ringExchange, shardQueue } from '../../../src/broker/topology';

const growing = (phase: 'tactical' | 'strategic'): ShardLayout => ({ current: { generation: 0, shards: 2 }, next: { generation: 1, shards: 3 }, phase });

describe('shard generations', () => {
  it('keeps generation 0 on the names a fresh pipeline has always used', () => {
    expect(shardQueue('tactical', 1, 0)).toBe('tactical_processing.1');
    expect(shardQueue('tactical', 1, 2)).toBe('tactical_processing.g2.1');
    expect(shardQueue('strategic', 0, 1)).toBe('strategic_processing.g1.0');
    expect(shardQueue('context', 2, 5)).toBe('tactical_context.2');
    expect(ringExchange('tactical', 0)).toBe(EXCHANGE_TACTICAL_RING);
    expect(ringExchange('strategic', 3)).toBe('pipeline.strategic.ring.g3');
    expect(bindings(2, steadyLayout(2))).toEqual(bindings(2));
  });

  it('binds only the source generation of each role to the exchanges, phase by phase', () => {
    const fromSources = (layout: ShardLayout) =>
      bindings(layout.current.shards, layout)
        .filter((b) => (b.source === EXCHANGE_BARS && b.pattern === 'bars.5m.#') || (b.source === EXCHANGE_INTERNAL && (b.pattern === 'feedback.#' || (b.pattern === 'bars.30m.#' && b.destination !== EXCHANGE_BARS))))
        .map((b) => `${b.source} ${b.pattern} -> ${b.destination}`)
        .sort();
    expect(fromSources(growing('tactical'))).toEqual([
      'market.bars bars.5m.# -> pipeline.tactical.ring.g1',
      'pipeline.internal bars.30m.# -> pipeline.strategic.ring',
      'pipeline.internal feedback.# -> pipeline.strategic.ring',
    ]);
    expect(fromSources(growing('strategic'))).toEqual([
      'market.bars bars.5m.# -> pipeline.tactical.ring.g1',
      'pipeline.internal bars.30m.# -> pipeline.strategic.ring.g1',
      'pipeline.internal feedback.# -> pipeline.strategic.ring.g1',
    ]);
    // One shard has no ring: the queue itself is bound.
    const toOne: ShardLayout = { current: { generation: 1, shards: 3 }, next: { generation: 2, shards: 1 }, phase: 'strategic' };
    expect(fromSources(toOne)).toEqual([
      'market.bars bars.5m.# -> tactical_processing.g2.0',
      'pipeline.internal bars.30m.# -> strategic_processing.g2.0',
      'pipeline.internal feedback.# -> strategic_processing.g2.0',
    ]);
    // Both generations keep their ring-to-queue bindings until the resize deletes the old one.
    const b = bindings(2, growing('tactical'));
    expect(b.filter((x) => x.source === 'pipeline.tactical.ring').map((x) => x.destination)).toEqual(['tactical_processing.0', 'tactical_processing.1']);
    expect(b.filter((x) => x.source === 'pipeline.tactical.ring.g1').map((x) => x.destination)).toEqual(['tactical_processing.g1.0', 'tactical_processing.g1.1', 'tactical_processing.g1.2']);
  });

  it('says which generation each role consumes: old tactical first, then old strategic with context consumers only', () => {
    expect(sourceGeneration(steadyLayout(2), 'tactical')).toEqual({ generation: 0, shards: 2 });
    expect(consumedBy(growing('tactical'), 'tactical')).toEqual({ generation: { generation: 0, shards: 2 }, workers: 2 });
    expect(consumedBy(growing('tactical'), 'strategic')).toEqual({ generation: { generation: 0, shards: 2 }, workers: 2 });
    expect(consumedBy(growing('strategic'), 'tactical')).toEqual({ generation: null, workers: 3 });
    expect(consumedBy(growing('strategic'), 'strategic')).toEqual({ generation: { generation: 0, shards: 2 }, workers: 2 });
    expect(contextShards(growing('tactical'))).toBe(3);
  });

  it('refuses a PIPELINE_SHARDS that contradicts the recorded layout', () => {
    expect(layoutMismatch(steadyLayout(3), 3)).toBeNull();
    expect(layoutMismatch(steadyLayout(3), 2)).toMatch(/PIPELINE_SHARDS=2: the pipeline runs 3 shards/);
    const shrinking: ShardLayout = { current: { generation: 1, shards: 3 }, next: { generation: 2, shards: 2 }, phase: 'tactical' };
    expect(layoutMismatch(shrinking, 2)).toBeNull();
    expect(layoutMismatch(shrinking, 3)).toBeNull(); // what the supervisor gives the old generation's workers
    expect(layoutMismatch(shrinking, 4)).toMatch(/a resize to 2 shards is under way/);
  });

  it('stores the layout under the prefix and rejects a corrupt record', async () => {
    const store = new Map<string, string>();
    const redis = { get: (k: string) => Promise.resolve(store.get(k) ?? null), set: (k: string, v: string) => Promise.resolve(void store.set(k, v)) };
    expect(await readLayout(redis, 'p:', 4)).toEqual(steadyLayout(4));
    await writeLayout(redis, 'p:', growing('strategic'));
    expect([...store.keys()]).toEqual(['p:shards:layout']);
    expect(await readLayout(redis, 'p:', 4)).toEqual(growing('strategic'));
    expect(() => parseLayout('{"current":{"generation":0,"shards":2},"next":null,"phase":"tactical"}')).toThrow(/not a shard layout/);
    expect(() => parseLayout('{"current":{"generation":-1,"shards":2}}')).toThrow(/not a shard layout/);
  });
});
