import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayErrorSchema } from '../../schemas/gateway.schema';
import { createVhost, waitFor, type TestVhost } from '../fixtures/broker';
import { freePort, testKeys } from '../fixtures/gateway';
import { spawnProcess, type Spawned } from '../fixtures/processes';

jest.setTimeout(120_000);

// eslint-disable-next-line @typescript-eslint/no-require-imports
const WsCtor = require('ws') as new (url: string, options: { ca: string | Buffer; headers?: Record<string, string> }) => {
  on(event: 'open', fn: () => void): void;
  on(event: 'message', fn: (data: Buffer) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  close(): void;
};

/**
 * The gateway process on its own (PIPELINE_ROLES=gateway, as one container would run it), over TLS
 * with a certificate made by openssl here, at LOG_LEVEL=trace with its output captured: keys never
 * appear in it, and the per-key rate limit and body size limit answer 429 and 413.
 */
describe('gateway over TLS, run on its own', () => {
  let vhost: TestVhost;
  let dir: string;
  let gateway: Spawned;
  let port: number;
  let cert: Buffer;
  const keys = testKeys();

  const call = (method: string, path: string, key: string | null, body?: string): Promise<{ status: number; headers: Record<string, unknown>; json: unknown }> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path, method, ca: cert, servername: 'localhost', headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text === '' ? null : (JSON.parse(text) as unknown) }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  beforeAll(async () => {
    vhost = await createVhost('gateway-tls');
    dir = mkdtempSync(join(tmpdir(), 'gateway-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    cert = execFileSync('cat', [join(dir, 'cert.pem')]);
    port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const key of Object.keys(env)) if (/^(AMQP|REDIS|PIPELINE|HEALTH|GATEWAY)_/.test(key)) delete env[key];
    gateway = spawnProcess(process.execPath, ['--import', 'tsx', 'src/supervisor/worker-main.ts', 'gateway'], {
      ...env,
      AMQP_URL: vhost.url,
      LOG_LEVEL: 'trace',
      PIPELINE_ROLES: 'gateway',
      PIPELINE_DATA_DIR: dir,
      GATEWAY_PORT: String(port),
      GATEWAY_API_KEYS: keys.setting,
      GATEWAY_TLS_CERT: join(dir, 'cert.pem'),
      GATEWAY_TLS_KEY: join(dir, 'key.pem'),
      GATEWAY_RATE_LIMIT_PER_MINUTE: '5',
      GATEWAY_BODY_LIMIT_BYTES: '2048',
    });
    await waitFor(() => gateway.stdout().includes('gateway listening'), 60_000, 'gateway listening');
  });

  afterAll(async () => {
    gateway?.proc.kill('SIGTERM');
    await gateway?.exited;
    await vhost?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS and WSS only, with the given certificate', async () => {
    const res = await call('GET', '/api/openapi.json', keys.viewer);
    expect(res.status).toBe(200);
    expect((res.json as { openapi?: unknown }).openapi).toBe('3.1.0');
    await expect(fetch(`http://127.0.0.1:${port}/api/health`)).rejects.toThrow();
    const opened = await new Promise<boolean>((resolve) => {
      const ws = new WsCtor(`wss://localhost:${port}/ws?symbols=TLS`, { ca: cert, headers: { authorization: `Bearer ${keys.viewer}` } });
      ws.on('open', () => {
        ws.close();
        resolve(true);
      });
      ws.on('error', () => resolve(false));
    });
    expect(opened).toBe(true);
  });

  it('sends Strict-Transport-Security with TLS, besides the headers of every response, and refuses TLS 1.1', async () => {
    const res = await call('GET', '/api/openapi.json', keys.admin);
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
    const old = await new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/health', ca: cert, servername: 'localhost', maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => resolve('answered'));
      req.on('error', (err) => resolve(err.message));
      req.end();
    });
    expect(old).not.toBe('answered');
  });

  it('answers 413 for a body over GATEWAY_BODY_LIMIT_BYTES', async () => {
    const res = await call('POST', '/api/tactical/process', keys.admin, JSON.stringify({ symbol: 'X', bars: [], pad: 'x'.repeat(4096) }));
    expect(res.status).toBe(413);
    const body = GatewayErrorSchema.parse(res.json);
    expect(body.error).toBe('too_large');
    expect(body.message).toMatch(/GATEWAY_BODY_LIMIT_BYTES/);
  });

  it('answers 429 with Retry-After past the per-key rate limit, other keys unaffected', async () => {
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 7; i++) {
      const res = await call('GET', '/api/tactical/health', keys.operator);
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers['retry-after'];
    }
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).toEqual([429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await call('GET', '/api/tactical/health', keys.viewer)).status).toBe(200);
  });

  it('never writes a key to its log, even at trace level and for refused keys', async () => {
    await call('GET', '/api/results/X', 'wrong-key-that-is-long-enough');
    // A ticket is a credential too: it never reaches the log either.
    const ticket = ((await call('POST', '/api/ws-ticket', keys.admin)).json as { ticket: string }).ticket;
    await new Promise<void>((resolve) => {
      const ws = new WsCtor(`wss://localhost:${port}/ws?symbols=LOG&ticket=${ticket}`, { ca: cert });
      ws.on('open', () => {
        ws.close();
        resolve();
      });
      ws.on('error', () => resolve());
    });
    await call('POST', '/api/bars', keys.viewer, '[]');
    await new Promise<void>((resolve) => {
      const ws = new WsCtor(`wss://localhost:${port}/ws?symbols=LOG`, { ca: cert, headers: { authorization: `Bearer ${keys.operator}` } });
      ws.on('open', () => {
        ws.close();
        resolve();
      });
      ws.on('error', () => resolve());
    });
    gateway.proc.kill('SIGTERM');
    const { code } = await gateway.exited;
    expect(code).toBe(0);
    const output = gateway.stdout() + gateway.stderr();
    expect(output).toContain('"level":20'); // debug lines (one per request) were written
    expect(output).toContain('worker stopped');
    for (const k of [keys.viewer, keys.operator, keys.admin, 'wrong-key-that-is-long-enough', ticket]) expect(output).not.toContain(k);
  });
});
