import { bindings, EXCHANGE_BARS, EXCHANGE_INTERNAL, EXCHANGE_RESULTS, EXCHANGE_STRATEGIC_RING, EXCHANGE_TACTICAL_RING, isContextQueue, QUEUE_RESULTS, routingKeys, shardQueue, workQueueOptions } from '../../../src/broker/topology';

describe('topology', () => {
  it('builds shard queue names in one place', () => {
    expect(shardQueue('tactical', 0)).toBe('tactical_processing.0');
    expect(shardQueue('strategic', 3)).toBe('strategic_processing.3');
    expect(shardQueue('context', 1)).toBe('tactical_context.1');
    expect(() => shardQueue('tactical', -1)).toThrow(RangeError);
    expect(isContextQueue('tactical_context.12')).toBe(true);
    expect(isContextQueue('integrated_results')).toBe(false);
    expect(isContextQueue(undefined)).toBe(false);
  });

  it('binds one shard straight to the exchanges, with no ring (a stock broker suffices)', () => {
    const b = bindings(1);
    expect(b.some((x) => x.destination === EXCHANGE_TACTICAL_RING || x.destination === EXCHANGE_STRATEGIC_RING || x.source.endsWith('.ring'))).toBe(false);
    expect(b).toContainEqual({ destination: 'tactical_processing.0', source: EXCHANGE_BARS, pattern: 'bars.5m.#' });
    expect(b).toContainEqual({ destination: 'strategic_processing.0', source: EXCHANGE_INTERNAL, pattern: 'bars.30m.#' });
    expect(b).toContainEqual({ destination: 'strategic_processing.0', source: EXCHANGE_INTERNAL, pattern: 'feedback.#' });
  });

  it('routes N shards through the rings, 30m bars and feedback through the same one', () => {
    const b = bindings(3);
    expect(b).toContainEqual({ destination: EXCHANGE_TACTICAL_RING, source: EXCHANGE_BARS, pattern: 'bars.5m.#', exchangeToExchange: true });
    const intoStrategicRing = b.filter((x) => x.destination === EXCHANGE_STRATEGIC_RING).map((x) => x.pattern).sort();
    expect(intoStrategicRing).toEqual(['bars.30m.#', 'feedback.#']);
    for (let k = 0; k < 3; k++) {
      expect(b.filter((x) => x.destination === shardQueue('tactical', k)).map((x) => x.source)).toEqual([EXCHANGE_TACTICAL_RING]);
      expect(b.filter((x) => x.destination === shardQueue('strategic', k)).map((x) => x.source)).toEqual([EXCHANGE_STRATEGIC_RING]);
      expect(b).toContainEqual({ destination: shardQueue('context', k), source: EXCHANGE_INTERNAL, pattern: routingKeys.reply(shardQueue('context', k)) });
    }
  });

  it('keeps internal traffic off pipeline.results: only results are bound there', () => {
    for (const shards of [1, 4]) {
      const fromResults = bindings(shards).filter((x) => x.source === EXCHANGE_RESULTS);
      expect(fromResults).toEqual([{ destination: QUEUE_RESULTS, source: EXCHANGE_RESULTS, pattern: 'results.#' }]);
    }
  });

  it('makes shard queues single-active-consumer with a backstop delivery limit', () => {
    const shard = workQueueOptions({ queueType: 'quorum', maxAttempts: 10 }, true).arguments as Record<string, unknown>;
    expect(shard['x-single-active-consumer']).toBe(true);
    expect(shard['x-delivery-limit']).toBe(40);
    const results = workQueueOptions({ queueType: 'quorum', maxAttempts: 10 }).arguments as Record<string, unknown>;
    expect(results['x-single-active-consumer']).toBeUndefined();
    expect(results['x-delivery-limit']).toBe(10);
  });
});
