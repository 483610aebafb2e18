import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { EXCHANGE_INTERNAL, routingKeys } from '../../src/broker/topology';
import { readFileSync, existsSync } from 'node:fs';
import type { Bar30m } from '../../schemas/bar.schema';
import type { z } from 'zod';
import {
  BarsRejectedSchema,
  GatewayErrorSchema,
  GatewayHealthSchema,
  StageHealthSchema,
  StrategicProcessResponseSchema,
  type StageHealth,
} from '../../schemas/gateway.schema';
import { AdminModelResponseSchema } from '../../src/gateway/routes';
import type { IntegratedResult } from '../../schemas/integrated-result.schema';
import { resampleStep, type ResampleState } from '../../src/flows/resample-flow';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, waitFor, type TestVhost } from '../fixtures/broker';
import { freePort, openWs, testKeys, type WsClient } from '../fixtures/gateway';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(300_000);

/** The parts of the OpenAPI document the test reads. */
interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { $ref?: string } } | undefined> }; 'x-required-role'?: string } | undefined> | undefined>;
  components: { schemas: Record<string, { properties?: Record<string, { minItems?: number } | undefined>; required?: string[] } | undefined> };
}

describe('gateway (HTTP and WebSocket) on a running pipeline', () => {
  let vhost: TestVhost;
  let pipeline: TestPipeline;
  let base: string;
  let wsBase: string;
  let auditFile: string;
  const keys = testKeys();
  const sockets: WsClient[] = [];

  const call = async (method: string, path: string, key: string | null, body?: unknown): Promise<{ status: number; json: unknown; text: string; headers: Headers }> => {
    const headers: Record<string, string> = {};
    if (key !== null) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    return { status: res.status, json, text, headers: res.headers };
  };
  /** A response body read through its contract schema (a body that does not fit fails the test). */
  const body = <T>(schema: z.ZodType<T>, res: { json: unknown }): T => schema.parse(res.json);
  const error = (res: { json: unknown }): z.infer<typeof GatewayErrorSchema> => body(GatewayErrorSchema, res);
  const results = async (symbol: string, limit = 1000): Promise<IntegratedResult[]> => (await call('GET', `/api/results/${encodeURIComponent(symbol)}?limit=${limit}`, keys.viewer)).json as IntegratedResult[];
  const auditLines = (): Record<string, unknown>[] =>
    existsSync(auditFile) ? readFileSync(auditFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) : [];

  beforeAll(async () => {
    vhost = await createVhost('gateway');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    wsBase = `ws://127.0.0.1:${port}`;
    auditFile = `/tmp/pipeline-test-data/gateway-audit-${randomUUID()}.jsonl`;
    pipeline = await startPipeline(vhost.url, {
      GATEWAY_PORT: String(port),
      GATEWAY_API_KEYS: keys.setting,
      GATEWAY_AUDIT_FILE: auditFile,
      GATEWAY_RATE_LIMIT_PER_MINUTE: '100000',
    });
    await waitHealthy(pipeline);
  });

  afterAll(async () => {
    for (const s of sockets) s.terminate();
    await pipeline?.stop();
    await clearRedis(pipeline.prefix);
    await vhost?.dispose();
  });

  const ROUTES: [string, string, unknown?][] = [
    ['GET', '/api/strategic/health'],
    ['GET', '/api/tactical/health'],
    ['POST', '/api/strategic/process', { symbol: 'X', bars: [] }],
    ['POST', '/api/tactical/process', { symbol: 'X', bars: [] }],
    ['GET', '/api/results/X'],
    ['POST', '/api/bars', []],
    ['POST', '/api/models/promote', { version: 'v' }],
    ['POST', '/api/models/rollback', {}],
    ['POST', '/api/dead-letters/replay', {}],
    ['POST', '/api/ws-ticket'],
    ['GET', '/api/openapi.json'],
  ];

  it('answers /api/health with only the status without a key and the supervisor health with one, and 401 on every other route without a key', async () => {
    const anonymous = await call('GET', '/api/health', null);
    expect([anonymous.status, anonymous.json]).toEqual([200, { status: 'ok' }]);
    const health = await call('GET', '/api/health', keys.viewer);
    expect(health.status).toBe(200);
    const healthBody = body(GatewayHealthSchema, health);
    expect(healthBody.status).toBe('ok');
    expect(Object.keys(healthBody.workers as Record<string, unknown>)).toEqual(expect.arrayContaining(['strategic', 'tactical', 'gateway']));
    for (const [method, path, body] of ROUTES) {
      const res = await call(method, path, null, body);
      expect([path, res.status, error(res).error]).toEqual([path, 401, 'unauthorized']);
      expect(error(res).message).toMatch(/Authorization: Bearer/);
    }
    // An unknown key is 401 too.
    const unknown = await call('GET', '/api/tactical/health', 'not-a-configured-key-0000');
    expect([unknown.status, error(unknown).error]).toEqual([401, 'unauthorized']);
    // The WebSocket refuses the upgrade without a key.
    const status = await new Promise<number>((resolve) => {
      const ws = openWs(`${wsBase}/ws?symbols=A`);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode);
        ws.terminate();
      });
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(401);
  });

  it('answers 403 when the role is too low', async () => {
    const cases: [string, string, string, unknown][] = [
      [keys.viewer, 'POST', '/api/bars', []],
      [keys.viewer, 'POST', '/api/models/promote', { version: 'v' }],
      [keys.operator, 'POST', '/api/models/promote', { version: 'v' }],
      [keys.operator, 'POST', '/api/models/rollback', {}],
      [keys.operator, 'POST', '/api/dead-letters/replay', {}],
    ];
    for (const [key, method, path, body] of cases) {
      const res = await call(method, path, key, body);
      expect([path, res.status, error(res).error]).toEqual([path, 403, 'forbidden']);
      expect(error(res).message).toMatch(/needs the (operator|admin) role/);
    }
  });

  it('answers 400 with the reason for bad bodies and queries', async () => {
    const bar = { symbol: 'BAD', timeframe: '30m', ts: 1_800_000, open: 1, high: 2, low: 0.5, close: 1.5, volume: 1 };
    const few = await call('POST', '/api/strategic/process', keys.viewer, { symbol: 'BAD', bars: [bar] });
    expect([few.status, error(few).error]).toEqual([400, 'bad_request']);
    expect(error(few).message).toMatch(/at least 49/);
    const wrongBar = await call('POST', '/api/tactical/process', keys.viewer, { symbol: 'BAD', bars: [{ ...bar, timeframe: '5m', high: 0.1 }] });
    expect(wrongBar.status).toBe(400);
    expect(error(wrongBar).issues).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'bars[0].high' })]));
    const unordered = await call('POST', '/api/tactical/process', keys.viewer, {
      symbol: 'BAD',
      bars: [{ ...bar, timeframe: '5m', ts: 600_000 }, { ...bar, timeframe: '5m', ts: 300_000 }],
    });
    expect(unordered.status).toBe(400);
    expect(error(unordered).message).toMatch(/oldest first/);
    const limit = await call('GET', '/api/results/BAD?limit=5000', keys.viewer);
    expect(limit.status).toBe(400);
    expect(error(limit).message).toMatch(/limit must be an integer from 1 to 1000/);
    const notJson = await call('POST', '/api/bars', keys.operator, '{"symbol":');
    expect([notJson.status, error(notJson).error]).toEqual([400, 'bad_request']);
    const promote = await call('POST', '/api/models/promote', keys.admin, {});
    expect(promote.status).toBe(400);
    expect(error(promote).issues?.[0]?.path).toBe('version');
  });

  it('rejects a batch of bars with any invalid bar, listing each, and publishes none of it', async () => {
    const good = generateSyntheticMarket({ seed: 3, symbol: 'REJECTED', bars: 3 }).bars;
    const res = await call('POST', '/api/bars', keys.operator, [good[0], { ...good[1], low: -1 }, good[2], { symbol: 'REJECTED' }]);
    expect(res.status).toBe(400);
    const rejected = body(BarsRejectedSchema, res);
    expect(rejected.invalid.map((i) => i.index)).toEqual([1, 3]);
    expect(rejected.invalid[0]?.reasons.join(' ')).toMatch(/low/);
    // A later valid bar of another symbol comes through the same single queue: once its result is
    // there, a published REJECTED bar would have produced its result before it.
    const marker = generateSyntheticMarket({ seed: 4, symbol: 'MARKER', bars: 1 }).bars;
    expect((await call('POST', '/api/bars', keys.operator, marker[0])).status).toBe(202);
    await waitFor(async () => (await results('MARKER')).length === 1, 60_000, 'MARKER result');
    expect(await results('REJECTED')).toEqual([]);
  });

  it('publishes bars and streams every result to each WebSocket client in ts order, exactly as published', async () => {
    const bars = generateSyntheticMarket({ seed: 11, symbol: 'WS.A', bars: 300 }).bars;
    const other = generateSyntheticMarket({ seed: 12, symbol: 'WS-B', bars: 50 }).bars;
    const received: string[][] = [[], [], []];
    const opened: Promise<void>[] = [];
    // A browser's way (a single-use ticket) and a program's (Authorization on the upgrade).
    const ticket = async (key: string): Promise<{ ticket: string; expires_in: number }> => (await call('POST', '/api/ws-ticket', key)).json as { ticket: string; expires_in: number };
    const tickets = [await ticket(keys.viewer), await ticket(keys.operator)];
    expect(tickets.map((t) => t.expires_in)).toEqual([30, 30]);
    const clients = [
      openWs(`${wsBase}/ws?symbols=WS.A`, { authorization: `Bearer ${keys.viewer}` }),
      openWs(`${wsBase}/ws?symbols=WS.A,WS-B&ticket=${tickets[0]!.ticket}`),
      openWs(`${wsBase}/ws?symbols=WS-B&ticket=${tickets[1]!.ticket}`),
    ];
    clients.forEach((ws, i) => {
      sockets.push(ws);
      ws.on('message', (data) => received[i]!.push(data.toString('utf8')));
      opened.push(new Promise((resolve, reject) => {
        ws.on('open', () => resolve());
        ws.on('error', reject);
      }));
    });
    await Promise.all(opened);
    const res = await call('POST', '/api/bars', keys.operator, [...bars, ...other]);
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ accepted: 350 });
    await waitFor(() => received[0]!.length >= 300 && received[1]!.length >= 350 && received[2]!.length >= 50, 120_000, 'all frames');
    const ts = (frames: string[], symbol: string) => frames.map((f) => JSON.parse(f) as IntegratedResult).filter((r) => r.symbol === symbol).map((r) => r.ts);
    expect(ts(received[0]!, 'WS.A')).toEqual(bars.map((b) => b.ts));
    expect(ts(received[1]!, 'WS.A')).toEqual(bars.map((b) => b.ts));
    expect(ts(received[1]!, 'WS-B')).toEqual(other.map((b) => b.ts));
    expect(ts(received[2]!, 'WS-B')).toEqual(other.map((b) => b.ts));
    expect(received[0]!.length).toBe(300);
    // /api/results serves the same texts, oldest first; limit keeps the latest N.
    const stored = await call('GET', '/api/results/WS.A?limit=1000', keys.viewer);
    expect(stored.text).toBe(`[${received[0]!.join(',')}]`);
    const latest = await results('WS.A', 10);
    expect(latest.map((r) => r.ts)).toEqual(bars.slice(-10).map((b) => b.ts));
    const dflt = (await call('GET', '/api/results/WS.A', keys.viewer)).json as IntegratedResult[];
    expect(dflt).toHaveLength(100);
  });

  it('a promotion through the API is announced to running workers, as the CLI does', async () => {
    const connection = await amqp.connect(vhost.url);
    try {
      const channel = await connection.createChannel();
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(queue, EXCHANGE_INTERNAL, routingKeys.model());
      const seen: string[] = [];
      await channel.consume(queue, (m) => m !== null && seen.push(m.properties.messageId as string), { noAck: true });
      // A fresh pipeline's registry holds the shipped model as v0001, promoted.
      const res = await call('POST', '/api/models/promote', keys.admin, { version: 'v0001' });
      expect([res.status, body(AdminModelResponseSchema, res).promoted]).toEqual([200, 'v0001']);
      await waitFor(() => seen.includes('model:v0001'), 10_000, 'the model announcement');
    } finally {
      await connection.close();
    }
  });

  it('writes a started line before a change and an outcome line after it, with ip, request id and what changed, and no line per denied call', async () => {
    const bar = generateSyntheticMarket({ seed: 21, symbol: 'AUDIT', bars: 1 }).bars[0]!;
    await call('GET', '/api/results/AUDIT', keys.viewer); // reads are not audited
    const accepted = await call('POST', '/api/bars', keys.operator, bar);
    const rejected = await call('POST', '/api/bars', keys.operator, [{ ...bar, close: -1 }]);
    const anonymous = await call('POST', '/api/bars', null, bar);
    const forbidden = await call('POST', '/api/bars', keys.viewer, bar);
    const unknown = await call('POST', '/api/models/promote', keys.admin, { version: 'v9999' });
    expect([accepted.status, rejected.status, anonymous.status, forbidden.status, unknown.status]).toEqual([202, 400, 401, 403, 400]);
    const id = (res: { headers: Headers }): string => res.headers.get('x-request-id') ?? 'none';
    const of = (res: { headers: Headers }): Record<string, unknown>[] => auditLines().filter((l) => l.request_id === id(res));
    await waitFor(() => of(unknown).length === 1, 10_000, 'the last audit line');
    expect(of(accepted).map((l) => [l.outcome, l.role, l.route, l.change])).toEqual([
      ['started', 'operator', '/api/bars', { bars: 1, symbols: ['AUDIT'] }],
      ['202 ok', 'operator', '/api/bars', { accepted: 1 }],
    ]);
    expect(of(rejected).map((l) => l.outcome)).toEqual(['400 rejected']);
    expect(of(unknown).map((l) => [l.outcome, l.role, l.route])).toEqual([['400 rejected', 'admin', '/api/models/promote']]);
    // Denied calls are summed per address (one line a minute at most), never a line each.
    expect([...of(anonymous), ...of(forbidden)]).toEqual([]);
    for (const l of [...of(accepted), ...of(rejected), ...of(unknown)]) {
      expect(l.ip).toBe('127.0.0.1');
      expect(typeof l.time).toBe('string');
      expect(typeof l.key_id === 'string' && /^[0-9a-f]{12}$/.test(l.key_id)).toBe(true);
    }
    const text = readFileSync(auditFile, 'utf8');
    for (const k of [keys.viewer, keys.operator, keys.admin]) expect(text).not.toContain(k);
  });

  it('keeps /api/health and the WebSocket answering while the process pool is saturated, refusing calls past its queue with 503 and Retry-After', async () => {
    const heavy = { symbol: 'SAT', bars: generateSyntheticMarket({ seed: 41, symbol: 'SAT', bars: 2000 }).bars };
    const live = generateSyntheticMarket({ seed: 42, symbol: 'SATWS', bars: 30 }).bars;
    const frames: string[] = [];
    const ws = openWs(`${wsBase}/ws?symbols=SATWS`, { authorization: `Bearer ${keys.viewer}` });
    sockets.push(ws);
    ws.on('message', (data) => frames.push(data.toString('utf8')));
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', reject);
    });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    let saturating = true;
    const running = new Set<Promise<void>>();
    // Each call that got a slot (200, or 504 past its deadline) is replaced by two: one takes the
    // slot it freed, the other finds the pool and its queue (2 + 8) full. So the pool stays
    // saturated, and refused calls keep coming, until the stream has been checked.
    const fire = (): void => {
      const p: Promise<void> = (async () => {
        const res = await fetch(`${base}/api/tactical/process`, { method: 'POST', headers: { authorization: `Bearer ${keys.viewer}`, 'content-type': 'application/json' }, body: JSON.stringify(heavy) });
        await res.text();
        statuses.push(res.status);
        if (res.status === 503) retryAfter = res.headers.get('retry-after');
        else if (saturating) {
          fire();
          fire();
        }
      })().finally(() => running.delete(p));
      running.add(p);
    };
    for (let i = 0; i < 14; i++) fire();
    try {
      await waitFor(() => statuses.includes(503), 60_000, 'a call refused past the queue');
      expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      // Saturated now: health answers, bars are accepted and their results reach the socket.
      const health = await call('GET', '/api/health', null);
      expect(health.json).toEqual({ status: 'ok' });
      expect((await call('POST', '/api/bars', keys.operator, live)).status).toBe(202);
      await waitFor(() => frames.length === live.length, 120_000, 'results streamed while saturated');
      expect(frames.map((f) => (JSON.parse(f) as IntegratedResult).ts)).toEqual(live.map((b) => b.ts));
      // And the pool was still saturated after that: calls are still being refused.
      const seen = statuses.length;
      await waitFor(() => statuses.slice(seen).includes(503), 60_000, 'a refusal after the stream was checked');
    } finally {
      saturating = false;
      while (running.size > 0) await Promise.all([...running]);
    }
    expect(statuses.filter((s) => ![200, 503, 504].includes(s))).toEqual([]);
  });

  it('process endpoints give the workers’ results for the same bars', async () => {
    const bars = generateSyntheticMarket({ seed: 31, symbol: 'PROC', bars: 702 }).bars;
    expect((await call('POST', '/api/bars', keys.operator, bars)).status).toBe(202);
    await waitFor(async () => (await results('PROC')).length === bars.length, 180_000, 'PROC results');
    const published = await results('PROC');
    for (const n of [40, 351, 702]) {
      const res = await call('POST', '/api/tactical/process', keys.viewer, { symbol: 'PROC', bars: bars.slice(0, n) });
      expect(res.status).toBe(200);
      const worker = published[n - 1]!;
      // Compared whole (not through the schema, which would drop a field the workers do not send).
      const { processing_time_ms: time, ...rest } = res.json as Record<string, unknown>;
      expect(time).toBeGreaterThan(0);
      expect(rest).toEqual({
        symbol: 'PROC',
        ts: worker.ts,
        indicators: worker.indicators,
        strategic: worker.strategic,
        actions: worker.actions,
        target_position: worker.target_position,
        combined_confidence: worker.combined_confidence,
        model_version: worker.model_version,
        degraded: worker.degraded,
      });
    }
    // Strategic: the 30m bars the tactical worker built, from these bars alone.
    let open: ResampleState | null = null;
    const bars30: Bar30m[] = [];
    for (const b of bars) {
      const r = resampleStep(open, b);
      open = r.state;
      bars30.push(...r.emitted);
    }
    expect(bars30).toHaveLength(117);
    const res = await call('POST', '/api/strategic/process', keys.viewer, { symbol: 'PROC', bars: bars30.map(({ bars: _n, ...b }) => b) });
    expect(res.status).toBe(200);
    const closeTs = bars30[bars30.length - 1]!.ts + 1_800_000;
    const worker = published.find((r) => r.strategic.bar_close_ts === closeTs && r.close_ts === closeTs)!;
    const analysis = body(StrategicProcessResponseSchema, res);
    expect(analysis.bar_close_ts).toBe(closeTs);
    expect(analysis.features).toHaveLength(13);
    expect(analysis.matrix).toHaveLength(48);
    expect(analysis.matrix.every((row) => row.length === 13 && row.every((v) => typeof v === 'number'))).toBe(true);
    expect(analysis.similar_patterns).not.toBeNull();
    // Regime and neighbours do not depend on the tactical feedback the worker also had.
    expect(analysis.regime).toBe(worker.strategic.regime);
    expect(analysis.regime_probabilities).toEqual(worker.strategic.regime_probabilities);
    expect(analysis.similar_patterns).toEqual(worker.strategic.similar_patterns);
  });

  it('serves an OpenAPI document listing every route with its schemas', async () => {
    const res = await call('GET', '/api/openapi.json', keys.viewer);
    expect(res.status).toBe(200);
    const doc = res.json as OpenApiDoc;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      ['/api/bars', '/api/dead-letters/replay', '/api/health', '/api/models/promote', '/api/models/rollback', '/api/openapi.json', '/api/results/{symbol}', '/api/strategic/health', '/api/strategic/process', '/api/tactical/health', '/api/tactical/process', '/api/ws-ticket', '/ws'].sort(),
    );
    const ref = doc.paths['/api/strategic/process']?.post?.requestBody?.content['application/json']?.schema.$ref;
    expect(ref).toBe('#/components/schemas/StrategicProcessRequest');
    expect(doc.components.schemas.StrategicProcessRequest?.properties?.bars?.minItems).toBe(49);
    expect(doc.components.schemas.TacticalProcessResponse?.required).toEqual(expect.arrayContaining(['indicators', 'actions', 'model_version', 'processing_time_ms']));
    expect(doc.paths['/api/bars']?.post?.['x-required-role']).toBe('operator');
  });

  it('reports tactical and strategic figures measured over the last minute', async () => {
    const res = await call('GET', '/api/tactical/health', keys.viewer);
    expect(res.status).toBe(200);
    const tactical = body(StageHealthSchema, res);
    expect(tactical.stage).toBe('tactical');
    expect(tactical.status).toBe('ok');
    expect(tactical.bars_per_second).toBeGreaterThan(0);
    expect(tactical.latency_ms_p99).toBeGreaterThanOrEqual(tactical.latency_ms_p50 ?? Infinity);
    expect(tactical.model_version).toMatch(/^(v\d{4}|initial-\d+)$/);
    expect(tactical.dead_letters).toBe(0);
    const strategicHealth = async (): Promise<StageHealth> => body(StageHealthSchema, await call('GET', '/api/strategic/health', keys.viewer));
    await waitFor(async () => ((await strategicHealth()).bars_per_second ?? 0) > 0, 20_000, 'strategic figures');
    const strategic = await strategicHealth();
    expect(strategic.latency_ms_p50).toBeGreaterThan(0);
    expect(Object.keys(strategic.breakers).length).toBeGreaterThan(0);
  });
});
