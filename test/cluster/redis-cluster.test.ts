/**
 * The pipeline on a three-master Redis Cluster started here (redis-server --cluster-enabled yes on free
 * ports, joined with redis-cli --cluster create): every bar gets its result, identical to a run on a
 * single Redis; each symbol's keys share one slot; the state is spread over the masters; and the
 * Redis-loss guard sees one master losing its data.
 *
 * Run: npm run test:cluster (needs redis-server and redis-cli on PATH; the main broker on 5672).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import type { Bar } from '../../schemas/bar.schema';
import { QUEUE_RESULTS } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { keySlot } from '../../src/state/keys';
import { CLUSTER_MARKER_TAGS } from '../../src/state/state-epoch-store';
import { createVhost, interleave, publishBars, QueueCollector, waitFor, type TestVhost } from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(600_000);
const run = promisify(execFile);

async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Three ports p, p+1, p+2 free together with their cluster bus ports (+10000). */
async function freePorts(): Promise<number[]> {
  for (let base = 17000 + (process.pid % 300) * 3; base < 19000; base += 3) {
    const ports = [base, base + 1, base + 2];
    let ok = true;
    for (const p of ports) if (!(await portFree(p)) || !(await portFree(p + 10000))) ok = false;
    if (ok) return ports;
  }
  throw new Error('no free ports for the Redis Cluster between 17000 and 19000');
}

const comparable = (body: string): string => {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  delete parsed.latency_ms;
  return JSON.stringify(parsed);
};

const byId = (messages: { messageId: string | undefined; body: string }[]): Map<string, string> => {
  const out = new Map<string, string>();
  for (const m of messages) {
    const body = comparable(m.body);
    const seen = out.get(m.messageId!);
    if (seen !== undefined) expect(body).toBe(seen);
    out.set(m.messageId!, body);
  }
  return out;
};

let dir = '';
let ports: number[] = [];
const servers: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

function startServer(port: number): ChildProcess {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '5000', '--dir', dir, '--save', '', '--appendonly', 'no', '--dbfilename', `dump-${port}.rdb`],
    { stdio: 'ignore' },
  );
  servers.push(child);
  return child;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  ports = await freePorts();
  for (const port of ports) startServer(port);
  for (const port of ports) await waitFor(async () => (await run('redis-cli', ['-p', String(port), 'ping']).catch(() => ({ stdout: '' }))).stdout.trim() === 'PONG', 20_000, `redis on ${port}`);
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
  for (const port of ports) {
    await waitFor(async () => /cluster_state:ok/.test((await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout), 30_000, `cluster_state:ok on ${port}`);
  }
}, 120_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const s of servers) s.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('Redis Cluster', () => {
  const symbols = ['R0', 'R1.X', 'R2', 'R3-Y', 'R4', 'R5'];
  const markets = symbols.map((symbol, i) => generateSyntheticMarket({ seed: 2300 + i, symbol, bars: 200, gapProbability: 0.01 }).bars);
  const bars: Bar[] = interleave(markets);

  async function runOn(label: string, redisUrl: string | null, prefix?: string): Promise<{ results: Map<string, string>; pipeline: TestPipeline; vhost: TestVhost }> {
    const vhost = await createVhost(label);
    const collector = new QueueCollector(vhost.url, QUEUE_RESULTS);
    const pipeline = await startPipeline(vhost.url, { ...(redisUrl === null ? {} : { REDIS_URL: redisUrl }) }, prefix);
    cleanups.push(async () => {
      await collector.stop();
      await pipeline.stop();
      if (redisUrl === null) await clearRedis(pipeline.prefix);
      await vhost.dispose();
    });
    await waitHealthy(pipeline, 120_000);
    await collector.start();
    await publishBars(vhost.url, bars);
    await waitFor(() => byId(collector.messages).size >= bars.length, 300_000, `${bars.length} results (${label})`);
    return { results: byId(collector.messages), pipeline, vhost };
  }

  it('runs the pipeline on three masters with results identical to a single Redis, and sees one master lose its data', async () => {
    const single = await runOn('redis-single', null);
    const clusterUrl = ports.map((p) => `redis://127.0.0.1:${p}`).join(',');
    const prefix = `ct:${Date.now().toString(36)}:`;
    const onCluster = await runOn('redis-cluster', clusterUrl, prefix);
    expect(onCluster.results.size).toBe(bars.length);
    for (const [id, body] of single.results) expect({ id, body: onCluster.results.get(id) }).toEqual({ id, body });

    // The state is on the cluster: every key of a symbol in the symbol's slot, spread over the masters.
    const nodes = ports.map((port) => new Redis(port, '127.0.0.1'));
    try {
      const keysPerNode = await Promise.all(nodes.map((n) => n.keys(`${prefix}*`)));
      const all = keysPerNode.flat();
      for (const symbol of symbols) {
        const own = all.filter((k) => k.includes(`{${symbol}}`));
        expect(own.length).toBeGreaterThanOrEqual(3); // tactical state, dedupe marks, contexts ...
        expect(new Set(own.map(keySlot))).toEqual(new Set([keySlot(`{${symbol}}`)]));
      }
      expect(keysPerNode.filter((keys) => keys.some((k) => !k.includes('epoch'))).length).toBeGreaterThan(1);
      // The epoch is copied to all 16 slot blocks.
      const epochCopies = all.filter((k) => /epoch:\{e\d+\}$/.test(k));
      expect(epochCopies.sort()).toEqual(CLUSTER_MARKER_TAGS.map((t) => `${prefix}epoch:{${t}}`).sort());

      // One master loses everything (a restart without persistence): the guard holds the workers
      // back and /health names the loss.
      const victim = keysPerNode.findIndex((keys) => keys.some((k) => k.includes('tactical:state')));
      await onCluster.pipeline.stop();
      await nodes[victim]!.flushall();
      const again = await startPipeline(onCluster.vhost.url, { REDIS_URL: clusterUrl }, prefix);
      cleanups.push(() => again.stop());
      let health: { status?: string; state_lost?: { fix?: string } } = {};
      await waitFor(async () => {
        const res = await fetch(again.healthUrl).catch(() => null);
        if (res === null) return false;
        health = (await res.json()) as typeof health;
        return res.status === 503 && health.state_lost !== undefined;
      }, 60_000, '/health reporting the lost state');
      expect(health.state_lost?.fix).toMatch(/accept-loss/);
    } finally {
      for (const n of nodes) n.disconnect();
    }
  });
});
