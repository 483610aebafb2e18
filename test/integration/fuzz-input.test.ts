import * as amqp from 'amqplib';
import fc from 'fast-check';
import type { Bar } from '../../schemas/bar.schema';
import { EXCHANGE_BARS, QUEUE_DEAD_LETTERS, QUEUE_RESULTS } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { SeededRandom } from '../../src/util/random';
import {
  createVhost,
  interleave,
  QueueCollector,
  waitFor,
  type TestVhost,
} from '../fixtures/broker';
import { FUZZ_SEED, nearValidBar } from '../fixtures/fuzz-bars';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(120_000);

/**
 * Fuzzed input through the real pipeline, written against the public contract only: bars and junk
 * go to the exchange `market.bars`, results come from `integrated_results`, rejections from
 * `pipeline.dead_letters`. Every fuzzed message is dead-lettered with a reason, no worker restarts,
 * and every valid bar gets exactly one result, in order.
 */
describe('fuzzed input through the pipeline', () => {
  let vhost: TestVhost;
  let pipeline: TestPipeline;
  let results: QueueCollector;
  let dead: QueueCollector;

  beforeAll(async () => {
    vhost = await createVhost('fuzz');
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
    if (pipeline) await clearRedis(pipeline.prefix);
    await vhost?.dispose();
  });

  it('dead-letters every fuzzed message with a reason and gives each valid bar exactly one result, in order', async () => {
    const symbols = ['FUZZ.A', 'FUZZ-B', 'FUZZ_C'];
    const markets = symbols.map(
      (symbol, i) => generateSyntheticMarket({ seed: 300 + i, symbol, bars: 120 }).bars,
    );
    const keyOf = (symbol: string): string => `bars.5m.${symbol}`;

    // The junk: arbitrary bytes, arbitrary JSON, and bars with one field made wrong, sent under the
    // routing keys of the valid symbols (so they share queues, and order, with the valid bars).
    const bodies: Buffer[] = [
      ...fc
        .sample(fc.uint8Array({ maxLength: 300 }), { seed: FUZZ_SEED, numRuns: 100 })
        .map((b) => Buffer.from(b)),
      ...fc
        .sample(fc.jsonValue({ maxDepth: 3 }), { seed: FUZZ_SEED + 1, numRuns: 100 })
        .map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      ...fc
        .sample(nearValidBar, { seed: FUZZ_SEED + 2, numRuns: 150 })
        .map((p) => Buffer.from(p.body)),
    ];
    const rng = new SeededRandom(FUZZ_SEED);
    const valid = interleave(markets);
    // The last bar of each symbol goes after all the junk: its result means the junk before it was handled.
    const tail = symbols.map((s) => valid.filter((b) => b.symbol === s).at(-1) as Bar);
    const head = valid.filter((b) => !tail.includes(b));
    const asMessage = (b: Bar): Message => ({
      routingKey: keyOf(b.symbol),
      body: Buffer.from(JSON.stringify(b)),
    });
    const messages = head.map(asMessage);
    for (const body of bodies)
      messages.splice(rng.int(0, messages.length), 0, {
        routingKey: keyOf(rng.pick(symbols)),
        body,
      });
    messages.push(...tail.map(asMessage));
    const pidsBefore = pipeline.supervisor.pids();

    await publish(vhost.url, messages);
    await waitFor(
      () => results.messages.length >= valid.length && dead.messages.length >= bodies.length,
      90_000,
      'results and dead letters',
    );

    // Exactly one result per valid bar, per symbol in ts order.
    expect(results.messages).toHaveLength(valid.length);
    for (const [i, symbol] of symbols.entries()) {
      const got = results.messages
        .filter((m) => m.routingKey === `results.${symbol}`)
        .map((m) => m.messageId);
      expect(got).toEqual(markets[i]!.map((b) => `${symbol}:5m:${b.ts}`));
    }
    // Every junk message dead-lettered once, unchanged, with a reason a person can act on.
    expect(dead.messages).toHaveLength(bodies.length);
    const sent = bodies.map((b) => b.toString('utf8')).sort();
    expect(dead.messages.map((m) => m.body).sort()).toEqual(sent);
    for (const m of dead.messages) {
      const header: unknown = m.headers['x-rejection-reason'];
      const reason = typeof header === 'string' ? header : '';
      expect(reason).toMatch(/^(body is not valid JSON|schema validation failed: )/);
      expect(reason.length).toBeGreaterThan(20);
    }
    // No worker crashed: the same processes, and healthy.
    expect(pipeline.supervisor.pids()).toEqual(pidsBefore);
    expect((await fetch(pipeline.healthUrl)).status).toBe(200);
  });
});

interface Message {
  routingKey: string;
  body: Buffer;
}

/** Publishes bodies as they are (arbitrary bytes included) to `market.bars`, with confirms. */
async function publish(url: string, messages: Message[]): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    for (const m of messages) {
      channel.publish(EXCHANGE_BARS, m.routingKey, m.body, {
        persistent: true,
        contentType: 'application/json',
      });
    }
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}
