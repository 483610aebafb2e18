import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import { BarSchema, type Bar } from '../../schemas/bar.schema';
import {
  ResultsParamsSchema,
  ResultsQuerySchema,
  StrategicProcessRequestSchema,
  TacticalProcessRequestSchema,
  WsQuerySchema,
} from '../../schemas/gateway.schema';
import type { GatewayRole, PipelineConfig } from '../config/config';
import type { Logger } from '../observability/logger';
import type { AuditLog } from './audit';
import { RateLimiter, roleAtLeast, type Caller, type KeyStore } from './auth';
import { GatewayHttpError, parseOr400, zodIssues } from './http-error';
import { PAGE_HTML, PAGE_SCRIPT } from './page';
import type { PipelineStats } from './pipeline-stats';
import { ProcessInputError, type ProcessService } from './process-service';
import type { RecentResults } from './recent-results';
import { AdminPromoteSchema, AdminRollbackSchema, DlqReplayRequestSchema, ROUTES, openApiDocument, type RouteSpec } from './routes';
import type { HubSocket, WsHub } from './ws-hub';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's contract entry (auth, audit). */
    spec?: RouteSpec;
  }
  interface FastifyRequest {
    caller: Caller | null;
  }
}

/** What the administrative routes do (the registry and the dead-letter replay). */
export interface GatewayAdmin {
  promote(version: string): Promise<string | null>;
  rollback(version?: string): Promise<string | null>;
  replayDeadLetters(count: number): Promise<{ exit_code: number; summary: string }>;
}

/** Everything the HTTP server uses; built and owned by {@link GatewayWorker}. */
export interface GatewayServerDeps {
  config: PipelineConfig;
  keys: KeyStore;
  audit: AuditLog;
  results: RecentResults;
  hub: WsHub;
  stats: PipelineStats;
  process: ProcessService;
  /** Publishes bars to market.bars and resolves once every one is confirmed. */
  publishBars(bars: Bar[]): Promise<void>;
  admin: GatewayAdmin;
  log: Logger;
}

/** The standalone build of lightweight-charts, served to the page (it works offline). */
function chartsScript(): Buffer {
  const main = require.resolve('lightweight-charts/package.json');
  return readFileSync(join(dirname(main), 'dist', 'lightweight-charts.standalone.production.js'));
}

function statusWord(status: number): string {
  if (status < 300) return 'ok';
  return ({ 400: 'rejected', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 413: 'too_large', 415: 'unsupported', 429: 'rate_limited', 503: 'unavailable' } as Record<number, string>)[status] ?? 'failed';
}

/**
 * Builds the gateway's Fastify server (not listening yet): auth as one `onRequest` hook with the
 * route's least role, the audit record in one `onResponse` hook, errors through one handler as
 * `{error, message}`; the contract routes of {@link ROUTES}, the WebSocket and the live page.
 * Request logging is our own and names routes, never URLs (a browser's WebSocket URL holds its key).
 */
export async function buildGatewayServer(deps: GatewayServerDeps): Promise<FastifyInstance> {
  const { config, log } = deps;
  const g = config.gateway;
  const tls = g.tls === null ? null : { cert: readFileSync(g.tls.cert), key: readFileSync(g.tls.key) };
  // forceCloseConnections: on stop, connections a client left open (a refused WebSocket upgrade the
  // client never closed, a slow upload) are destroyed instead of holding the shutdown.
  const app: FastifyInstance = (tls === null
    ? Fastify({ logger: false, bodyLimit: g.bodyLimitBytes, forceCloseConnections: true })
    : Fastify({ logger: false, bodyLimit: g.bodyLimitBytes, forceCloseConnections: true, https: tls })) as FastifyInstance;
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
  const limiter = new RateLimiter(g.rateLimitPerMinute);
  app.decorateRequest('caller', null);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const spec = request.routeOptions.config.spec;
    if (spec === undefined || spec.role === null) return;
    const caller = authenticate(request, deps.keys);
    if (caller === null) {
      const hasKey = request.headers.authorization !== undefined || (request.query as Record<string, unknown>).token !== undefined;
      throw new GatewayHttpError(
        401,
        'unauthorized',
        hasKey
          ? 'unknown key: use a key from GATEWAY_API_KEYS (Authorization: Bearer <key>)'
          : 'send Authorization: Bearer <key> (a browser WebSocket may pass ?token=<key>)',
      );
    }
    request.caller = caller;
    if (!roleAtLeast(caller.role, spec.role)) {
      throw new GatewayHttpError(403, 'forbidden', `this needs the ${spec.role} role; the key has ${caller.role}: use a key with that role`);
    }
    const retryAfter = limiter.take(caller.keyId);
    if (retryAfter > 0) {
      void reply.header('retry-after', String(retryAfter));
      throw new GatewayHttpError(429, 'rate_limited', `more than ${g.rateLimitPerMinute} requests a minute with this key; retry after ${retryAfter} s`);
    }
  });

  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const spec = request.routeOptions.config.spec;
    const status = reply.statusCode;
    log.debug({ method: request.method, route: spec?.url ?? '(unmatched)', status, keyId: request.caller?.keyId ?? null, ms: Math.round(reply.elapsedTime * 1000) / 1000 }, 'request');
    if (spec?.changes !== true) return;
    try {
      deps.audit.write({
        time: new Date().toISOString(),
        key_id: request.caller?.keyId ?? null,
        role: request.caller?.role ?? null,
        method: request.method,
        route: spec.url,
        outcome: `${status} ${statusWord(status)}`,
        status,
      });
    } catch (err) {
      log.error({ err, route: spec.url }, 'audit record could not be written');
    }
  });

  app.setErrorHandler(async (error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof GatewayHttpError) {
      return reply.status(error.status).send({ error: error.code, message: error.message, ...error.extra });
    }
    if (error instanceof ProcessInputError) return reply.status(400).send({ error: 'bad_request', message: error.message });
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({ error: 'too_large', message: `the body is larger than ${g.bodyLimitBytes} bytes (GATEWAY_BODY_LIMIT_BYTES): send fewer bars per request` });
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(415).send({ error: 'unsupported_media_type', message: 'send the body as JSON with content-type: application/json' });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ error: 'bad_request', message: `${error.message}: send a valid JSON body` });
    }
    log.error({ err: error, route: request.routeOptions.config.spec?.url }, 'gateway route failed');
    return reply.status(500).send({ error: 'internal', message: 'the gateway failed to answer; see its log, and retry' });
  });

  app.setNotFoundHandler(async (request, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}: see GET /api/openapi.json` }),
  );

  await app.register(websocket, { options: { maxPayload: 4096 } });

  const spec = (method: string, url: string): RouteSpec => {
    const s = ROUTES.find((r) => r.method === method && r.url === url);
    if (s === undefined) throw new Error(`route ${method} ${url} is not in ROUTES`);
    return s;
  };
  const json = (reply: FastifyReply, status: number, body: unknown): FastifyReply => reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);

  app.get('/api/health', { config: { spec: spec('GET', '/api/health') } }, async (_req, reply) => {
    const health = await deps.stats.supervisorHealth();
    if (health === null) return json(reply, 503, { status: 'unavailable', reasons: ['the supervisor /health cannot be reached from the gateway'] });
    return json(reply, health.status, health.body);
  });
  app.get('/api/strategic/health', { config: { spec: spec('GET', '/api/strategic/health') } }, async () => deps.stats.stage('strategic'));
  app.get('/api/tactical/health', { config: { spec: spec('GET', '/api/tactical/health') } }, async () => deps.stats.stage('tactical'));

  app.post('/api/strategic/process', { config: { spec: spec('POST', '/api/strategic/process') } }, async (request) => {
    const body = parseOr400(StrategicProcessRequestSchema, request.body, 'body');
    return deps.process.strategic(body.symbol, body.bars);
  });
  app.post('/api/tactical/process', { config: { spec: spec('POST', '/api/tactical/process') } }, async (request) => {
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
    if (list.length > 10_000) throw new GatewayHttpError(400, 'bad_request', 'send at most 10000 bars per request', { invalid: [] });
    const bars: Bar[] = [];
    const invalid: { index: number; reasons: string[] }[] = [];
    list.forEach((item, index) => {
      const parsed = BarSchema.safeParse(item);
      if (parsed.success) bars.push(parsed.data);
      else invalid.push({ index, reasons: zodIssues(parsed.error).map((i) => `${i.path}: ${i.message}`) });
    });
    if (invalid.length > 0) {
      throw new GatewayHttpError(400, 'bad_request', `${invalid.length} of ${list.length} bars are invalid; nothing was published: fix them and send again`, { invalid });
    }
    try {
      await deps.publishBars(bars);
    } catch (err) {
      log.warn({ err: (err as Error).message, bars: bars.length }, 'bars not confirmed');
      throw new GatewayHttpError(503, 'publish_failed', `the broker did not confirm every bar (${(err as Error).message}); send them again (duplicates are dropped by the pipeline)`);
    }
    return json(reply, 202, { accepted: bars.length });
  });

  app.post('/api/models/promote', { config: { spec: spec('POST', '/api/models/promote') } }, async (request) => {
    const { version } = parseOr400(AdminPromoteSchema, request.body, 'body');
    try {
      return { promoted: await deps.admin.promote(version) };
    } catch (err) {
      throw new GatewayHttpError(400, 'bad_request', `cannot promote ${version}: ${(err as Error).message}`);
    }
  });
  app.post('/api/models/rollback', { config: { spec: spec('POST', '/api/models/rollback') } }, async (request) => {
    const { version } = parseOr400(AdminRollbackSchema, request.body ?? {}, 'body');
    try {
      return { promoted: await deps.admin.rollback(version) };
    } catch (err) {
      throw new GatewayHttpError(400, 'bad_request', `cannot roll back: ${(err as Error).message}`);
    }
  });
  app.post('/api/dead-letters/replay', { config: { spec: spec('POST', '/api/dead-letters/replay') } }, async (request) => {
    const { count } = parseOr400(DlqReplayRequestSchema, request.body ?? {}, 'body');
    return deps.admin.replayDeadLetters(count);
  });

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
        done();
      },
    },
    (socket: HubSocket, request: FastifyRequest) => {
      const query = WsQuerySchema.parse(request.query);
      deps.hub.add(socket, query.symbols, query.stats === '1');
    },
  );

  // The live page and its scripts (no key needed to load the page; its data needs one).
  const charts = chartsScript();
  app.get('/', async (_req, reply) => reply.header('content-type', 'text/html; charset=utf-8').send(PAGE_HTML));
  app.get('/assets/page.js', async (_req, reply) => reply.header('content-type', 'text/javascript; charset=utf-8').send(PAGE_SCRIPT));
  app.get('/assets/lightweight-charts.js', async (_req, reply) =>
    reply.header('content-type', 'text/javascript; charset=utf-8').header('cache-control', 'max-age=86400').send(charts),
  );
  app.get('/favicon.ico', async (_req, reply) => reply.status(204).send());
  return app;
}

/** The caller of a request: `Authorization: Bearer <key>`, or `?token=<key>` on the WebSocket. */
function authenticate(request: FastifyRequest, keys: KeyStore): Caller | null {
  const header = request.headers.authorization;
  let key: string | undefined;
  if (typeof header === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    key = m?.[1];
  } else if (request.routeOptions.url === '/ws') {
    const token = (request.query as Record<string, unknown>).token;
    if (typeof token === 'string') key = token;
  }
  return key === undefined ? null : keys.resolve(key);
}

export type { GatewayRole };
