/**
 * Redis loses the pipeline's state (FLUSHALL on a private Redis, as a restart without persistence
 * would) while bars flow; then every worker is SIGKILLed and an at-least-once producer re-sends every
 * bar. Nothing that differs from an undisturbed run may ever be published, and /health must say that
 * the state is lost until an operator acts (docs/redis-loss.md).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { QUEUE_RESULTS } from '../../src/broker/topology';
import { runCli } from '../../src/cli/main';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import {
  createVhost,
  interleave,
  publishBars,
  QueueCollector,
  waitFor,
  type Received,
  type TestVhost,
} from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(150_000);

const run = promisify(execFile);
const symbols = ['LA', 'LB', 'LC'];
const bars = interleave(
  symbols.map((symbol, i) => generateSyntheticMarket({ seed: 1200 + i, symbol, bars: 360 }).bars),
);
const STATE_ROLES = ['strategic', 'tactical'] as const;

/** True when nothing listens on `port` of 127.0.0.1. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** A private Redis without persistence (6440-6489), so that it can be flushed: never the shared one. */
async function startPrivateRedis(): Promise<{ proc: ChildProcess; port: number; client: Redis }> {
  let port = 0;
  for (let i = 0; i < 50 && port === 0; i++) {
    const candidate = 6440 + Math.floor(Math.random() * 50);
    if (await portFree(candidate)) port = candidate;
  }
  if (port === 0) throw new Error('no free port between 6440 and 6489 for a private redis');
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  await waitFor(
    async () => {
      try {
        if (client.status !== 'ready') await client.connect();
        return (await client.ping()) === 'PONG';
      } catch {
        return false;
      }
    },
    10_000,
    'private redis',
  );
  return { proc, port, client };
}

/** The result body without `latency_ms`, the one field allowed to differ between runs. */
function comparable(body: string): string {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  delete parsed.latency_ms;
  return JSON.stringify(parsed);
}

/** Distinct results by messageId; fails if two copies of one result differ. */
function distinct(messages: readonly Received[]): Map<string, string> {
  const byId = new Map<string, string>();
  for (const m of messages) {
    const body = comparable(m.body);
    const seen = byId.get(m.messageId!);
    if (seen !== undefined)
      expect({ id: m.messageId, body }).toEqual({ id: m.messageId, body: seen });
    else byId.set(m.messageId!, body);
  }
  return byId;
}

interface Health {
  status: number;
  body: {
    workers?: Record<
      string,
      { pid: number | null; consuming: boolean; stateLost?: boolean; affected?: string }
    >;
    reasons?: string[];
    state_lost?: { roles: string[]; affected: string; fix: string };
  };
}

async function health(pipeline: TestPipeline): Promise<Health> {
  const res = await fetch(pipeline.healthUrl);
  return { status: res.status, body: (await res.json()) as Health['body'] };
}

/** Every pipeline queue of the vhost but results and dead letters: messages, unacked, consumers. */
async function workQueues(
  vhost: string,
): Promise<
  { name: string; messages: number; messages_unacknowledged: number; consumers: number }[]
> {
  const { stdout } = await run('rabbitmqctl', [
    'list_queues',
    '-p',
    vhost,
    'name',
    'messages',
    'messages_unacknowledged',
    'consumers',
    '--formatter',
    'json',
  ]);
  const all = JSON.parse(stdout) as {
    name: string;
    messages: number;
    messages_unacknowledged: number;
    consumers: number;
  }[];
  return all.filter((q) => /processing/.test(q.name));
}

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  let out = '';
  const sink = (write: (s: string) => void): Writable =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        write(chunk.toString());
        done();
      },
    });
  const code = await runCli(args, {
    env,
    out: sink((s) => (out += s)),
    err: sink(() => undefined),
  });
  return { code, out };
}

describe('redis loss', () => {
  let reference: Map<string, string>;
  let refVhost: TestVhost | null = null;
  let refPipeline: TestPipeline | null = null;
  let refResults: QueueCollector | null = null;
  let vhost: TestVhost | null = null;
  let pipeline: TestPipeline | null = null;
  let results: QueueCollector | null = null;
  let redis: { proc: ChildProcess; port: number; client: Redis } | null = null;
  let dir = '';

  afterAll(async () => {
    await results?.stop();
    await refResults?.stop();
    await pipeline?.stop();
    await refPipeline?.stop();
    if (refPipeline !== null) await clearRedis(refPipeline.prefix);
    redis?.client.disconnect();
    redis?.proc.kill('SIGKILL');
    await vhost?.dispose();
    await refVhost?.dispose();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('publishes nothing that differs from an undisturbed run, answers 503 naming the lost state, and resumes after accept-loss with symbols started over', async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-loss-'));
    redis = await startPrivateRedis();
    // The reference (shared Redis, own prefix) and the disturbed pipeline start side by side.
    [refVhost, vhost] = await Promise.all([createVhost('loss-ref'), createVhost('loss')]);
    [refPipeline, pipeline] = await Promise.all([
      startPipeline(refVhost.url),
      startPipeline(vhost.url, {
        REDIS_URL: `redis://127.0.0.1:${redis.port}`,
        PIPELINE_DATA_DIR: join(dir, 'data'),
      }),
    ]);
    const [ref, disturbed] = [refPipeline, pipeline];
    await Promise.all([waitHealthy(ref), waitHealthy(disturbed)]);
    refResults = new QueueCollector(refVhost.url, QUEUE_RESULTS);
    results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    await Promise.all([refResults.start(), results.start()]);
    const got = results;

    // Reference: every bar once, undisturbed.
    const refCollector = refResults;
    await publishBars(refVhost.url, bars);
    // Disturbed: bars flow; Redis is flushed mid-stream, while more bars arrive.
    await publishBars(vhost.url, bars.slice(0, 500));
    await waitFor(() => got.messages.length >= 300, 60_000, '300 results before the flush');
    await redis.client.flushall();
    await publishBars(vhost.url, bars.slice(500));

    // Every state-holding worker notices, stops consuming and says so.
    await waitFor(
      async () => {
        const h = await health(disturbed);
        return (
          h.status === 503 &&
          STATE_ROLES.every((r) => h.body.state_lost?.roles.includes(r) === true)
        );
      },
      20_000,
      '503 naming the lost state',
    );
    // They finish what they hold (nothing unacknowledged, no consumer) ...
    await waitFor(
      async () =>
        (await workQueues(vhost!.name)).every(
          (q) => q.consumers === 0 && q.messages_unacknowledged === 0,
        ),
      30_000,
      'consumers stopped',
    );
    const before = distinct(got.messages);

    // ... then all are SIGKILLed; the restarted ones find the state lost and hold back.
    const killed = STATE_ROLES.map((role) => disturbed.supervisor.pids()[role]!);
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    await waitFor(
      async () => {
        const h = await health(disturbed);
        return (
          h.status === 503 &&
          STATE_ROLES.every((r) => {
            const w = h.body.workers?.[r];
            return (
              w !== undefined &&
              w.pid !== null &&
              !killed.includes(w.pid) &&
              w.stateLost === true &&
              !w.consuming
            );
          })
        );
      },
      30_000,
      'restarted workers reporting the lost state',
    );
    const lostHealth = await health(disturbed);
    expect(lostHealth.body.state_lost).toEqual({
      roles: [...STATE_ROLES],
      workers: [...STATE_ROLES],
      affected: 'all symbols',
      fix: expect.stringContaining('pipeline state accept-loss --yes') as unknown,
    });
    expect(lostHealth.body.reasons?.join(' ')).toMatch(/redis state lost/);

    // An at-least-once producer re-sends everything: it waits in the queues, nobody consumes it.
    await publishBars(vhost.url, bars);
    // (The broker updates queue counts every few seconds: wait for them to show the re-sent bars.)
    await waitFor(
      async () => {
        const queues = await workQueues(vhost!.name);
        const tactical = queues.find((q) => q.name.startsWith('tactical_processing'));
        expect(queues.every((q) => q.consumers === 0)).toBe(true);
        return tactical !== undefined && tactical.messages >= bars.length;
      },
      30_000,
      're-sent bars queued and not consumed',
    );
    expect((await cli(['state', 'check'], disturbed.env)).code).toBe(1);

    // Every result published by the disturbed pipeline is the reference's result for that bar.
    await waitFor(() => refCollector.messages.length >= bars.length, 90_000, 'reference results');
    reference = distinct(refCollector.messages);
    expect(reference.size).toBe(bars.length);
    const published = distinct(got.messages);
    expect(published.size).toBe(before.size);
    expect(published.size).toBeGreaterThanOrEqual(300);
    for (const [id, body] of published)
      expect({ id, body }).toEqual({ id, body: reference.get(id) });

    // The operator accepts the loss: the workers resume on their own, every symbol starts over.
    const accepted = await cli(['state', 'accept-loss', '--yes'], disturbed.env);
    expect(accepted).toEqual({
      code: 0,
      out: expect.stringMatching(/^new state epoch [0-9a-f]+ .*every symbol starts over/) as unknown,
    });
    await waitHealthy(disturbed, 30_000);
    expect((await cli(['state', 'check'], disturbed.env)).code).toBe(0);
    // Each stage starts over from the next bar in its own queue. The first new result of a symbol
    // comes at once; bars that were between stages at the loss wait for contexts that are gone (the
    // context wait, then `stale`), so the test does not wait for all of them.
    const fresh = (symbol: string): { ts: number; indicators: { sma20: number | null } }[] =>
      [...distinct(got.messages)]
        .filter(([id]) => id.startsWith(`${symbol}:`) && !published.has(id))
        .map(([, body]) => JSON.parse(body) as { ts: number; indicators: { sma20: number | null } })
        .sort((a, b) => a.ts - b.ts);
    await waitFor(
      () => symbols.every((symbol) => fresh(symbol).length > 0),
      30_000,
      'results of every symbol after accept-loss',
    );
    const after = distinct(got.messages); // fails on a second, different result for any bar
    for (const [id, body] of published) expect(after.get(id)).toBe(body);
    for (const symbol of symbols) {
      // Started over: indicators warm up again from the first bar after the loss.
      expect(fresh(symbol)[0]!.indicators.sma20).toBeNull();
    }
  });
});
