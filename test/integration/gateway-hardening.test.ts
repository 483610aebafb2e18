import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as amqp from 'amqplib';
import { GatewayErrorSchema } from '../../schemas/gateway.schema';
import { EXCHANGE_BARS } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, waitFor, type TestVhost } from '../fixtures/broker';
import { freePort, httpCall, testKeys, tryUpgrade, type HttpAnswer, type WsClient } from '../fixtures/gateway';
import { spawnProcess, type Spawned } from '../fixtures/processes';

jest.setTimeout(300_000);

/**
 * The gateway contract 2 rules, each driven from outside against a gateway process run on its own
 * (PIPELINE_ROLES=gateway, as one container runs it), the way a security scanner would: the attack,
 * then the answer the rule promises. Behind GATEWAY_TRUST_PROXY=127.0.0.1, each test speaks for its
 * own client addresses through X-Forwarded-For, so the per-address limits of one test do not touch
 * another's.
 */

/** Environment of a gateway process: the test's broker vhost and nothing inherited of ours. */
function gatewayEnv(vhostUrl: string, dir: string, env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(base)) if (/^(AMQP|REDIS|PIPELINE|HEALTH|GATEWAY)_/.test(key)) delete base[key];
  return { ...base, AMQP_URL: vhostUrl, LOG_LEVEL: 'info', PIPELINE_ROLES: 'gateway', PIPELINE_DATA_DIR: dir, ...env };
}

function startGateway(env: NodeJS.ProcessEnv): Spawned {
  return spawnProcess(process.execPath, ['--import', 'tsx', 'src/supervisor/worker-main.ts', 'gateway'], env);
}

async function stopGateway(gateway: Spawned | undefined): Promise<number | null> {
  if (gateway === undefined) return null;
  gateway.proc.kill('SIGTERM');
  return (await gateway.exited).code;
}

/** Every error body seen, to check that none shows a file path. */
const errorBodies: string[] = [];
function remember(res: HttpAnswer): HttpAnswer {
  if (res.status >= 400) errorBodies.push(res.text);
  return res;
}

const CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/** A bar list as big as a call may be and one more. */
function bars(timeframe: '5m' | '30m', n: number): unknown[] {
  const one = { symbol: 'BIG', timeframe, ts: 0, open: 1, high: 2, low: 0.5, close: 1.5, volume: 1 };
  return Array.from({ length: n }, (_, i) => ({ ...one, ts: (i + 1) * (timeframe === '5m' ? 300_000 : 1_800_000) }));
}

describe('gateway hardening (contract 2), from outside', () => {
  let vhost: TestVhost;
  let dir: string;
  let gateway: Spawned;
  let port: number;
  let supervisor: Server;
  let supervisorHits = 0;
  const keys = testKeys();
  const spare = randomBytes(24).toString('hex');
  const capKeys = [randomBytes(24).toString('hex'), randomBytes(24).toString('hex'), randomBytes(24).toString('hex')];
  const sockets: WsClient[] = [];
  let address = 0;
  /** A fresh client address for X-Forwarded-For. */
  const nextIp = (): string => `10.0.${Math.floor(++address / 250)}.${(address % 250) + 1}`;
  const call = async (method: string, path: string, options: { key?: string | null; body?: unknown; ip?: string; localAddress?: string } = {}): Promise<HttpAnswer> =>
    remember(await httpCall(port, method, path, { key: options.key ?? null, body: options.body, headers: { 'x-forwarded-for': options.ip ?? nextIp() }, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) }));
  const error = (res: HttpAnswer): { error: string; message: string } => GatewayErrorSchema.parse(res.json);

  beforeAll(async () => {
    vhost = await createVhost('gateway-hardening');
    dir = mkdtempSync(join(tmpdir(), 'gateway-hardening-'));
    // A stand-in for the supervisor's /health and /metrics: counts how often it is asked.
    supervisor = createServer((req, res) => {
      if (req.url === '/health') {
        supervisorHits++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', workers: { gateway: { pid: 4242, consuming: true } } }));
      } else res.writeHead(200, { 'content-type': 'text/plain' }).end('');
    });
    const healthPort = await freePort();
    await new Promise<void>((resolve) => supervisor.listen(healthPort, '127.0.0.1', resolve));
    port = await freePort();
    gateway = startGateway(
      gatewayEnv(vhost.url, dir, {
        HEALTH_PORT: String(healthPort),
        GATEWAY_PORT: String(port),
        GATEWAY_API_KEYS: `${keys.setting},viewer:${spare},${capKeys.map((k) => `viewer:${k}`).join(',')}`,
        GATEWAY_TRUST_PROXY: '127.0.0.1',
        GATEWAY_ANON_RATE_LIMIT_PER_MINUTE: '20',
        GATEWAY_RATE_LIMIT_PER_MINUTE: '300',
        GATEWAY_WS_MAX_PER_KEY: '2',
        GATEWAY_WS_MAX_TOTAL: '3',
        GATEWAY_WS_PING_MS: '1000',
        GATEWAY_WS_TICKET_SECONDS: '2',
        GATEWAY_REQUEST_TIMEOUT_MS: '2000',
        GATEWAY_PROCESS_CONCURRENCY: '1',
        GATEWAY_PROCESS_TIMEOUT_MS: '60000',
      }),
    );
    await waitFor(() => gateway.stdout().includes('gateway listening') || gateway.proc.exitCode !== null, 120_000, 'gateway listening');
    if (gateway.proc.exitCode !== null) throw new Error(`the gateway exited at start: ${gateway.stderr()}`);
  });

  afterAll(async () => {
    for (const s of sockets) s.terminate();
    await stopGateway(gateway);
    await new Promise((resolve) => supervisor?.close(resolve));
    await vhost?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('1. limits before auth', () => {
    it('limits calls without a valid key per client address before the key is checked: 401 up to the limit, then 429 with Retry-After', async () => {
      const attacker = nextIp();
      const statuses: number[] = [];
      let last: HttpAnswer | null = null;
      for (let i = 0; i < 25; i++) {
        last = await call('GET', '/api/results/X', { key: i % 2 === 0 ? null : 'guessed-key-guessed-key-0123456789', ip: attacker });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([...Array<number>(20).fill(401), ...Array<number>(5).fill(429)]);
      expect(Number(last?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(error(last!).error).toBe('rate_limited');
      // Another address is not limited; a valid key from the limited address is limited by its key, not the address.
      expect((await call('GET', '/api/results/X', { ip: nextIp() })).status).toBe(401);
      expect((await call('GET', '/api/results/X', { key: keys.viewer, ip: attacker })).status).toBe(200);
      // /api/health (probes) is not counted.
      expect((await call('GET', '/api/health', { ip: attacker })).status).toBe(200);
    });

    it('believes X-Forwarded-For only from GATEWAY_TRUST_PROXY: a client on 127.0.0.2 cannot spread its calls over made-up addresses', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 22; i++) statuses.push((await call('GET', '/api/results/X', { ip: nextIp(), localAddress: '127.0.0.2' })).status);
      expect(statuses).toEqual([...Array<number>(20).fill(401), 429, 429]);
    });

    it('checks the per-key limit before the role: a viewer hammering an admin route gets 403, then 429', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 302; i++) statuses.push((await call('POST', '/api/models/promote', { key: spare, body: { version: 'v0001' } })).status);
      expect(statuses.slice(0, 300).every((s) => s === 403)).toBe(true);
      expect(statuses.slice(300)).toEqual([429, 429]);
    });
  });

  describe('3. bounded process endpoints', () => {
    it('answers 400 naming the limit past 500 strategic or 2,000 tactical bars, before reading them', async () => {
      const strategic = await call('POST', '/api/strategic/process', { key: keys.viewer, body: { symbol: 'BIG', bars: bars('30m', 501) } });
      expect([strategic.status, error(strategic).error]).toEqual([400, 'bad_request']);
      expect(error(strategic).message).toMatch(/at most 500/);
      const tactical = await call('POST', '/api/tactical/process', { key: keys.viewer, body: { symbol: 'BIG', bars: bars('5m', 2001) } });
      expect([tactical.status, error(tactical).error]).toEqual([400, 'bad_request']);
      expect(error(tactical).message).toMatch(/at most 2000/);
    });

    it('refuses calls past the pool and its queue (1 + 4 here) with 503 and Retry-After, while /api/health keeps answering', async () => {
      const heavy = { symbol: 'SAT', bars: generateSyntheticMarket({ seed: 7, symbol: 'SAT', bars: 2000 }).bars };
      const answers: HttpAnswer[] = [];
      const calls = Array.from({ length: 12 }, () => call('POST', '/api/tactical/process', { key: keys.operator, body: heavy }).then((r) => answers.push(r)));
      await waitFor(() => answers.some((a) => a.status === 503), 120_000, 'a refused call');
      // The pool is full now: health answers (it never waits for the pool).
      const health = await call('GET', '/api/health');
      expect([health.status, health.json]).toEqual([200, { status: 'ok' }]);
      await Promise.all(calls);
      const refused = answers.filter((a) => a.status === 503);
      expect(answers.filter((a) => a.status !== 200 && a.status !== 503)).toEqual([]);
      expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
      for (const r of refused) {
        expect(error(r).error).toBe('busy');
        expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      }
    });
  });

  describe('5. capped, live, push-only sockets', () => {
    const ws = (key: string): Promise<{ status: number; ws: WsClient }> => tryUpgrade(`ws://127.0.0.1:${port}/ws?symbols=CAP`, { authorization: `Bearer ${key}` });

    it('answers 429 on the upgrade past the per-key cap and past the total cap', async () => {
      const [a, b, c] = capKeys as [string, string, string];
      const opened = [await ws(a), await ws(a)];
      sockets.push(...opened.map((o) => o.ws));
      expect(opened.map((o) => o.status)).toEqual([101, 101]);
      expect((await ws(a)).status).toBe(429); // per key
      const third = await ws(b);
      sockets.push(third.ws);
      expect(third.status).toBe(101);
      expect((await ws(c)).status).toBe(429); // in all
      for (const o of [...opened, third]) o.ws.close(1000);
      // Closed sockets give their slots back.
      await waitFor(async () => {
        const next = await ws(c);
        next.ws.terminate();
        return next.status === 101;
      }, 30_000, 'a slot after the sockets closed');
    });

    it('closes a socket that sends a data frame with 1008', async () => {
      const { status, ws: socket } = await ws(keys.viewer);
      sockets.push(socket);
      expect(status).toBe(101);
      const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
      (socket as unknown as { send(data: string): void }).send('subscribe me to everything');
      expect(await closed).toBe(1008);
    });

    it('pings every GATEWAY_WS_PING_MS and closes a client that never answers', async () => {
      // A raw client: the upgrade by hand, then it reads frames and never sends a pong.
      const socket: Socket = connect(port, '127.0.0.1');
      let received = Buffer.alloc(0);
      let closed = false;
      socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
      socket.on('close', () => (closed = true));
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        `GET /ws?symbols=PING HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${keys.admin}\r\n\r\n`,
      );
      await waitFor(() => received.toString('latin1').startsWith('HTTP/1.1 101'), 30_000, 'the upgrade');
      await waitFor(() => closed, 30_000, 'the gateway to close the silent client');
      const frames = received.subarray(received.indexOf('\r\n\r\n') + 4);
      expect(frames[0]).toBe(0x89); // a ping came first
      socket.destroy();
    });
  });

  describe('4. no keys in URLs', () => {
    const ticket = async (key: string | null): Promise<HttpAnswer> => call('POST', '/api/ws-ticket', { key });
    const wsUrl = (query: string): string => `ws://127.0.0.1:${port}/ws?symbols=TICKET&${query}`;

    it('gives viewers a single-use ticket that opens one socket once', async () => {
      const res = await ticket(keys.viewer);
      expect(res.status).toBe(200);
      const body = res.json as { ticket: string; expires_in: number };
      expect(body.expires_in).toBe(2); // GATEWAY_WS_TICKET_SECONDS here; 30 by default
      expect(body.ticket).not.toContain(keys.viewer);
      const first = await tryUpgrade(wsUrl(`ticket=${body.ticket}`));
      sockets.push(first.ws);
      expect(first.status).toBe(101);
      first.ws.close(1000);
      expect((await tryUpgrade(wsUrl(`ticket=${body.ticket}`))).status).toBe(401);
      expect((await tryUpgrade(wsUrl('ticket=made-up-ticket'))).status).toBe(401);
      expect((await ticket(null)).status).toBe(401);
    });

    it('refuses an expired ticket with 401', async () => {
      const issuedAt = Date.now();
      const body = (await ticket(keys.viewer)).json as { ticket: string; expires_in: number };
      await waitFor(() => Date.now() > issuedAt + body.expires_in * 1000 + 500, 10_000, 'the ticket lifetime to pass');
      expect((await tryUpgrade(wsUrl(`ticket=${body.ticket}`))).status).toBe(401);
    });

    it('refuses ?token=<key> with 401, even a valid key, and takes Authorization on the upgrade', async () => {
      expect((await tryUpgrade(wsUrl(`token=${keys.viewer}`))).status).toBe(401);
      const header = await tryUpgrade(wsUrl(''), { authorization: `Bearer ${keys.viewer}` });
      sockets.push(header.ws);
      expect(header.status).toBe(101);
      header.ws.close(1000);
    });
  });

  describe('6. health that says little to strangers', () => {
    it('answers only the status without a key, the details with a viewer key, and asks the supervisor at most once a second', async () => {
      const anonymous = await call('GET', '/api/health');
      expect([anonymous.status, anonymous.json]).toEqual([200, { status: 'ok' }]);
      const viewer = await call('GET', '/api/health', { key: keys.viewer });
      expect(viewer.json).toEqual({ status: 'ok', workers: { gateway: { pid: 4242, consuming: true } } });
      // A flood of health calls (and stage health, which reads the same answer).
      const hitsBefore = supervisorHits;
      const started = Date.now();
      for (let round = 0; round < 20; round++) {
        const batch = Array.from({ length: 10 }, (_, i) => call('GET', i === 0 ? '/api/tactical/health' : '/api/health', { key: i === 0 ? keys.viewer : null }));
        expect((await Promise.all(batch)).every((r) => r.status === 200)).toBe(true);
      }
      const seconds = (Date.now() - started) / 1000;
      expect(supervisorHits - hitsBefore).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    });
  });

  describe('7. bounded errors and timeouts', () => {
    it('lists at most 20 invalid bars, then truncated, in a body under 64 KiB, whatever the request holds', async () => {
      const res = await call('POST', '/api/bars', { key: keys.operator, body: Array.from({ length: 10_000 }, () => ({})) });
      expect(res.status).toBe(400);
      const body = res.json as { invalid: unknown[]; truncated?: boolean };
      expect(body.invalid).toHaveLength(20);
      expect(body.truncated).toBe(true);
      expect(Buffer.byteLength(res.text)).toBeLessThan(65_536);
      // Bars wrong in every field, with long unknown field names: still 20 listed, still small.
      const worst = Array.from({ length: 3000 }, (_, i) => ({ [`${'x'.repeat(150)}${i}`]: 1, symbol: 5, timeframe: 'bad', ts: 'x', open: 'x', high: 'x', low: 'x', close: 'x', volume: 'x' }));
      const bad = await call('POST', '/api/bars', { key: keys.operator, body: worst });
      expect([bad.status, (bad.json as { invalid: unknown[] }).invalid.length, (bad.json as { truncated?: boolean }).truncated]).toEqual([400, 20, true]);
      expect(Buffer.byteLength(bad.text)).toBeLessThan(65_536);
      // A field name of 30,000 characters is not echoed whole.
      const named = await call('POST', '/api/tactical/process', { key: keys.viewer, body: { symbol: 'X', bars: [], ['k'.repeat(30_000)]: 1 } });
      expect(named.status).toBe(400);
      expect(Buffer.byteLength(named.text)).toBeLessThan(65_536);
      expect(named.text).not.toContain('k'.repeat(1000));
    });

    it('closes the connection of a body trickled for longer than GATEWAY_REQUEST_TIMEOUT_MS (2 s here), and of headers trickled as long', async () => {
      const trickle = async (head: string, byte: string): Promise<string> => {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        let closed = false;
        socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
        socket.on('close', () => (closed = true));
        socket.on('error', () => undefined);
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        socket.write(head);
        // The attack: one byte every 200 ms, for as long as the server keeps the connection.
        const timer = setInterval(() => {
          if (!closed) socket.write(byte);
        }, 200);
        try {
          await waitFor(() => closed, 60_000, 'the connection to be closed');
        } finally {
          clearInterval(timer);
          socket.destroy();
        }
        return text;
      };
      const body = await trickle(
        `POST /api/bars HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.operator}\r\nX-Forwarded-For: ${nextIp()}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[`,
        ' ',
      );
      expect(body === '' || body.startsWith('HTTP/1.1 408')).toBe(true);
      const headers = await trickle(`GET /api/health HTTP/1.1\r\nHost: x\r\n`, 'X');
      expect(headers === '' || headers.startsWith('HTTP/1.1 408') || headers.startsWith('HTTP/1.1 431')).toBe(true);
    });
  });

  describe('9. headers', () => {
    it('sends the Content-Security-Policy, nosniff and no-referrer on every response, no-store on /api/*, and no HSTS without TLS', async () => {
      for (const path of ['/', '/assets/page.js', '/api/health', '/api/openapi.json', '/no/such/route']) {
        const res = await call('GET', path, { key: path === '/api/openapi.json' ? keys.viewer : null });
        expect([path, res.headers['content-security-policy']]).toEqual([path, CSP]);
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['referrer-policy']).toBe('no-referrer');
        expect(res.headers['strict-transport-security']).toBeUndefined();
        expect([path, path.startsWith('/api/') ? res.headers['cache-control'] : 'no-store']).toEqual([path, 'no-store']);
      }
      // The page has no inline script or style for the policy to block.
      const page = await call('GET', '/');
      expect(page.text).not.toMatch(/<script>|<style>|style="/);
    });
  });
});

describe('gateway hardening: the audit, promotions and deadlines', () => {
  let vhost: TestVhost;
  let dir: string;
  let auditFile: string;
  let gateway: Spawned | undefined;
  let port: number;
  let connection: amqp.ChannelModel;
  let channel: amqp.Channel;
  let barsQueue: string;
  const keys = testKeys();
  let address = 0;
  const nextIp = (): string => `10.9.${Math.floor(++address / 250)}.${(address % 250) + 1}`;
  const call = async (method: string, path: string, options: { key?: string | null; body?: unknown; ip?: string } = {}): Promise<HttpAnswer> =>
    remember(await httpCall(port, method, path, { key: options.key ?? null, body: options.body, headers: { 'x-forwarded-for': options.ip ?? nextIp() } }));
  const lines = (): Record<string, unknown>[] =>
    [auditFile, `${auditFile}.1`, `${auditFile}.2`]
      .filter((f) => existsSync(f) && lstatSync(f).isFile())
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>));
  const floodIp = '10.66.0.1';
  const FLOOD = 300;
  const UPGRADES = 5;

  beforeAll(async () => {
    vhost = await createVhost('gateway-audit');
    dir = mkdtempSync(join(tmpdir(), 'gateway-audit-'));
    auditFile = join(dir, 'audit', 'gateway-audit.jsonl');
    port = await freePort();
    gateway = startGateway(
      gatewayEnv(vhost.url, dir, {
        GATEWAY_PORT: String(port),
        GATEWAY_API_KEYS: keys.setting,
        GATEWAY_TRUST_PROXY: '127.0.0.1',
        GATEWAY_AUDIT_FILE: auditFile,
        GATEWAY_AUDIT_MAX_BYTES: '4096',
        GATEWAY_AUDIT_KEEP_FILES: '2',
        GATEWAY_PROCESS_TIMEOUT_MS: '100',
      }),
    );
    await waitFor(() => gateway!.stdout().includes('gateway listening') || gateway!.proc.exitCode !== null, 120_000, 'gateway listening');
    connection = await amqp.connect(vhost.url);
    channel = await connection.createChannel();
    barsQueue = (await channel.assertQueue('', { exclusive: true })).queue;
    await channel.bindQueue(barsQueue, EXCHANGE_BARS, '#');
  });

  afterAll(async () => {
    await connection?.close().catch(() => undefined);
    await stopGateway(gateway);
    await vhost?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('2. writes each change with ip, request id and what changed, rotating the file by size and keeping the last files', async () => {
    const ip = nextIp();
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) {
      const market = generateSyntheticMarket({ seed: 100 + i, symbol: `AUD${i}`, bars: 2 }).bars;
      const res = await call('POST', '/api/bars', { key: keys.operator, body: market, ip });
      expect(res.status).toBe(202);
      ids.push(String(res.headers['x-request-id']));
    }
    const last = ids[ids.length - 1];
    await waitFor(() => lines().some((l) => l.request_id === last && l.outcome === '202 ok'), 10_000, 'the last outcome line');
    const mine = lines().filter((l) => l.request_id === last);
    expect(mine.map((l) => [l.outcome, l.ip, l.role, l.change])).toEqual([
      ['started', ip, 'operator', { bars: 2, symbols: ['AUD23'] }],
      ['202 ok', ip, 'operator', { accepted: 2 }],
    ]);
    const files = readdirSync(join(dir, 'audit')).sort();
    expect(files).toEqual(['gateway-audit.jsonl', 'gateway-audit.jsonl.1', 'gateway-audit.jsonl.2']);
    for (const f of files) expect(statSync(join(dir, 'audit', f)).size).toBeLessThanOrEqual(4096);
  });

  it('2. records a flood of denied calls as summary lines per address, never a line each', async () => {
    const bar = generateSyntheticMarket({ seed: 1, symbol: 'FLOOD', bars: 1 }).bars[0];
    const statuses = new Map<number, number>();
    for (let i = 0; i < FLOOD; i++) {
      const res = await call('POST', '/api/bars', { key: i % 3 === 0 ? keys.viewer : null, body: bar, ip: floodIp });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
    // Anonymous calls: 401 up to the default 60 a minute, then 429; the viewer's: 403.
    expect([...statuses.keys()].sort()).toEqual([401, 403, 429]);
    // Refused WebSocket upgrades are denied calls too.
    for (let i = 0; i < UPGRADES; i++) expect((await tryUpgrade(`ws://127.0.0.1:${port}/ws?symbols=A`, { 'x-forwarded-for': floodIp })).status).toBe(429);
    // At most one summary line so far (a minute may have turned during the flood), none per call.
    // (The file keeps at least 8 KiB of lines, more than the rest of these tests write after this.)
    expect(lines().filter((l) => l.ip === floodIp).length).toBeLessThanOrEqual(1);
    expect(lines().filter((l) => l.ip === floodIp && l.outcome !== 'denied')).toEqual([]);
  });

  it('2. answers 503 and changes nothing when the audit line cannot be written', async () => {
    const lost = generateSyntheticMarket({ seed: 5, symbol: 'UNAUDITED', bars: 1 }).bars[0];
    const marker = generateSyntheticMarket({ seed: 6, symbol: 'AUDITED', bars: 1 }).bars[0];
    // The audit volume is full: writes fail with ENOSPC.
    rmSync(auditFile);
    symlinkSync('/dev/full', auditFile);
    let refused: HttpAnswer;
    let promote: HttpAnswer;
    try {
      refused = await call('POST', '/api/bars', { key: keys.operator, body: lost });
      promote = await call('POST', '/api/models/promote', { key: keys.admin, body: { version: 'v0001' } });
    } finally {
      rmSync(auditFile);
    }
    expect([refused.status, (refused.json as { error: string }).error]).toEqual([503, 'audit_unavailable']);
    expect(promote.status).toBe(503);
    expect((await call('POST', '/api/bars', { key: keys.operator, body: marker })).status).toBe(202);
    // The queue bound to market.bars holds the marker and nothing of the refused call.
    const seen: string[] = [];
    await waitFor(async () => {
      const m = await channel.get(barsQueue, { noAck: true });
      if (m !== false) seen.push((JSON.parse(m.content.toString()) as { symbol: string }).symbol);
      return seen.includes('AUDITED');
    }, 30_000, 'the marker bar');
    expect(seen).not.toContain('UNAUDITED');
  });

  it('8. promotes by listed version only: 400 unknown_version for anything else, with no path in the message', async () => {
    for (const version of ['../../../../tmp/x', '.tmp-123', 'v9999', 'v1', `${dir}/models/versions/v0001`, 'v0001/../v0001']) {
      const res = await call('POST', '/api/models/promote', { key: keys.admin, body: { version } });
      expect([version, res.status, (res.json as { error: string }).error]).toEqual([version, 400, 'unknown_version']);
      expect((res.json as { message: string }).message).not.toMatch(/\//);
    }
    const rollback = await call('POST', '/api/models/rollback', { key: keys.admin, body: { version: '../v0001' } });
    expect([rollback.status, (rollback.json as { error: string }).error]).toEqual([400, 'unknown_version']);
    const ok = await call('POST', '/api/models/promote', { key: keys.admin, body: { version: 'v0001' } });
    expect([ok.status, ok.json]).toEqual([200, { promoted: 'v0001' }]);
  });

  it('3. stops a process call past GATEWAY_PROCESS_TIMEOUT_MS (100 ms here) with 504', async () => {
    const market = generateSyntheticMarket({ seed: 9, symbol: 'SLOW', bars: 2000 }).bars;
    const res = await call('POST', '/api/tactical/process', { key: keys.viewer, body: { symbol: 'SLOW', bars: market } });
    expect([res.status, (res.json as { error: string }).error]).toEqual([504, 'timeout']);
    expect((res.json as { message: string }).message).toMatch(/GATEWAY_PROCESS_TIMEOUT_MS/);
  });

  it('8. shows no file path in any error message of these tests', () => {
    expect(errorBodies.length).toBeGreaterThan(50);
    for (const text of errorBodies) {
      const message = (JSON.parse(text) as { message?: string }).message ?? '';
      expect(message).not.toContain(dir);
      expect(message).not.toMatch(/\/(tmp|work|home|root|var|usr|opt)\//);
    }
  });

  it('2. writes the summary of the flood when it stops: one line per address and minute, with the count', async () => {
    const code = await stopGateway(gateway);
    gateway = undefined;
    expect(code).toBe(0);
    const flood = lines().filter((l) => l.ip === floodIp);
    expect(flood.length).toBeGreaterThanOrEqual(1);
    expect(flood.length).toBeLessThanOrEqual(2);
    expect(flood.every((l) => l.outcome === 'denied')).toBe(true);
    expect(flood.reduce((n, l) => n + (l.count as number), 0)).toBe(FLOOD + UPGRADES);
  });
});

describe('10. keys that are keys', () => {
  it('stops the start with exit 2 naming a weak key by its position, never showing it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gateway-keys-'));
    try {
      for (const weak of ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'short-but-random-9f3a', 'ab12ab12ab12ab12ab12ab12ab12']) {
        const started = startGateway(gatewayEnv('amqp://guest:guest@127.0.0.1:5672/%2F', dir, { GATEWAY_PORT: '0', GATEWAY_API_KEYS: `viewer:${randomBytes(24).toString('hex')},admin:${weak}` }));
        const { code } = await started.exited;
        expect(code).toBe(2);
        const output = started.stdout() + started.stderr();
        expect(output).toMatch(/GATEWAY_API_KEYS: the key of entry 2 is too weak/);
        expect(output).not.toContain(weak);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
