import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import websocket from '@fastify/websocket';
import { BarSchema, type Bar } from '../../schemas/bar.schema';
import {
  MAX_BARS_PER_REQUEST,
  MAX_STRATEGIC_PROCESS_BARS,
  MAX_TACTICAL_PROCESS_BARS,
  ResultsParamsSchema,
  ResultsQuerySchema,
  StrategicProcessRequestSchema,
  TacticalProcessRequestSchema,
  WsQuerySchema,
  type StrategicProcessResponse,
  type TacticalProcessResponse,
} from '../../schemas/gateway.schema';
import type { GatewayRole, PipelineConfig } from '../config/config';
import type { Logger } from '../observability/logger';
import type { AuditLog, AuditRecord } from './audit';
import { roleAtLeast, type Caller, type KeyStore, type TicketStore } from './auth';
import { GatewayHttpError, ProcessInputError, capIssues, clip, parseOr400, zodIssues } from './http-error';
import { PAGE_CSS, PAGE_HTML, PAGE_SCRIPT } from './page';
import type { PipelineStats } from './pipeline-stats';
import type { RecentResults } from './recent-results';
import { AdminPromoteSchema, AdminRollbackSchema, DlqReplayRequestSchema, MODEL_VERSION_PATTERN, ROUTES, openApiDocument, type RouteSpec } from './routes';
import type { HubSocket, WsHub } from './ws-hub';

/** How the caller of a request presented itself (resolved once, before the rate limit). */
interface Identity {
  caller: Caller | null;
  /** `header`: Authorization; `ticket`: a /ws ticket (used by auth, only peeked before); `none`. */
  via: 'header' | 'ticket' | 'none';
  ticket: string | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's contract entry (auth, audit). */
    spec?: RouteSpec;
  }
  interface FastifyRequest {
    caller: Caller | null;
    identity: Identity | null;
    /** What a changing call changed (or was asked to), for its audit line. */
    auditChange: Record<string, unknown> | null;
    /** The WebSocket slot this upgrade holds, until the hub takes it over. */
    wsSlot: { keyId: string; handed: boolean } | null;
  }
}

/** What the administrative routes do (the registry and the dead-letter replay). */
export interface GatewayAdmin {
  /** The registry's versions (`v0001`, …): the only names promote and rollback accept. */
  versions(): Promise<string[]>;
  promote(version: string): Promise<string | null>;
  rollback(version?: string): Promise<string | null>;
  replayDeadLetters(count: number): Promise<{ exit_code: number; summary: string }>;
}

/** What runs the process endpoints (the worker-thread pool). */
export interface ProcessRunner {
  strategic(symbol: string, bars: Bar[]): Promise<StrategicProcessResponse>;
  tactical(symbol: string, bars: Bar[]): Promise<TacticalProcessResponse>;
  /** Throws the 503 of a full pool and queue (asked before the body is read). */
  checkCapacity(): void;
}

/** Everything the HTTP server uses; built and owned by {@link GatewayWorker}. */
export interface GatewayServerDeps {
  config: PipelineConfig;
  keys: KeyStore;
  tickets: TicketStore;
  audit: AuditLog;
  results: RecentResults;
  hub: WsHub;
  stats: PipelineStats;
  process: ProcessRunner;
  /** Publishes bars to market.bars and resolves once every one is confirmed. */
  publishBars(bars: Bar[]): Promise<void>;
  admin: GatewayAdmin;
  log: Logger;
}

/**
 * The Content-Security-Policy of every response: the page's own scripts, styles and socket only.
 * Sent as this exact text (helmet would join the directives without the spaces).
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/** Event-loop delay past which requests are shed with 503 (@fastify/under-pressure). */
const MAX_EVENT_LOOP_DELAY_MS = 2000;
/** Headers must arrive within this (or GATEWAY_REQUEST_TIMEOUT_MS if shorter); idle keep-alive connections close after KEEP_ALIVE_MS. */
const HEADERS_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_MS = 5000;

/** The standalone build of lightweight-charts, served to the page (it works offline). */
function chartsScript(): Buffer {
  const main = require.resolve('lightweight-charts/package.json');
  return readFileSync(join(dirname(main), 'dist', 'lightweight-charts.standalone.production.js'));
}

function statusWord(status: number): string {
  if (status < 300) return 'ok';
  return (
    ({ 400: 'rejected', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 413: 'too_large', 415: 'unsupported', 429: 'rate_limited', 503: 'unavailable', 504: 'timeout' } as Record<number, string>)[status] ??
    'failed'
  );
}

const DENIED = new Set([401, 403, 429]);

/**
 * Builds the gateway's Fastify server (not listening yet). In the order a request meets them:
 * event-loop pressure (503), the rate limit keyed by key id for a valid key and by client address
 * otherwise (429, before the key is checked), auth as one `preParsing` hook (401, 403: before the
 * body is read), then the route; errors leave through one handler as `{error, message}`, security
 * headers through @fastify/helmet, and the audit through `onResponse` (denied calls as per-address
 * summaries; changing routes also write a `started` line before they change anything). Request
 * logging names routes, never URLs.
 */
export async function buildGatewayServer(deps: GatewayServerDeps): Promise<FastifyInstance> {
  const { config, log, hub, audit, tickets } = deps;
  const g = config.gateway;
  const tls = g.tls === null ? null : { cert: readFileSync(g.tls.cert), key: readFileSync(g.tls.key) };
  // Node checks request timeouts every connectionsCheckingInterval (30 s by default): checked
  // every second here, so a trickled body is cut close to GATEWAY_REQUEST_TIMEOUT_MS.
  const serverOptions = {
    requestTimeout: g.requestTimeoutMs,
    headersTimeout: Math.min(HEADERS_TIMEOUT_MS, g.requestTimeoutMs),
    keepAliveTimeout: KEEP_ALIVE_MS,
    connectionsCheckingInterval: 1000,
  };
  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: g.bodyLimitBytes,
    // On stop, connections a client left open (a refused upgrade, a slow upload) are destroyed.
    forceCloseConnections: true,
    trustProxy: g.trustProxy.length === 0 ? false : [...g.trustProxy],
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    serverFactory: (handler) =>
      tls === null ? createHttpServer(serverOptions, handler) : createHttpsServer({ ...serverOptions, ...tls, minVersion: 'TLSv1.2' }, handler),
  });
  // Sockets of WebSocket upgrades (accepted or refused) are not the HTTP server's any more, so
  // close() would wait for them forever: they are destroyed when the server closes (the hub has sent
  // the accepted ones their close frame by then).
  const upgrades = new Set<Duplex>();
  app.server.on('upgrade', (_req: unknown, socket: Duplex) => {
    upgrades.add(socket);
    socket.once('close', () => upgrades.delete(socket));
  });
  app.addHook('preClose', (done) => {
    for (const socket of upgrades) socket.destroy();
    done();
  });
  app.decorateRequest('caller', null);
  app.decorateRequest('identity', null);
  app.decorateRequest('auditChange', null);
  app.decorateRequest('wsSlot', null);

  /** The caller a request presents (Authorization, or a /ws ticket peeked at, not used). */
  const identify = (request: FastifyRequest): Identity => {
    if (request.identity !== null) return request.identity;
    let identity: Identity = { caller: null, via: 'none', ticket: null };
    const header = request.headers.authorization;
    if (typeof header === 'string') {
      const key = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
      identity = { caller: key === undefined ? null : deps.keys.resolve(key), via: 'header', ticket: null };
    } else if (request.routeOptions.url === '/ws') {
      const ticket = (request.query as Record<string, unknown>).ticket;
      if (typeof ticket === 'string') identity = { caller: tickets.peek(ticket), via: 'ticket', ticket };
    }
    request.identity = identity;
    return identity;
  };

  // Its error (FST_UNDER_PRESSURE, with Retry-After set) is answered by the error handler below.
  await app.register(underPressure, { maxEventLoopDelay: MAX_EVENT_LOOP_DELAY_MS, retryAfter: 5 });
  await app.register(helmet, {
    contentSecurityPolicy: false, // set below, as one fixed text
    hsts: tls === null ? false : { maxAge: 31_536_000, includeSubDomains: true },
    referrerPolicy: { policy: 'no-referrer' },
    xContentTypeOptions: true,
  });
  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    timeWindow: 60_000,
    // Before the key is checked: a valid key is limited by its id, anything else by address.
    keyGenerator: (request: FastifyRequest) => {
      const { caller } = identify(request);
      return caller === null ? `ip:${request.ip}` : `key:${caller.keyId}`;
    },
    max: (_request: FastifyRequest, key: string) => (key.startsWith('key:') ? g.rateLimitPerMinute : g.anonRateLimitPerMinute),
    // Probes poll /api/health; its supervisor answer is shared for a second, so it costs no more than a 429.
    allowList: (request: FastifyRequest) => request.routeOptions.url === '/api/health',
    errorResponseBuilder: (request: FastifyRequest, context: { ttl: number; max: number }) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      const who = identify(request).caller === null ? 'from this address without a valid key (GATEWAY_ANON_RATE_LIMIT_PER_MINUTE)' : 'with this key (GATEWAY_RATE_LIMIT_PER_MINUTE)';
      return new GatewayHttpError(429, 'rate_limited', `more than ${context.max} requests a minute ${who}; retry after ${seconds} s`, {}, { 'retry-after': String(seconds) });
    },
  });

  // Auth runs after the rate limit (whose hooks are the routes' own onRequest hooks, run after
  // every global one) and before the body is read: preParsing.
  app.addHook('preParsing', async (request: FastifyRequest, _reply: FastifyReply, payload) => {
    const spec = request.routeOptions.config.spec;
    if (spec === undefined) return payload;
    const identity = identify(request);
    if (spec.role === null) {
      request.caller = identity.caller;
      return payload;
    }
    if (spec.url === '/ws' && (request.query as Record<string, unknown>).token !== undefined) {
      throw new GatewayHttpError(401, 'unauthorized', 'keys in URLs are refused (?token= was removed in gateway contract 2): get a ticket from POST /api/ws-ticket and open /ws?ticket=<ticket>, or send Authorization: Bearer <key> on the upgrade');
    }
    const caller = identity.via === 'ticket' && identity.ticket !== null ? tickets.take(identity.ticket) : identity.caller;
    if (caller === null) {
      const message =
        identity.via === 'ticket'
          ? 'the ticket is unknown, used or expired (a ticket opens one socket once, within its lifetime): get a new one from POST /api/ws-ticket'
          : identity.via === 'header'
            ? 'unknown key: use a key from GATEWAY_API_KEYS (Authorization: Bearer <key>)'
            : spec.url === '/ws'
              ? 'send Authorization: Bearer <key> on the upgrade, or (browsers) ?ticket= from POST /api/ws-ticket'
              : 'send Authorization: Bearer <key>';
      throw new GatewayHttpError(401, 'unauthorized', message);
    }
    request.caller = caller;
    if (!roleAtLeast(caller.role, spec.role)) {
      throw new GatewayHttpError(403, 'forbidden', `this needs the ${spec.role} role; the key has ${caller.role}: use a key with that role`);
    }
    return payload;
  });

  app.addHook('onSend', async (request, reply, payload) => {
    void reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    void reply.header('x-request-id', request.id);
    if (request.url.startsWith('/api/')) void reply.header('cache-control', 'no-store');
    return payload;
  });

  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const spec = request.routeOptions.config.spec;
    const status = reply.statusCode;
    log.debug({ method: request.method, route: spec?.url ?? '(unmatched)', status, keyId: request.caller?.keyId ?? null, requestId: request.id, ms: Math.round(reply.elapsedTime * 1000) / 1000 }, 'request');
    if (DENIED.has(status)) {
      audit.denied(request.ip, status, request.id);
      return;
    }
    if (spec?.changes !== true) return;
    try {
      await audit.write({ ...auditBase(request, spec), outcome: `${status} ${statusWord(status)}`, status, ...(request.auditChange === null ? {} : { change: request.auditChange }) });
    } catch (err) {
      log.error({ err: (err as Error).message, route: spec.url, requestId: request.id }, 'audit record could not be written');
    }
  });

  const auditBase = (request: FastifyRequest, spec: RouteSpec): Omit<AuditRecord, 'outcome'> => ({
    time: new Date().toISOString(),
    ip: request.ip,
    request_id: request.id,
    key_id: request.caller?.keyId ?? null,
    role: request.caller?.role ?? null,
    method: request.method,
    route: spec.url,
  });
  /** Writes the `started` line of a changing call, or refuses it (503) when the line cannot be written: nothing is changed unaudited. */
  const begin = async (request: FastifyRequest, change: Record<string, unknown>): Promise<void> => {
    const spec = request.routeOptions.config.spec as RouteSpec;
    request.auditChange = change;
    try {
      await audit.write({ ...auditBase(request, spec), outcome: 'started', change });
    } catch {
      throw new GatewayHttpError(503, 'audit_unavailable', 'the audit record could not be written, so nothing was changed; retry later (the operator must free the audit volume)', {}, { 'retry-after': '30' });
    }
  };

  app.setErrorHandler(async (error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof GatewayHttpError) {
      for (const [name, value] of Object.entries(error.headers)) void reply.header(name, value);
      return reply.status(error.status).send({ error: error.code, message: error.message, ...error.extra });
    }
    if (error.code === 'FST_UNDER_PRESSURE') {
      return reply.status(503).header('retry-after', '5').send({ error: 'overloaded', message: 'the gateway is overloaded (its event loop is delayed); retry after 5 s' });
    }
    if (error instanceof ProcessInputError) return reply.status(400).send({ error: 'bad_request', message: clip(error.message) });
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({ error: 'too_large', message: `the body is larger than ${g.bodyLimitBytes} bytes (GATEWAY_BODY_LIMIT_BYTES): send fewer bars per request` });
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(415).send({ error: 'unsupported_media_type', message: 'send the body as JSON with content-type: application/json' });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // Fastify's and the JSON parser's own messages: clipped (a parser may quote the body).
      return reply.status(error.statusCode).send({ error: 'bad_request', message: `${clip(error.message)}: send a valid JSON body` });
    }
    log.error({ err: error, route: request.routeOptions.config.spec?.url, requestId: request.id }, 'gateway route failed');
    return reply.status(500).send({ error: 'internal', message: `the gateway failed to answer; see its log (request ${request.id}), and retry` });
  });

  app.setNotFoundHandler({ preHandler: app.rateLimit() }, async (request, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${clip(request.url.split('?')[0] ?? '', 100)}: see GET /api/openapi.json` }),
  );

  await app.register(websocket, { options: { maxPayload: 4096 } });

  const spec = (method: string, url: string): RouteSpec => {
    const s = ROUTES.find((r) => r.method === method && r.url === url);
    if (s === undefined) throw new Error(`route ${method} ${url} is not in ROUTES`);
    return s;
  };
  const json = (reply: FastifyReply, status: number, body: unknown): FastifyReply => reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
  /** A 400 naming the limit when `body.bars` is longer, before any bar is validated. */
  const checkBarCount = (body: unknown, max: number, route: string): void => {
    const bars = (body as { bars?: unknown } | null)?.bars;
    if (Array.isArray(bars) && bars.length > max) {
      throw new GatewayHttpError(400, 'bad_request', `bars holds ${bars.length} bars; ${route} takes at most ${max}: split the call`, { issues: [{ path: 'bars', message: `at most ${max} bars` }] });
    }
  };

  app.get('/api/health', { config: { spec: spec('GET', '/api/health') } }, async (request, reply) => {
    const health = await deps.stats.supervisorHealth();
    const status = health === null ? 503 : health.status;
    const word = health === null ? 'unavailable' : typeof health.body.status === 'string' && /^[a-z_]{1,20}$/.test(health.body.status) ? health.body.status : status === 200 ? 'ok' : 'unavailable';
    if (request.caller === null) return json(reply, status, { status: word });
    if (health === null) return json(reply, 503, { status: 'unavailable', reasons: ['the supervisor /health cannot be reached from the gateway'] });
    return json(reply, status, health.body);
  });
  app.get('/api/strategic/health', { config: { spec: spec('GET', '/api/strategic/health') } }, async () => deps.stats.stage('strategic'));
  app.get('/api/tactical/health', { config: { spec: spec('GET', '/api/tactical/health') } }, async () => deps.stats.stage('tactical'));

  // A full pool refuses before the body is read (route preParsing runs after auth's).
  const capacity = { preParsing: async (_request: FastifyRequest, _reply: FastifyReply, payload: unknown) => { deps.process.checkCapacity(); return payload; } };
  app.post('/api/strategic/process', { ...capacity, config: { spec: spec('POST', '/api/strategic/process') } }, async (request) => {
    checkBarCount(request.body, MAX_STRATEGIC_PROCESS_BARS, '/api/strategic/process');
    const body = parseOr400(StrategicProcessRequestSchema, request.body, 'body');
    return deps.process.strategic(body.symbol, body.bars);
  });
  app.post('/api/tactical/process', { ...capacity, config: { spec: spec('POST', '/api/tactical/process') } }, async (request) => {
    checkBarCount(request.body, MAX_TACTICAL_PROCESS_BARS, '/api/tactical/process');
    const body = parseOr400(TacticalProcessRequestSchema, request.body, 'body');
    return deps.process.tactical(body.symbol, body.bars);
  });

  app.get('/api/results/:symbol', { config: { spec: spec('GET', '/api/results/:symbol') } }, async (request, reply) => {
    const { symbol } = parseOr400(ResultsParamsSchema, request.params, 'path');
    const { limit } = parseOr400(ResultsQuerySchema, request.query, 'query');
    // Each result exactly as published: the stored texts joined, not re-serialised.
    const texts = deps.results.latest(symbol, limit).map((s) => s.text);
    return reply.header('content-type', 'application/json; charset=utf-8').send(`[${texts.join(',')}]`);
  });

  app.post('/api/bars', { config: { spec: spec('POST', '/api/bars') } }, async (request, reply) => {
    const raw = request.body;
    const list: unknown[] = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0) throw new GatewayHttpError(400, 'bad_request', 'the array is empty: send at least one bar', { invalid: [] });
    if (list.length > MAX_BARS_PER_REQUEST) throw new GatewayHttpError(400, 'bad_request', `send at most ${MAX_BARS_PER_REQUEST} bars per request`, { invalid: [] });
    const bars: Bar[] = [];
    const invalid: { index: number; reasons: string[] }[] = [];
    list.forEach((item, index) => {
      const parsed = BarSchema.safeParse(item);
      if (parsed.success) bars.push(parsed.data);
      // At most 10 reasons of at most 200 characters per bar, 20 bars: the answer stays far under 64 KiB.
      else invalid.push({ index, reasons: zodIssues(parsed.error).slice(0, 10).map((i) => clip(`${i.path}: ${i.message}`)) });
    });
    if (invalid.length > 0) {
      const { items, truncated } = capIssues(invalid);
      throw new GatewayHttpError(400, 'bad_request', `${invalid.length} of ${list.length} bars are invalid${truncated === true ? ` (the first ${items.length} listed)` : ''}; nothing was published: fix them and send again`, {
        invalid: items,
        ...(truncated === true ? { truncated } : {}),
      });
    }
    await begin(request, { bars: bars.length, symbols: [...new Set(bars.map((b) => b.symbol))].slice(0, 20) });
    try {
      await deps.publishBars(bars);
    } catch (err) {
      log.warn({ err: (err as Error).message, bars: bars.length, requestId: request.id }, 'bars not confirmed');
      request.auditChange = { bars: bars.length, confirmed: false };
      throw new GatewayHttpError(503, 'publish_failed', 'the broker did not confirm every bar; send them again (duplicates are dropped by the pipeline)');
    }
    request.auditChange = { accepted: bars.length };
    return json(reply, 202, { accepted: bars.length });
  });

  /** A version the registry lists, or 400 unknown_version (naming the version only when it has the registry's form). */
  const listedVersion = async (version: unknown): Promise<string> => {
    const listed = typeof version === 'string' && MODEL_VERSION_PATTERN.test(version) && version.length <= 32 && (await deps.admin.versions()).includes(version);
    if (!listed) {
      const named = typeof version === 'string' && MODEL_VERSION_PATTERN.test(version) && version.length <= 32 ? `${version} is` : 'version is';
      throw new GatewayHttpError(400, 'unknown_version', `${named} not a listed registry version: give one of the versions \`pipeline models list\` shows (v followed by at least 4 digits)`);
    }
    return version;
  };
  /** Promotes or rolls back after the started line of the audit; a failure is a 500 naming `what` (the log has the cause). */
  const changeModel = async (request: FastifyRequest, what: string, started: Record<string, unknown>, change: () => Promise<string | null>): Promise<{ promoted: string | null }> => {
    await begin(request, started);
    try {
      const promoted = await change();
      request.auditChange = { promoted };
      return { promoted };
    } catch (err) {
      log.error({ err: (err as Error).message, requestId: request.id }, `${what} failed`);
      throw new GatewayHttpError(500, 'internal', `${what} failed; see the gateway log (request ${request.id})`);
    }
  };
  const versionOf = (body: unknown): unknown => (typeof body === 'object' && body !== null ? (body as Record<string, unknown>).version : undefined);

  app.post('/api/models/promote', { config: { spec: spec('POST', '/api/models/promote') } }, async (request) => {
    if (typeof versionOf(request.body) === 'string') await listedVersion(versionOf(request.body));
    const { version } = parseOr400(AdminPromoteSchema, request.body, 'body');
    return changeModel(request, 'the promotion', { promote: version }, () => deps.admin.promote(version));
  });
  app.post('/api/models/rollback', { config: { spec: spec('POST', '/api/models/rollback') } }, async (request) => {
    if (versionOf(request.body ?? {}) !== undefined) await listedVersion(versionOf(request.body));
    const { version } = parseOr400(AdminRollbackSchema, request.body ?? {}, 'body');
    return changeModel(request, 'the rollback', { rollback_to: version ?? 'previous' }, () => deps.admin.rollback(version));
  });
  app.post('/api/dead-letters/replay', { config: { spec: spec('POST', '/api/dead-letters/replay') } }, async (request) => {
    const { count } = parseOr400(DlqReplayRequestSchema, request.body ?? {}, 'body');
    await begin(request, { replay: count });
    const result = await deps.admin.replayDeadLetters(count);
    request.auditChange = { replay: count, exit_code: result.exit_code, summary: clip(result.summary, 500) };
    return result;
  });

  app.post('/api/ws-ticket', { config: { spec: spec('POST', '/api/ws-ticket') } }, (request, reply) =>
    json(reply, 200, { ticket: tickets.issue(request.caller as Caller), expires_in: tickets.ttlSeconds }),
  );

  const openapi = JSON.stringify(openApiDocument());
  app.get('/api/openapi.json', { config: { spec: spec('GET', '/api/openapi.json') } }, async (_req, reply) =>
    reply.header('content-type', 'application/json; charset=utf-8').send(openapi),
  );

  app.get(
    '/ws',
    {
      websocket: true,
      config: { spec: spec('GET', '/ws') },
      // A throw here is answered like a rejected promise (fastify's hook runner catches it).
      preValidation: (request, _reply, done) => {
        parseOr400(WsQuerySchema, request.query, 'query');
        const keyId = (request.caller as Caller).keyId;
        if (!hub.reserve(keyId)) {
          throw new GatewayHttpError(429, 'too_many_sockets', `this key or the gateway has as many WebSockets open as allowed (GATEWAY_WS_MAX_PER_KEY ${g.wsMaxPerKey}, GATEWAY_WS_MAX_TOTAL ${g.wsMaxTotal}): close one and retry`, {}, { 'retry-after': '5' });
        }
        // The slot is the hub's once the socket is added; until then, a connection that goes away gives it back.
        const slot = { keyId, handed: false };
        request.wsSlot = slot;
        request.raw.socket.once('close', () => {
          if (!slot.handed) hub.release(keyId);
          slot.handed = true;
        });
        done();
      },
    },
    (socket: HubSocket, request: FastifyRequest) => {
      const query = WsQuerySchema.parse(request.query);
      const slot = request.wsSlot as { keyId: string; handed: boolean };
      if (slot.handed) {
        socket.terminate();
        return;
      }
      slot.handed = true;
      hub.add(socket, query.symbols, query.stats === '1', slot.keyId);
    },
  );

  // The live page and its assets (no key needed to load the page; its data needs one).
  const charts = chartsScript();
  app.get('/', async (_req, reply) => reply.header('content-type', 'text/html; charset=utf-8').send(PAGE_HTML));
  app.get('/assets/page.js', async (_req, reply) => reply.header('content-type', 'text/javascript; charset=utf-8').send(PAGE_SCRIPT));
  app.get('/assets/page.css', async (_req, reply) => reply.header('content-type', 'text/css; charset=utf-8').send(PAGE_CSS));
  app.get('/assets/lightweight-charts.js', async (_req, reply) =>
    reply.header('content-type', 'text/javascript; charset=utf-8').header('cache-control', 'max-age=86400').send(charts),
  );
  app.get('/favicon.ico', async (_req, reply) => reply.status(204).send());
  return app;
}

export type { GatewayRole };
