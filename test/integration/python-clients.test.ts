/**
 * The Python examples (examples/python/) as a user runs them, with an interpreter that has pika and
 * websockets (Debian's /usr/bin/python3 with python3-pika and python3-websockets; another one through
 * PIPELINE_TEST_PYTHON), against the real broker on a private vhost and a real pipeline with its
 * gateway. Nothing is skipped: without the modules the suite fails and says what to install.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import * as amqp from 'amqplib';
import { WebSocketServer, type WebSocket } from 'ws';
import { IntegratedResultSchema, type IntegratedResult } from '../../schemas/integrated-result.schema';
import { EXCHANGE_RESULTS } from '../../src/broker/topology';
import { createVhost, waitFor, type TestVhost } from '../fixtures/broker';
import { freePort, testKeys } from '../fixtures/gateway';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';
import { ROOT, spawnProcess, type Spawned } from '../fixtures/processes';

jest.setTimeout(300_000);

const PYTHON = process.env.PIPELINE_TEST_PYTHON ?? '/usr/bin/python3';
const EXAMPLES = join(ROOT, 'examples', 'python');

function python(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  return spawnProcess(PYTHON, [join(EXAMPLES, script), ...args], { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', ...env });
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** The first `n` rows of the bundled BTCUSDT bars, as a CSV in the README's format. */
function csvOf(n: number, dir: string): string {
  const rows = readFileSync(join(ROOT, 'data', 'market', 'BTCUSDT_5m.csv'), 'utf8').split('\n').slice(0, n + 1);
  const file = join(dir, 'bars.csv');
  writeFileSync(file, `${rows.join('\n')}\n`);
  return file;
}

beforeAll(() => {
  try {
    execFileSync(PYTHON, ['-c', 'import pika, websockets'], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `${PYTHON} cannot import pika and websockets, which the Python examples need: install them with ` +
        `"apt-get install -y --no-install-recommends python3-pika python3-websockets" (or point PIPELINE_TEST_PYTHON ` +
        `at an interpreter that has them). ${String((err as { stderr?: Buffer }).stderr ?? err)}`,
    );
  }
});

describe('Python clients without a pipeline', () => {
  let vhost: TestVhost;
  let dir: string;
  const running: Spawned[] = [];

  beforeEach(async () => {
    vhost = await createVhost('python');
    dir = mkdtempSync(join(tmpdir(), 'python-clients-'));
  });

  afterEach(async () => {
    for (const p of running.splice(0)) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
      await p.exited;
    }
    rmSync(dir, { recursive: true, force: true });
    await vhost.dispose();
  });

  it('consume_results.py prints each result of its symbols once as a JSON line, dedupes by messageId, and exits after --count', async () => {
    const queue = `py-results-${randomUUID()}`;
    const consumer = python('consume_results.py', ['--amqp-url', vhost.url, '--queue', queue, '--symbols', 'AAA,BBB', '--count', '3']);
    running.push(consumer);
    const connection = await amqp.connect(vhost.url);
    try {
      const channel = await connection.createConfirmChannel();
      await waitFor(async () => {
        const check = await connection.createChannel();
        check.on('error', () => undefined);
        const ok = await check.checkQueue(queue).catch(() => null);
        await check.close().catch(() => undefined);
        return ok !== null && ok.consumerCount === 1;
      }, 60_000, 'the consumer on its queue');
      const send = (symbol: string, ts: number): void => {
        const body = { v: 1, symbol, ts };
        channel.publish(EXCHANGE_RESULTS, `results.${symbol}`, Buffer.from(JSON.stringify(body)), { messageId: `${symbol}:5m:${ts}`, persistent: true });
      };
      send('AAA', 300_000);
      send('AAA', 300_000); // the same result again (a worker killed between publish and record)
      send('CCC', 300_000); // not a symbol it asked for
      send('BBB', 300_000);
      send('AAA', 600_000);
      await channel.waitForConfirms();
      const exit = await consumer.exited;
      expect({ code: exit.code, stderr: consumer.stderr() }).toEqual({ code: 0, stderr: '' });
      expect(lines(consumer.stdout()).map((l) => JSON.parse(l) as unknown)).toEqual([
        { v: 1, symbol: 'AAA', ts: 300_000 },
        { v: 1, symbol: 'BBB', ts: 300_000 },
        { v: 1, symbol: 'AAA', ts: 600_000 },
      ]);
      // Its queue is durable and stays bound: what arrives while it is away waits for it.
      const ok = await channel.checkQueue(queue);
      expect(ok.consumerCount).toBe(0);
    } finally {
      await connection.close();
    }
  });

  it('publish_bars.py reports a bad row with its line number and fails on a bar no queue takes (mandatory)', async () => {
    const file = join(dir, 'bad.csv');
    writeFileSync(file, 'timestamp,open,high,low,close,volume\n2025-04-03 17:05:00+00:00,10,9,8,9,1\n');
    // The file's one row breaks the bar rules: reported, nothing published, exit 1.
    const bad = python('publish_bars.py', ['--amqp-url', vhost.url, '--csv', file, '--symbol', 'PYX']);
    running.push(bad);
    expect((await bad.exited).code).toBe(1);
    expect(bad.stderr()).toContain(`${file}:2: rejected: need low <= min(open, close) and max(open, close) <= high`);
    expect(lines(bad.stdout()).at(-1)).toBe('published 0');

    // No pipeline on this vhost: no queue is bound to market.bars, so the first bar comes back.
    const unroutable = python('publish_bars.py', ['--amqp-url', vhost.url, '--csv', csvOf(2, dir), '--symbol', 'PYX']);
    running.push(unroutable);
    expect((await unroutable.exited).code).toBe(1);
    expect(unroutable.stderr()).toMatch(/bar 1 is unroutable: no queue is bound to market\.bars/);
  });
});

describe('stream_ws.py across a dropped connection', () => {
  let server: Server | null = null;
  let proc: Spawned | null = null;

  afterEach(async () => {
    if (proc !== null && proc.proc.exitCode === null && proc.proc.signalCode === null) proc.proc.kill('SIGKILL');
    await proc?.exited;
    proc = null;
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
    server = null;
  });

  it('reconnects, prints what it missed from /api/results, and prints nothing twice', async () => {
    // A stand-in for the gateway's two routes the client uses, so the drop is under the test's control.
    const key = 'k'.repeat(32);
    const published: { v: number; symbol: string; ts: number }[] = [];
    const publish = (ts: number): { v: number; symbol: string; ts: number } => {
      const r = { v: 1, symbol: 'PYS', ts };
      published.push(r);
      return r;
    };
    const wss = new WebSocketServer({ noServer: true });
    const sockets: WebSocket[] = [];
    let upgrades = 0;
    let catchUps = 0;
    server = createServer((req, res) => {
      const ok = req.headers.authorization === `Bearer ${key}`;
      if (ok && req.method === 'GET' && req.url === '/api/results/PYS?limit=1000') {
        catchUps++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(published));
      } else {
        res.writeHead(ok ? 404 : 401, { 'content-type': 'application/json' }).end('{"error":"not_found","message":"no such route"}');
      }
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (req.headers.authorization !== `Bearer ${key}` || req.url !== '/ws?symbols=PYS') {
        socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        upgrades++;
        sockets.push(ws);
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const p = python('stream_ws.py', ['--url', `http://127.0.0.1:${port}`, '--symbols', 'PYS', '--count', '5'], { GATEWAY_API_KEY: key });
    proc = p;
    await waitFor(() => upgrades === 1 || p.proc.exitCode !== null, 60_000, 'the first connection');
    sockets[0]!.send(JSON.stringify(publish(300_000)));
    sockets[0]!.send(JSON.stringify(publish(600_000)));
    await waitFor(() => lines(p.stdout()).length === 2 || p.proc.exitCode !== null, 60_000, 'two results');
    // The connection drops; two results are published while the client is away.
    sockets[0]!.terminate();
    publish(900_000);
    publish(1_200_000);
    await waitFor(() => upgrades === 2 || p.proc.exitCode !== null, 60_000, 'the reconnect');
    await waitFor(() => lines(p.stdout()).length === 4 || p.proc.exitCode !== null, 60_000, 'the missed results');
    // The new connection repeats one it already printed, then a new one.
    sockets[1]!.send(JSON.stringify({ v: 1, symbol: 'PYS', ts: 1_200_000 }));
    sockets[1]!.send(JSON.stringify(publish(1_500_000)));
    const exit = await p.exited;
    expect({ code: exit.code, stderr: exit.code === 0 ? '' : p.stderr() }).toEqual({ code: 0, stderr: '' });
    expect(lines(p.stdout()).map((l) => (JSON.parse(l) as { ts: number }).ts)).toEqual([300_000, 600_000, 900_000, 1_200_000, 1_500_000]);
    expect(catchUps).toBe(1);
    expect(p.stderr()).toContain('reconnected; fetching the results missed meanwhile');
    wss.close();
  });
});

describe('Python clients with a running pipeline and gateway', () => {
  let vhost: TestVhost;
  let pipeline: TestPipeline;
  let dir: string;
  let base: string;
  const keys = testKeys();
  const running: Spawned[] = [];
  const BARS = 40;

  beforeAll(async () => {
    vhost = await createVhost('python-pipeline');
    dir = mkdtempSync(join(tmpdir(), 'python-pipeline-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    pipeline = await startPipeline(vhost.url, {
      GATEWAY_PORT: String(port),
      GATEWAY_API_KEYS: keys.setting,
      GATEWAY_AUDIT_FILE: join(dir, 'audit.jsonl'),
      GATEWAY_RATE_LIMIT_PER_MINUTE: '100000',
    });
    await waitHealthy(pipeline, 120_000);
  });

  afterAll(async () => {
    for (const p of running.splice(0)) {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
      await p.exited;
    }
    await pipeline?.stop();
    if (pipeline !== undefined) await clearRedis(pipeline.prefix);
    rmSync(dir, { recursive: true, force: true });
    await vhost?.dispose();
  });

  it('publish_bars.py publishes a CSV with confirms, and consume_results.py and stream_ws.py (key and ticket) print every result once, in order', async () => {
    const symbol = 'PYBTC';
    const queue = `py-${randomUUID()}`;
    const consumer = python('consume_results.py', ['--amqp-url', vhost.url, '--queue', queue, '--symbols', symbol, '--count', String(BARS)]);
    const header = python('stream_ws.py', ['--url', base, '--symbols', symbol, '--count', String(BARS)], { GATEWAY_API_KEY: keys.viewer });
    const ticket = python('stream_ws.py', ['--url', base, '--symbols', symbol, '--count', String(BARS), '--ticket'], { GATEWAY_API_KEY: keys.viewer });
    running.push(consumer, header, ticket);
    await waitFor(() => header.stderr().includes('connected to') || header.proc.exitCode !== null, 60_000, 'stream_ws.py connected');
    await waitFor(() => ticket.stderr().includes('connected to') || ticket.proc.exitCode !== null, 60_000, 'stream_ws.py --ticket connected');
    const connection = await amqp.connect(vhost.url);
    try {
      await waitFor(async () => {
        const check = await connection.createChannel();
        check.on('error', () => undefined);
        const ok = await check.checkQueue(queue).catch(() => null);
        await check.close().catch(() => undefined);
        return ok !== null && ok.consumerCount === 1;
      }, 60_000, 'consume_results.py on its queue');
    } finally {
      await connection.close();
    }

    const publisher = python('publish_bars.py', ['--amqp-url', vhost.url, '--csv', csvOf(BARS, dir), '--symbol', symbol]);
    running.push(publisher);
    const published = await publisher.exited;
    expect({ code: published.code, stderr: publisher.stderr() }).toEqual({ code: 0, stderr: '' });
    expect(lines(publisher.stdout()).at(-1)).toBe(`published ${BARS}`);

    for (const p of [consumer, header, ticket]) {
      const exit = await p.exited;
      expect({ code: exit.code, stderr: exit.code === 0 ? '' : p.stderr() }).toEqual({ code: 0, stderr: '' });
    }
    const parse = (p: Spawned): IntegratedResult[] => lines(p.stdout()).map((l) => IntegratedResultSchema.parse(JSON.parse(l)));
    const fromQueue = parse(consumer);
    expect(fromQueue).toHaveLength(BARS);
    const tss = fromQueue.map((r) => r.ts);
    expect(tss).toEqual([...tss].sort((a, b) => a - b));
    expect(new Set(tss).size).toBe(BARS);
    expect(fromQueue.every((r) => r.symbol === symbol && r.exploring === undefined)).toBe(true);
    // The WebSocket carries the same results (each exactly as published).
    for (const ws of [header, ticket]) expect(parse(ws)).toEqual(fromQueue);
    expect(header.stderr()).toContain('with the Authorization header');
    // The gateway (contract 2) gives a single-use ticket: the client connects with it, not with the header.
    expect(ticket.stderr()).toMatch(/with a ticket/);
    expect(ticket.stderr()).not.toMatch(/has no POST \/api\/ws-ticket/);
  });
});
