import { QUEUE_DEAD_LETTERS, QUEUE_RESULTS } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, publishRaw, QueueCollector, waitFor, type TestVhost } from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(120_000);

describe('bad input', () => {
  let vhost: TestVhost;
  let pipeline: TestPipeline;
  let results: QueueCollector;
  let dead: QueueCollector;

  beforeAll(async () => {
    vhost = await createVhost('bad');
    pipeline = await startPipeline(vhost.url);
    await waitHealthy(pipeline);
    results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    dead = new QueueCollector(vhost.url, QUEUE_DEAD_LETTERS);
    await results.start();
    await dead.start();
  });

  afterAll(async () => {
    await results?.stop();
    await dead?.stop();
    await pipeline?.stop();
    await clearRedis(pipeline.prefix);
    await vhost?.dispose();
  });

  it('dead-letters each bad message once with a reason and keeps every valid bar around it', async () => {
    const bars = generateSyntheticMarket({ seed: 9, symbol: 'BAD', bars: 40 }).bars;
    const key = 'bars.5m.BAD';
    const good = (i: number) => ({ routingKey: key, body: bars[i]! });
    const mutate = (i: number, patch: Record<string, unknown>) => ({ routingKey: key, body: JSON.stringify({ ...bars[i], ...patch }) });
    const cases: [string, { routingKey: string; body: unknown }, RegExp][] = [
      ['not JSON', { routingKey: key, body: '{"symbol":' }, /body is not valid JSON/],
      ['schema failure', { routingKey: key, body: JSON.stringify({ symbol: 'BAD' }) }, /schema validation failed: timeframe/],
      ['misaligned ts', mutate(12, { ts: bars[12]!.ts + 7 }), /not a multiple of 5m/],
      ['high below low', mutate(12, { high: bars[12]!.low / 2 }), /high .* must be >= max\(open, close\)/],
      ['non-positive price', mutate(12, { open: -1 }), /open must be greater than 0/],
      ['negative volume', mutate(12, { volume: -5 }), /volume must not be negative/],
      ['unknown symbol characters', { routingKey: 'bars.5m.B A D', body: JSON.stringify({ ...bars[12], symbol: 'B A D!' }) }, /symbol must be 1 to 32/],
    ];
    const messages: { routingKey: string; body: string | (typeof bars)[number] }[] = [];
    for (let i = 0; i < 10; i++) messages.push(good(i));
    for (const [, message] of cases) messages.push(message as never);
    for (let i = 10; i < 20; i++) messages.push(good(i));
    messages.push(good(15)); // duplicate: no dead letter, no second result
    messages.push(good(5)); // older duplicate
    messages.push(mutate(3, { ts: bars[19]!.ts - 300_000 * 30 })); // out of order, never accepted
    for (let i = 20; i < 40; i++) messages.push(good(i));
    await publishRaw(vhost.url, messages);

    await waitFor(() => results.messages.length >= 40 && dead.messages.length >= cases.length + 1, 60_000, 'results and dead letters');
    await new Promise((r) => setTimeout(r, 1000));
    expect(results.messages.map((m) => m.messageId)).toEqual(bars.map((b) => `BAD:5m:${b.ts}`));
    expect(dead.messages).toHaveLength(cases.length + 1);
    const reasons = dead.messages.map((m) => String(m.headers['x-rejection-reason']));
    for (const [name, , pattern] of cases) {
      expect({ name, hits: reasons.filter((r) => pattern.test(r)).length }).toEqual({ name, hits: 1 });
    }
    expect(reasons.filter((r) => /out of order/.test(r))).toHaveLength(1);
    for (const m of dead.messages) {
      expect(m.headers['x-rejected-by']).toBe('tactical');
      expect(m.headers['x-original-routing-key']).toMatch(/^bars\.5m\./);
    }
  });
});
