import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import * as amqp from 'amqplib';
import type { Bar } from '../../schemas/bar.schema';
import Redis from 'ioredis';
import { LAYOUT_KEY, type ShardLayout } from '../../src/broker/shard-generation';
import { EXCHANGE_BARS, QUEUE_DEAD_LETTERS, QUEUE_RESULTS, routingKeys, shardQueue } from '../../src/broker/topology';
import { runCli } from '../../src/cli/main';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, interleave, QueueCollector, waitFor, type Received, type TestVhost } from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

const execFileAsync = promisify(execFile);

jest.setTimeout(1_200_000);

/** The result body without `latency_ms`, the one field allowed to differ between runs. */
function comparable(body: string): string {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  delete parsed.latency_ms;
  return JSON.stringify(parsed);
}

/** Results by messageId in order of first arrival, and how many arrived more than once. */
function distinct(messages: Received[]): { ids: string[]; byId: Map<string, string>; copies: number } {
  const byId = new Map<string, string>();
  const ids: string[] = [];
  let copies = 0;
  for (const m of messages) {
    const body = comparable(m.body);
    if (byId.has(m.messageId!)) {
      copies++;
      expect(body).toBe(byId.get(m.messageId!));
    } else {
      byId.set(m.messageId!, body);
      ids.push(m.messageId!);
    }
  }
  return { ids, byId, copies };
}

const idOf = (b: Bar): string => `${b.symbol}:5m:${b.ts}`;

const symbols = ['R0', 'R1.X', 'R2', 'R3-Y', 'R4', 'R5'];
const perSymbol = 240;
const markets = symbols.map((symbol, i) => generateSyntheticMarket({ seed: 700 + i, symbol, bars: perSymbol, gapProbability: 0.01 }).bars);
const bars = interleave(markets);

let vhosts: TestVhost[] = [];
let pipelines: TestPipeline[] = [];
let collectors: QueueCollector[] = [];
let prefixes: string[] = [];
let producers: Producer[] = [];

afterEach(async () => {
  for (const p of producers) await p.stop();
  for (const p of pipelines) await p.stop();
  for (const c of collectors) await c.stop();
  for (const prefix of prefixes) await clearRedis(prefix);
  for (const v of vhosts) await v.dispose();
  vhosts = [];
  pipelines = [];
  collectors = [];
  prefixes = [];
  producers = [];
});

/** Publishes the bars in order, a few at a time, never past `allowed` (raised by the test step by step). */
class Producer {
  published = 0;
  allowed = 0;
  private stopped = false;
  private done: Promise<void> | null = null;

  constructor(private readonly url: string) {
    producers.push(this);
  }

  /** Ends the publishing loop (a failed test leaves it waiting for a higher `allowed`). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done?.catch(() => undefined);
  }

  start(): void {
    this.done = (async () => {
      const connection = await amqp.connect(this.url);
      try {
        const channel = await connection.createConfirmChannel();
        while (this.published < bars.length && !this.stopped) {
          const upTo = Math.min(this.allowed, this.published + symbols.length, bars.length);
          for (; this.published < upTo; this.published++) {
            const b = bars[this.published]!;
            channel.publish(EXCHANGE_BARS, routingKeys.bar(b.timeframe, b.symbol), Buffer.from(JSON.stringify(b)), { persistent: true, contentType: 'application/json' });
          }
          await channel.waitForConfirms();
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await connection.close();
      }
    })();
  }

  /** Lets the producer go on to `fraction` of the bars and waits until it got past `atLeast`. */
  async allow(fraction: number, atLeast = fraction - 0.05): Promise<void> {
    this.allowed = Math.round(bars.length * fraction);
    await waitFor(() => this.published >= Math.round(bars.length * atLeast), 120_000, `${atLeast} of the bars published`);
  }

  finished(): Promise<void> {
    return this.done ?? Promise.resolve();
  }
}

async function cli(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (d: Buffer) => (chunks.out += d.toString()));
  err.on('data', (d: Buffer) => (chunks.err += d.toString()));
  const code = await runCli(args, { env, out, err });
  return { code, ...chunks };
}

/** Messages delivered to a consumer and not yet acknowledged, per queue of the vhost (rabbitmqctl). */
async function unacknowledged(vhost: string): Promise<Map<string, number>> {
  const { stdout } = await execFileAsync('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', '-p', vhost, 'name', 'messages_unacknowledged']);
  const held = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const [name, count] = line.trim().split(/\s+/);
    if (name !== undefined && name !== '' && count !== undefined) held.set(name, Number(count));
  }
  return held;
}

async function queueMessages(url: string, queue: string): Promise<number> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return (await channel.checkQueue(queue)).messageCount;
  } catch {
    return 0; // absent
  } finally {
    await connection.close().catch(() => undefined);
  }
}

describe('pipeline shards resize', () => {
  it('goes 2 → 3 → 2 with bars published throughout: results equal an undisturbed 2-shard run, in order, one per bar, no dead letter', async () => {
    // The undisturbed run: the same bars through 2 shards.
    const plain = await createVhost('resize-plain');
    vhosts.push(plain);
    const plainPipeline = await startPipeline(plain.url, { PIPELINE_SHARDS: '2' });
    pipelines.push(plainPipeline);
    prefixes.push(plainPipeline.prefix);
    const plainResults = new QueueCollector(plain.url, QUEUE_RESULTS);
    collectors.push(plainResults);
    await waitHealthy(plainPipeline);
    await plainResults.start();
    const plainProducer = new Producer(plain.url);
    plainProducer.allowed = bars.length;
    plainProducer.start();
    await plainProducer.finished();
    await waitFor(() => distinct(plainResults.messages).byId.size >= bars.length, 600_000, 'results of the undisturbed run');
    const expected = distinct(plainResults.messages).byId;
    await plainPipeline.stop();
    pipelines = pipelines.filter((p) => p !== plainPipeline);

    // The resized run: one vhost, one Redis prefix (and data directory) across every restart.
    const vhost = await createVhost('resize');
    vhosts.push(vhost);
    const results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    collectors.push(results);
    let pipeline: TestPipeline | null = null;
    const start = async (shards: number): Promise<TestPipeline> => {
      const p = await startPipeline(vhost.url, { PIPELINE_SHARDS: String(shards) }, pipeline?.prefix);
      pipelines.push(p);
      if (!prefixes.includes(p.prefix)) prefixes.push(p.prefix);
      await waitHealthy(p, 120_000);
      return p;
    };
    const stop = async (): Promise<void> => {
      await pipeline!.stop(); // graceful: in-flight work finishes, the rest is returned to its queue
      pipelines = pipelines.filter((p) => p !== pipeline);
    };
    const env = (shards: number): NodeJS.ProcessEnv => ({ ...pipeline!.env, PIPELINE_SHARDS: String(shards) });
    const layoutOf = async (): Promise<ShardLayout> => {
      const status = await cli(env(2), ['shards', 'status', '--json']);
      expect(status.code).toBe(0);
      return (JSON.parse(status.out) as { layout: ShardLayout }).layout;
    };

    pipeline = await start(2);
    // While workers consume, counts are not exact and a worker could bind its sources again: refused.
    const refused = await cli(env(2), ['shards', 'resize', '3']);
    expect({ code: refused.code, err: refused.err }).toEqual({ code: 1, err: expect.stringMatching(/consumer\(s\); stop the pipeline/) as string });
    expect(await layoutOf()).toEqual({ current: { generation: 0, shards: 2 }, next: null, phase: null });
    await results.start();
    const producer = new Producer(vhost.url);
    producer.start();
    let fraction = 0.15;
    await producer.allow(fraction);
    const steps: string[] = [];

    /** One resize, following the procedure of `pipeline shards resize --help` with the producer going on. */
    const resize = async (from: number, to: number): Promise<void> => {
      await stop();
      // A backlog in the old queues while the rings switch: the bars the old shards still have to
      // work through are what the order of the steps protects.
      fraction = Math.min(0.9, fraction + 0.08);
      await producer.allow(fraction, fraction);
      const step1 = await cli(env(from), ['shards', 'resize', String(to)]);
      expect({ code: step1.code, err: step1.err }).toEqual({ code: 0, err: expect.any(String) as string });
      steps.push(step1.out.trim());
      for (const phase of ['tactical', 'strategic'] as const) {
        for (let round = 0; ; round++) {
          expect(round).toBeLessThan(6);
          const layout = await layoutOf();
          expect(layout.phase).toBe(phase);
          pipeline = await start(to);
          fraction = Math.min(0.9, fraction + 0.05);
          await producer.allow(fraction);
          const old = layout.current;
          const draining = Array.from({ length: old.shards }, (_, k) => shardQueue(phase, k, old.generation));
          if (phase === 'strategic') for (let k = 0; k < Math.max(old.shards, to); k++) draining.push(shardQueue('context', k));
          // Drained means no message ready and none held unacknowledged by a worker: a graceful stop
          // returns what a worker still holds, and the resize then (rightly) says "not drained yet".
          await waitFor(async () => {
            for (const q of draining) if ((await queueMessages(vhost.url, q)) > 0) return false;
            const held = await unacknowledged(vhost.name);
            return draining.every((q) => (held.get(q) ?? 0) === 0);
          }, 300_000, `${draining.join(', ')} drained`);
          await stop();
          const next = await cli(env(to), ['shards', 'resize', String(to)]);
          steps.push(`${phase} round ${round}: exit ${next.code}: ${(next.out + next.err).trim()}`);
          if (next.code === 0) break;
          expect(next.err).toMatch(/not drained yet/);
        }
      }
      expect(await layoutOf()).toEqual({ current: { generation: expect.any(Number) as number, shards: to }, next: null, phase: null });
      pipeline = await start(to);
      fraction = Math.min(0.9, fraction + 0.05);
      await producer.allow(fraction);
    };

    await resize(2, 3);
    // A worker configured with the old shard count refuses to start: it would bind the old queues.
    await expect(startPipeline(vhost.url, { PIPELINE_SHARDS: '2' }, pipeline.prefix)).rejects.toThrow(/PIPELINE_SHARDS=2/);
    await resize(3, 2);
    await producer.allow(1, 1);
    await producer.finished();
    await waitFor(() => distinct(results.messages).byId.size >= bars.length, 600_000, `${bars.length} results after the resizes`);
    await new Promise((r) => setTimeout(r, 2000)); // a late duplicate would arrive here
    process.stderr.write(`shards resize steps:\n${steps.join('\n')}\n`);

    const { ids, byId, copies } = distinct(results.messages);
    expect(byId.size).toBe(bars.length);
    expect(copies).toBe(0);
    for (const [i, symbol] of symbols.entries()) expect(ids.filter((id) => id.startsWith(`${symbol}:5m:`))).toEqual(markets[i]!.map(idOf));
    for (const [id, body] of expected) expect({ id, body: byId.get(id) }).toEqual({ id, body });
    expect(await queueMessages(vhost.url, QUEUE_DEAD_LETTERS)).toBe(0);
    // The generation-0 and generation-1 queues are gone; generation 2 serves 2 shards.
    expect(await layoutOf()).toEqual({ current: { generation: 2, shards: 2 }, next: null, phase: null });
    // Redis losing the record (say, `pipeline state accept-loss`) does not send the pipeline back to
    // generation 0: the copy in the data directory is written back.
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      expect(await redis.del(`${pipeline.prefix}${LAYOUT_KEY}`)).toBe(1);
      expect(await layoutOf()).toEqual({ current: { generation: 2, shards: 2 }, next: null, phase: null });
      expect(await redis.get(`${pipeline.prefix}${LAYOUT_KEY}`)).not.toBeNull();
    } finally {
      redis.disconnect();
    }
  });
});
