import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as amqp from 'amqplib';
import Redis from 'ioredis';
import type { Bar } from '../../schemas/bar.schema';
import { declareTopology, EXCHANGE_BARS, QUEUE_DEAD_LETTERS, QUEUE_RESULTS, routingKeys, shardQueue } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, interleave, publishBars, QueueCollector, waitFor, type Received, type TestVhost } from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(300_000);

/** The result body without `latency_ms`, the one field allowed to differ between runs. */
function comparable(body: string): string {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  delete parsed.latency_ms;
  return JSON.stringify(parsed);
}

/** Distinct results by messageId in order of first arrival; a second copy must be identical. */
function distinct(messages: Received[]): { ids: string[]; byId: Map<string, string>; resends: number } {
  const byId = new Map<string, string>();
  const ids: string[] = [];
  let resends = 0;
  for (const m of messages) {
    const body = comparable(m.body);
    const seen = byId.get(m.messageId!);
    if (seen !== undefined) {
      resends++;
      expect(body).toBe(seen);
    } else {
      byId.set(m.messageId!, body);
      ids.push(m.messageId!);
    }
  }
  return { ids, byId, resends };
}

const idOf = (b: Bar): string => `${b.symbol}:5m:${b.ts}`;

/** The ids of one symbol's results, in the order they first arrived. */
function arrivalOrder(ids: string[], symbol: string): string[] {
  return ids.filter((id) => id.startsWith(`${symbol}:5m:`));
}

interface Run {
  vhost: TestVhost;
  pipeline: TestPipeline | null;
  results: QueueCollector;
  dead: QueueCollector | null;
  dir: string | null;
}

let runs: Run[] = [];

afterEach(async () => {
  for (const run of runs) {
    await run.results.stop();
    await run.dead?.stop();
    await run.pipeline?.stop();
    if (run.pipeline !== null) await clearRedis(run.pipeline.prefix);
    await run.vhost.dispose();
    if (run.dir !== null) rmSync(run.dir, { recursive: true, force: true });
  }
  runs = [];
});

describe('shards', () => {
  // Six symbols, long enough for regimes (48 thirty-minute bars), pattern memory and feedback to matter.
  const symbols = ['S0', 'S1.X', 'S2', 'S3-Y', 'S4', 'S5'];
  const perSymbol = 450;
  const markets = symbols.map((symbol, i) => generateSyntheticMarket({ seed: 900 + i, symbol, bars: perSymbol, gapProbability: 0.01 }).bars);
  const bars = interleave(markets);

  async function runWith(shards: number, label: string, beforeStart?: (url: string) => Promise<void>): Promise<Map<string, string>> {
    const vhost = await createVhost(label);
    const results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    const run: Run = { vhost, pipeline: null, results, dead: null, dir: null };
    runs.push(run);
    await beforeStart?.(vhost.url);
    run.pipeline = await startPipeline(vhost.url, { PIPELINE_SHARDS: String(shards) });
    await waitHealthy(run.pipeline);
    await results.start();
    if (beforeStart === undefined) await publishBars(vhost.url, bars);
    await waitFor(() => distinct(results.messages).byId.size >= bars.length, 240_000, `${bars.length} results with ${shards} shards`);
    const { byId, ids } = distinct(results.messages);
    expect(byId.size).toBe(bars.length);
    for (const [i, symbol] of symbols.entries()) expect(arrivalOrder(ids, symbol)).toEqual(markets[i]!.map(idOf));
    return byId;
  }

  it('gives byte-identical results with 1 and 3 shards for the same bars (training off), each symbol on one shard', async () => {
    const one = await runWith(1, 'shards1');
    let perQueue: number[] = [];
    const three = await runWith(3, 'shards3', async (url) => {
      // Declare the 3-shard topology and publish before any worker consumes: the queue depths show
      // where the ring put each symbol's bars.
      const connection = await amqp.connect(url);
      try {
        const channel = await connection.createChannel();
        await declareTopology(channel, { queueType: 'quorum', maxAttempts: 10, shards: 3 });
        await publishBars(url, bars);
        await waitFor(async () => {
          perQueue = [];
          for (let k = 0; k < 3; k++) perQueue.push((await channel.checkQueue(shardQueue('tactical', k))).messageCount);
          return perQueue.reduce((a, b) => a + b, 0) === bars.length;
        }, 20_000, 'every bar routed to a tactical shard');
      } finally {
        await connection.close();
      }
    });
    // Routed by symbol: every queue holds whole symbols (multiples of a symbol's bar count), and the
    // ring spread the six symbols over more than one shard.
    const counts = markets.map((m) => m.length);
    const subsetSums = new Set<number>([0]);
    for (const c of counts) for (const s of [...subsetSums]) subsetSums.add(s + c);
    for (const n of perQueue) expect(subsetSums.has(n)).toBe(true);
    expect(perQueue.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(three.size).toBe(one.size);
    for (const [id, body] of one) expect({ id, body: three.get(id) }).toEqual({ id, body });
  });
});

describe('per-symbol isolation', () => {
  const symbols = ['AAA', 'BBB', 'CCC'];

  async function start(label: string, faults: string): Promise<Run & { faultFile: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'isolation-'));
    const faultFile = join(dir, 'faults');
    writeFileSync(faultFile, faults);
    const vhost = await createVhost(label);
    const results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    const dead = new QueueCollector(vhost.url, QUEUE_DEAD_LETTERS);
    const run: Run & { faultFile: string } = { vhost, pipeline: null, results, dead, dir, faultFile };
    runs.push(run);
    run.pipeline = await startPipeline(vhost.url, { PIPELINE_FAULT_FILE: faultFile, PIPELINE_DATA_DIR: join(dir, 'data') });
    await waitHealthy(run.pipeline);
    await results.start();
    await dead.start();
    return run;
  }

  it('dead-letters a message that kills the worker every time alone, and every other bar gets its result in order', async () => {
    const markets = symbols.map((symbol, i) => generateSyntheticMarket({ seed: 300 + i, symbol, bars: 300 }).bars);
    const poison = markets[1]![150]!;
    const run = await start('poison', `crash:${idOf(poison)}\n`);
    const pipeline = run.pipeline!;
    const firstPid = pipeline.supervisor.pids().tactical;
    const bars = interleave(markets);
    await publishBars(run.vhost.url, bars);
    const expected = bars.filter((b) => b !== poison);
    await waitFor(() => distinct(run.results.messages).byId.size >= expected.length && run.dead!.messages.length >= 1, 180_000, 'every other result and the dead letter');
    const { ids, byId } = distinct(run.results.messages);
    expect(byId.size).toBe(expected.length);
    expect(byId.has(idOf(poison))).toBe(false);
    for (const [i, symbol] of symbols.entries()) {
      expect(arrivalOrder(ids, symbol)).toEqual(markets[i]!.filter((b) => b !== poison).map(idOf));
    }
    // The poison message alone, unchanged, with a reason a person can act on.
    expect(run.dead!.messages).toHaveLength(1);
    const letter = run.dead!.messages[0]!;
    expect(JSON.parse(letter.body)).toEqual(poison);
    expect(String(letter.headers['x-rejection-reason'])).toMatch(/tactical worker died 3 times while processing BBB:5m:\d+/);
    expect(letter.headers['x-rejected-by']).toBe('tactical');
    // The supervisor restarted the worker and did not give up on it.
    expect(pipeline.supervisor.pids().tactical).not.toBe(firstPid);
    await waitHealthy(pipeline, 30_000);
  });

  it('a retriable Redis failure on one symbol holds back that symbol only: the others stay on time, nothing is re-sent', async () => {
    const markets = symbols.map((symbol, i) => generateSyntheticMarket({ seed: 700 + i, symbol, bars: 150 }).bars);
    const run = await start('redisfault', 'state:BBB\n');
    const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
    await redis.connect();
    const connection = await amqp.connect(run.vhost.url);
    try {
      const channel = await connection.createConfirmChannel();
      // A steady trickle: 10 bars of each symbol every 100 ms, each bar's publish time noted.
      const sentAt = new Map<string, number>();
      const bars = interleave(markets);
      for (let i = 0; i < bars.length; i += 30) {
        for (const bar of bars.slice(i, i + 30)) {
          sentAt.set(idOf(bar), performance.now());
          channel.publish(EXCHANGE_BARS, routingKeys.bar('5m', bar.symbol), Buffer.from(JSON.stringify(bar)), { persistent: true, contentType: 'application/json' });
        }
        await channel.waitForConfirms();
        await new Promise((r) => setTimeout(r, 100));
      }
      const healthy = bars.filter((b) => b.symbol !== 'BBB');
      await waitFor(() => healthy.every((b) => run.results.messages.some((m) => m.messageId === idOf(b))), 60_000, 'the healthy symbols\' results');
      // BBB's results were computed and published, but its state never became durable, so none of
      // its bars was acknowledged; the other symbols' states are in Redis.
      const stateKey = (symbol: string) => `${run.pipeline!.prefix}tactical:state:${symbol}`;
      expect(await redis.exists(stateKey('AAA'))).toBe(1);
      expect(await redis.exists(stateKey('BBB'))).toBe(0);
      // The healthy symbols' results came on time, each within 2 s of its publish even on a busy machine.
      const latency = (m: Received) => m.receivedAt - sentAt.get(m.messageId!)!;
      const healthyResults = run.results.messages.filter((m) => !m.messageId!.startsWith('BBB:'));
      expect(Math.max(...healthyResults.map(latency))).toBeLessThan(2000);

      // The failure ends: BBB commits, every bar is acknowledged, nothing was dead-lettered or re-sent.
      writeFileSync(run.faultFile, '\n');
      await waitFor(async () => (await redis.exists(stateKey('BBB'))) === 1, 60_000, 'BBB committed');
      const inFlight = async (): Promise<number> => {
        const health = (await (await fetch(run.pipeline!.healthUrl)).json()) as { workers: Record<string, { inFlight?: number }> };
        return health.workers.tactical?.inFlight ?? -1;
      };
      await waitFor(async () => (await inFlight()) === 0, 30_000, 'every bar acknowledged');
      expect((await channel.checkQueue(shardQueue('tactical', 0))).messageCount).toBe(0);
      const { ids, byId, resends } = distinct(run.results.messages);
      expect(byId.size).toBe(bars.length);
      expect(resends).toBe(0);
      for (const [i, symbol] of symbols.entries()) expect(arrivalOrder(ids, symbol)).toEqual(markets[i]!.map(idOf));
      expect(run.dead!.messages).toHaveLength(0);
    } finally {
      await connection.close();
      await redis.quit();
    }
  });
});
