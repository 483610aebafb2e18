import { z } from 'zod';
import { BarSchema } from '../../schemas/bar.schema';
import {
  BarsAcceptedSchema,
  BarsRejectedSchema,
  BarsRequestSchema,
  GatewayErrorSchema,
  GatewayHealthSchema,
  ResultsParamsSchema,
  ResultsQuerySchema,
  ResultsResponseSchema,
  StageHealthSchema,
  StrategicProcessRequestSchema,
  StrategicProcessResponseSchema,
  TacticalProcessRequestSchema,
  TacticalProcessResponseSchema,
  WsQuerySchema,
  WsTicketResponseSchema,
} from '../../schemas/gateway.schema';
import type { GatewayRole } from '../config/config';

/** A route of the gateway's contract: what the server registers and the OpenAPI document lists. */
export interface RouteSpec {
  method: 'GET' | 'POST';
  /** Fastify path (`:param`). */
  url: string;
  /** Least role allowed; null: no key needed. */
  role: GatewayRole | null;
  /** Changes something: every call writes one audit record. */
  changes: boolean;
  summary: string;
  body?: z.ZodType;
  params?: z.ZodType;
  query?: z.ZodType;
  /** Status → description and body schema (JSON). */
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string }>;
}

/** A model version as the registry names it: `v` and at least four digits; nothing else is ever a version. */
export const MODEL_VERSION_PATTERN = /^v\d{4,}$/;
const modelVersion = z
  .string({ error: 'version is required: a registry version such as v0001' })
  .max(32, 'version must be v followed by 4 to 31 digits')
  .regex(MODEL_VERSION_PATTERN, 'version must be v followed by at least 4 digits (a listed registry version, e.g. v0001)');
export const AdminPromoteSchema = z.object({ version: modelVersion }).strict().meta({ id: 'PromoteRequest' });
export const AdminRollbackSchema = z.object({ version: modelVersion.optional() }).strict().meta({ id: 'RollbackRequest' });
export const AdminModelResponseSchema = z.object({ promoted: z.string().nullable() }).meta({ id: 'PromotedModel' });
export const DlqReplayRequestSchema = z
  .object({ count: z.number().int().min(0).max(100_000).default(0).describe('replay at most this many (0 = all)') })
  .strict()
  .meta({ id: 'DeadLetterReplayRequest' });
export const DlqReplayResponseSchema = z.object({ exit_code: z.number().int(), summary: z.string() }).meta({ id: 'DeadLetterReplayResult' });

const auth = {
  401: { description: 'no key, or an unknown key', schema: GatewayErrorSchema },
  403: { description: 'the key’s role is too low', schema: GatewayErrorSchema },
  429: { description: 'rate limit reached (of the key, or of the client address for calls without a valid key, checked first); see Retry-After', schema: GatewayErrorSchema },
};
const audited = {
  503: { description: 'the audit record could not be written (nothing was changed), or the broker did not confirm; retry', schema: GatewayErrorSchema },
};
const processLimits = {
  503: { description: 'every process slot and its queue are taken; see Retry-After', schema: GatewayErrorSchema },
  504: { description: 'the call passed its deadline (GATEWAY_PROCESS_TIMEOUT_MS) and was stopped', schema: GatewayErrorSchema },
};

/** Every route of the gateway contract (docs/gateway.md). */
export const ROUTES: readonly RouteSpec[] = [
  {
    method: 'GET',
    url: '/api/health',
    role: null,
    changes: false,
    summary:
      "The supervisor's health (200 when every worker consumes, 503 otherwise): without a key only {\"status\"}; with a viewer key the supervisor's answer with workers and reasons. The supervisor is asked at most once a second.",
    responses: { 200: { description: 'healthy', schema: GatewayHealthSchema }, 503: { description: 'not healthy', schema: GatewayHealthSchema } },
  },
  {
    method: 'GET',
    url: '/api/strategic/health',
    role: 'viewer',
    changes: false,
    summary: 'Strategic workers: status and figures measured over the last minute',
    responses: { 200: { description: 'figures', schema: StageHealthSchema }, ...auth },
  },
  {
    method: 'GET',
    url: '/api/tactical/health',
    role: 'viewer',
    changes: false,
    summary: 'Tactical workers: status and figures measured over the last minute',
    responses: { 200: { description: 'figures', schema: StageHealthSchema }, ...auth },
  },
  {
    method: 'POST',
    url: '/api/strategic/process',
    role: 'viewer',
    changes: false,
    summary: 'Strategic analysis of the last of the given 30m bars (49 to 500), by the strategic worker’s code, from these bars alone, in the worker-thread pool',
    body: StrategicProcessRequestSchema,
    responses: { 200: { description: 'analysis', schema: StrategicProcessResponseSchema }, 400: { description: 'invalid body, or more than 500 bars', schema: GatewayErrorSchema }, ...auth, ...processLimits },
  },
  {
    method: 'POST',
    url: '/api/tactical/process',
    role: 'viewer',
    changes: false,
    summary: 'Tactical decision for the last of the given 5m bars (1 to 2,000), by the tactical and strategic workers’ code and the current model, in the worker-thread pool',
    body: TacticalProcessRequestSchema,
    responses: { 200: { description: 'decision', schema: TacticalProcessResponseSchema }, 400: { description: 'invalid body, or more than 2,000 bars', schema: GatewayErrorSchema }, ...auth, ...processLimits },
  },
  {
    method: 'GET',
    url: '/api/results/:symbol',
    role: 'viewer',
    changes: false,
    summary: 'The latest N integrated results of a symbol, oldest first, each exactly as published',
    params: ResultsParamsSchema,
    query: ResultsQuerySchema,
    responses: { 200: { description: 'results', schema: ResultsResponseSchema }, 400: { description: 'invalid symbol or limit', schema: GatewayErrorSchema }, ...auth },
  },
  {
    method: 'POST',
    url: '/api/bars',
    role: 'operator',
    changes: true,
    summary: 'Publishes one bar or an array of bars to market.bars with confirms; all or nothing',
    body: BarsRequestSchema,
    responses: {
      202: { description: 'all published and confirmed', schema: BarsAcceptedSchema },
      400: { description: 'some bars invalid: the first 20 listed, nothing published', schema: BarsRejectedSchema },
      ...auth,
      ...audited,
    },
  },
  {
    method: 'POST',
    url: '/api/models/promote',
    role: 'admin',
    changes: true,
    summary: 'Promotes a model version in the registry and announces it, so running tactical workers swap to it between bars (as `pipeline models promote` does)',
    body: AdminPromoteSchema,
    responses: { 200: { description: 'promoted', schema: AdminModelResponseSchema }, 400: { description: 'invalid body, or unknown_version: not a listed registry version', schema: GatewayErrorSchema }, ...auth, ...audited },
  },
  {
    method: 'POST',
    url: '/api/models/rollback',
    role: 'admin',
    changes: true,
    summary: 'Rolls the promoted model back (to its parent, or to the given version) and announces the version now current',
    body: AdminRollbackSchema,
    responses: { 200: { description: 'rolled back', schema: AdminModelResponseSchema }, 400: { description: 'invalid body, or unknown_version', schema: GatewayErrorSchema }, ...auth, ...audited },
  },
  {
    method: 'POST',
    url: '/api/dead-letters/replay',
    role: 'admin',
    changes: true,
    summary: 'Replays dead letters to where they were first published (as `pipeline dlq replay`)',
    body: DlqReplayRequestSchema,
    responses: { 200: { description: 'replayed', schema: DlqReplayResponseSchema }, 400: { description: 'invalid body', schema: GatewayErrorSchema }, ...auth, ...audited },
  },
  {
    method: 'POST',
    url: '/api/ws-ticket',
    role: 'viewer',
    changes: false,
    summary: 'A single-use ticket for one WebSocket upgrade (/ws?ticket=), valid 30 s, bound to the key and its role: how a browser opens /ws without putting its key in the URL',
    responses: { 200: { description: 'ticket', schema: WsTicketResponseSchema }, ...auth },
  },
  {
    method: 'GET',
    url: '/api/openapi.json',
    role: 'viewer',
    changes: false,
    summary: 'This document',
    responses: { 200: { description: 'OpenAPI 3.1 document' }, ...auth },
  },
  {
    method: 'GET',
    url: '/ws',
    role: 'viewer',
    changes: false,
    summary:
      'WebSocket: each integrated result of the symbols as one text frame (the result JSON), in ts order per symbol. Authorization: Bearer <key> on the upgrade, or (browsers) ?ticket= from POST /api/ws-ticket; ?token=<key> is refused (401). Push-only: a data frame from the client closes it with 1008. Pinged every 30 s; no pong by the next ping closes it. A client too slow to keep up is closed with 1013. With stats=1, frames {"type":"stats",...} are added every 2 s.',
    query: WsQuerySchema,
    responses: {
      101: { description: 'switching to WebSocket' },
      400: { description: 'invalid symbols', schema: GatewayErrorSchema },
      ...auth,
      429: { description: 'rate limit reached, or the key (GATEWAY_WS_MAX_PER_KEY) or the gateway (GATEWAY_WS_MAX_TOTAL) has as many sockets open as allowed', schema: GatewayErrorSchema },
    },
  },
];

/** The OpenAPI 3.1 document of {@link ROUTES}, generated from the zod schemas. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const components: Record<string, unknown> = {};
  // Named schemas (`.meta({ id })`) become components; their references point there.
  const json = (schema: z.ZodType, io: 'input' | 'output'): unknown => {
    const raw = z.toJSONSchema(schema, { unrepresentable: 'any', io, target: 'draft-2020-12' }) as Record<string, unknown>;
    const text = JSON.stringify(raw).replaceAll('"#/$defs/', '"#/components/schemas/');
    const { $schema: _s, $defs, ...rest } = JSON.parse(text) as Record<string, unknown> & { $defs?: Record<string, unknown> };
    for (const [name, def] of Object.entries($defs ?? {})) if (!(name in components)) components[name] = def;
    return rest;
  };
  for (const route of ROUTES) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', route.params], ['query', route.query]] as const) {
      if (schema === undefined) continue;
      const js = json(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, s] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: s });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(route.responses)) {
      responses[status] = {
        description: r.description,
        ...(r.schema === undefined ? {} : { content: { [r.contentType ?? 'application/json']: { schema: json(r.schema, 'output') } } }),
      };
    }
    paths[path] = {
      ...(paths[path] ?? {}),
      [route.method.toLowerCase()]: {
        summary: route.summary,
        ...(route.role === null ? { security: [] } : { security: [{ bearer: [] }], 'x-required-role': route.role }),
        ...(route.changes ? { 'x-audited': true } : {}),
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(route.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: json(route.body, 'input') } } } }),
        responses,
      },
    };
  }
  components.Bar = json(BarSchema, 'input');
  return {
    openapi: '3.1.0',
    info: {
      title: 'Bar pipeline gateway',
      version: '2',
      description:
        'HTTP and WebSocket gateway of the bar pipeline (gateway contract version 2, wire contract version 1). Roles: viewer reads; operator also publishes bars; admin also replays dead letters and promotes or rolls back models. Errors are {"error": code, "message": what to do}.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <key> (a browser WebSocket passes ?ticket= from POST /api/ws-ticket instead)' } },
      schemas: components,
    },
    paths,
  };
}
