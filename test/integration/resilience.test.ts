import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IntegratedResult } from '../../schemas/integrated-result.schema';
import { QUEUE_RESULTS } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, interleave, publishBars, QueueCollector, waitFor, type Received, type TestVhost } from '../fixtures/broker';
import { startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(240_000);

/** A private Redis for this file, so it can be frozen without touching anyone else's. */
async function startRedis(port: number): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const { default: Redis } = await import('ioredis');
  await waitFor(async () => {
    const r = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      r.disconnect();
    }
  }, 10_000, 'private redis');
  return proc;
}

function distinct(messages: Received[]): { byId: Map<string, IntegratedResult>; resends: number } {
  const byId = new Map<string, IntegratedResult>();
  const bodies = new Map<string, string>();
  let resends = 0;
  for (const m of messages) {
    const parsed = JSON.parse(m.body) as IntegratedResult & { latency_ms?: number };
    const { latency_ms: _ignored, ...rest } = parsed;
    const key = JSON.stringify(rest);
    const seen = bodies.get(m.messageId!);
    if (seen !== undefined) {
      resends++;
      expect(key).toBe(seen);
    } else {
      bodies.set(m.messageId!, key);
      byId.set(m.messageId!, parsed);
    }
  }
  return { byId, resends };
}

async function metric(pipeline: TestPipeline, pattern: RegExp): Promise<number> {
  const text = await (await fetch(pipeline.healthUrl.replace('/health', '/metrics'))).text();
  if (process.env.DEBUG_METRICS) process.stdout.write(`${text.split('\n').filter((l) => l.includes('breaker')).join('\n')}\n`);
  return text
    .split('\n')
    .filter((line) => pattern.test(line))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

describe('resilience', () => {
  const port = 6390 + Math.floor(Math.random() * 50);
  let redis: ChildProcess;
  let vhost: TestVhost;
  let pipeline: TestPipeline;
  let results: QueueCollector;
  let dir: string;
  const faultFile = () => join(dir, 'faults');

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'resilience-'));
    redis = await startRedis(port);
    vhost = await createVhost('resilience');
    pipeline = await startPipeline(vhost.url, {
      REDIS_URL: `redis://127.0.0.1:${port}`,
      PIPELINE_FAULT_FILE: faultFile(),
      PIPELINE_DATA_DIR: join(dir, 'data'),
      // The test publishes in bursts: a short window lets the failures outnumber the earlier successes.
      PIPELINE_BREAKER_WINDOW_MS: '3000',
    });
    await waitHealthy(pipeline);
    results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    await results.start();
  });

  afterEach(async () => {
    await results?.stop();
    await pipeline?.stop();
    redis?.kill('SIGCONT');
    redis?.kill('SIGKILL');
    await vhost?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('falls back when the model and the pattern store throw, says so, and recovers when they stop', async () => {
    const bars = interleave(['MMM', 'NNN'].map((symbol, i) => generateSyntheticMarket({ seed: 40 + i, symbol, bars: 1500 }).bars));
    const done = (n: number) => () => distinct(results.messages).byId.size >= n;
    await publishBars(vhost.url, bars.slice(0, 1300));
    await waitFor(done(1300), 60_000, 'results before the fault');
    // Let the successes of the burst leave the breakers' 3 s window, as they would at bar pace.
    await new Promise((r) => setTimeout(r, 3500));
    writeFileSync(faultFile(), 'agents,pattern_store\n');
    await new Promise((r) => setTimeout(r, 400)); // the injector re-reads the file every 200 ms
    await publishBars(vhost.url, bars.slice(1300, 2200));
    await waitFor(done(2200), 60_000, 'results during the fault');
    writeFileSync(faultFile(), '\n');
    await new Promise((r) => setTimeout(r, 6000)); // breakers half-open after 5 s
    await publishBars(vhost.url, bars.slice(2200));
    await waitFor(done(bars.length), 60_000, 'results after the fault');

    const { byId, resends } = distinct(results.messages);
    expect(byId.size).toBe(bars.length);
    expect(resends).toBe(0);
    const ordered = bars.map((b) => byId.get(`${b.symbol}:5m:${b.ts}`)!);
    const during = ordered.slice(1400, 2200);
    expect(during.every((r) => r.degraded.includes('agents') && r.actions.tactical === 'FLAT' && r.actions.risk === 0)).toBe(true);
    expect(during.some((r) => r.degraded.includes('strategic.pattern_store'))).toBe(true);
    const after = ordered.slice(-300);
    expect(after.every((r) => !r.degraded.includes('agents') && !r.degraded.includes('strategic.pattern_store'))).toBe(true);
    expect(await metric(pipeline, /^pipeline_breaker_transitions_total\{.*stage="agents".*state="open"/)).toBeGreaterThanOrEqual(1);
    expect(await metric(pipeline, /^pipeline_breaker_transitions_total\{.*stage="pattern_store".*state="open"/)).toBeGreaterThanOrEqual(1);
    expect(await metric(pipeline, /^pipeline_breaker_state\{.*stage="agents"/)).toBe(0);
  });

  it('pauses while Redis is frozen for ten seconds and loses nothing', async () => {
    const bars = interleave(['RRR', 'SSS'].map((symbol, i) => generateSyntheticMarket({ seed: 60 + i, symbol, bars: 1000 }).bars));
    await publishBars(vhost.url, bars.slice(0, 800));
    await waitFor(() => results.messages.length >= 400, 60_000, 'results before the freeze');
    redis.kill('SIGSTOP');
    await publishBars(vhost.url, bars.slice(800));
    await new Promise((r) => setTimeout(r, 10_000));
    redis.kill('SIGCONT');
    await waitFor(() => distinct(results.messages).byId.size >= bars.length, 120_000, 'all results after the freeze');
    const { byId, resends } = distinct(results.messages);
    expect(byId.size).toBe(bars.length);
    // Only identical re-sends (checked in distinct), bounded by what the tactical worker held.
    expect(resends).toBeLessThanOrEqual(256);
    expect(await metric(pipeline, /^pipeline_breaker_transitions_total\{.*stage="redis".*state="open"/)).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (await fetch(pipeline.healthUrl)).status === 200, 30_000, 'healthy again');
  });
});
