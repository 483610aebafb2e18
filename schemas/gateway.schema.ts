import { z } from 'zod';
import { BarSchema, SYMBOL_PATTERN } from './bar.schema';
import { IndicatorsSchema, IntegratedResultSchema, TacticalActionSchema, ExecutionStyleSchema } from './integrated-result.schema';
import { ConfidenceSchema, RegimeProbabilitiesSchema, RegimeSchema, SimilarPatternsSchema } from './strategic-context.schema';

/**
 * Request and response bodies of the gateway (gateway contract version 2, docs/gateway.md).
 * The gateway validates with these and builds its OpenAPI document from them.
 */

/** Most bars one POST /api/bars may carry (the body size limit applies too). */
export const MAX_BARS_PER_REQUEST = 10_000;
/** Most 30m bars one POST /api/strategic/process may carry. */
export const MAX_STRATEGIC_PROCESS_BARS = 500;
/** Most 5m bars one POST /api/tactical/process may carry. */
export const MAX_TACTICAL_PROCESS_BARS = 2000;

/** Every error the gateway answers: a stable code and what to do. */
export const GatewayErrorSchema = z
  .object({
    error: z.string().describe('stable machine-readable code, e.g. unauthorized, forbidden, bad_request'),
    message: z.string().describe('what went wrong and what to do about it'),
    issues: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('for bad_request: each invalid field, with its path (at most 20)'),
    truncated: z.literal(true).optional().describe('present when more issues were found than listed'),
  })
  .meta({ id: 'GatewayError' });

const symbol = z.string({ error: 'symbol must be a string' }).regex(SYMBOL_PATTERN, 'symbol must be 1 to 32 of A-Z a-z 0-9 . _ - /');

/** POST /api/strategic/process: a symbol's 30m bars, oldest first, at least 49. */
export const StrategicProcessRequestSchema = z
  .object({
    symbol,
    bars: z
      .array(BarSchema)
      .min(49, 'bars must hold at least 49 30m bars (48 returns for the 48-row matrix)')
      .max(MAX_STRATEGIC_PROCESS_BARS, `bars must hold at most ${MAX_STRATEGIC_PROCESS_BARS} bars (the limit of /api/strategic/process)`),
  })
  .strict()
  .meta({ id: 'StrategicProcessRequest' });
export type StrategicProcessRequest = z.infer<typeof StrategicProcessRequestSchema>;

/** The strategic analysis of the last bar of a {@link StrategicProcessRequestSchema}. */
export const StrategicProcessResponseSchema = z
  .object({
    symbol: z.string(),
    bar_close_ts: z.number().int(),
    features: z.array(z.string()).length(13),
    matrix: z.array(z.array(z.number().nullable()).length(13)).describe('48 rows, oldest first; null where a feature is still warming up'),
    regime: RegimeSchema.nullable(),
    regime_probabilities: RegimeProbabilitiesSchema.nullable(),
    confidence: ConfidenceSchema.nullable(),
    uncertainty: z.number().min(0).max(1).nullable(),
    similar_patterns: SimilarPatternsSchema.nullable(),
    degraded: z.array(z.string()),
    processing_time_ms: z.number().nonnegative(),
  })
  .meta({ id: 'StrategicProcessResponse' });
export type StrategicProcessResponse = z.infer<typeof StrategicProcessResponseSchema>;

/** POST /api/tactical/process: a symbol's 5m bars, oldest first. */
export const TacticalProcessRequestSchema = z
  .object({
    symbol,
    bars: z
      .array(BarSchema)
      .min(1, 'bars must hold at least one 5m bar')
      .max(MAX_TACTICAL_PROCESS_BARS, `bars must hold at most ${MAX_TACTICAL_PROCESS_BARS} bars (the limit of /api/tactical/process)`),
  })
  .strict()
  .meta({ id: 'TacticalProcessRequest' });
export type TacticalProcessRequest = z.infer<typeof TacticalProcessRequestSchema>;

/** The tactical decision for the last bar of a {@link TacticalProcessRequestSchema}. */
export const TacticalProcessResponseSchema = z
  .object({
    symbol: z.string(),
    ts: z.number().int(),
    indicators: IndicatorsSchema,
    strategic: IntegratedResultSchema.shape.strategic,
    actions: z.object({
      tactical: TacticalActionSchema.nullable(),
      risk: z.number().min(0).max(1).nullable(),
      execution: ExecutionStyleSchema.nullable(),
    }),
    target_position: z.number().min(-1).max(1).nullable(),
    combined_confidence: z.number().min(0).max(1).nullable(),
    model_version: z.string().nullable(),
    degraded: z.array(z.string()),
    processing_time_ms: z.number().nonnegative(),
  })
  .meta({ id: 'TacticalProcessResponse' });
export type TacticalProcessResponse = z.infer<typeof TacticalProcessResponseSchema>;

/** POST /api/bars: one bar or an array of bars. */
export const BarsRequestSchema = z
  .union([BarSchema, z.array(z.unknown()).min(1, 'send at least one bar').max(MAX_BARS_PER_REQUEST, `send at most ${MAX_BARS_PER_REQUEST} bars per request`)])
  .meta({ id: 'BarsRequest', description: 'one bar, or an array of bars (each validated as a bar)' });

export const BarsAcceptedSchema = z.object({ accepted: z.number().int().nonnegative() }).meta({ id: 'BarsAccepted' });

/** 400 of POST /api/bars: every invalid bar with its index and reasons; nothing was published. */
export const BarsRejectedSchema = GatewayErrorSchema.extend({
  invalid: z
    .array(z.object({ index: z.number().int().nonnegative(), reasons: z.array(z.string()) }))
    .describe('the first 20 invalid bars; `truncated: true` when there were more'),
}).meta({ id: 'BarsRejected' });

/** POST /api/ws-ticket: a single-use ticket for one `/ws?ticket=` upgrade. */
export const WsTicketResponseSchema = z
  .object({
    ticket: z.string().describe('opens one WebSocket once: /ws?symbols=A,B&ticket=<ticket>'),
    expires_in: z.number().int().positive().describe('seconds the ticket stays valid'),
  })
  .meta({ id: 'WsTicket' });
export type WsTicketResponse = z.infer<typeof WsTicketResponseSchema>;

/** GET /api/results/{symbol} path and query. */
export const ResultsParamsSchema = z.object({ symbol }).strict();
export const ResultsQuerySchema = z
  .object({
    limit: z.coerce
      .number({ error: 'limit must be an integer from 1 to 1000' })
      .int('limit must be an integer from 1 to 1000')
      .min(1, 'limit must be an integer from 1 to 1000')
      .max(1000, 'limit must be an integer from 1 to 1000')
      .default(100),
  })
  .strict();
export const ResultsResponseSchema = z.array(IntegratedResultSchema).meta({ id: 'RecentResults' });

/** GET /ws query: the symbols to stream (comma-separated); `stats=1` adds stats frames for the live page. */
export const WsQuerySchema = z
  .object({
    symbols: z
      .string({ error: 'symbols is required: /ws?symbols=A,B' })
      .transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x !== ''))
      .pipe(z.array(symbol).min(1, 'symbols must name at least one symbol').max(100, 'symbols may name at most 100 symbols')),
    ticket: z.string().max(200).optional().describe('a ticket from POST /api/ws-ticket (browsers); other clients send Authorization instead'),
    stats: z.enum(['0', '1']).optional(),
  })
  .strict();

const nullableNumber = z.number().nullable();

/** Figures of one worker kind, measured over the last minute (null when nothing was measured). */
export const StageHealthSchema = z
  .object({
    stage: z.enum(['strategic', 'tactical']),
    status: z.enum(['ok', 'degraded', 'unavailable']),
    reasons: z.array(z.string()),
    window_seconds: z.number().describe('span of the measurements, at most 60'),
    bars_per_second: nullableNumber,
    latency_ms_p50: nullableNumber,
    latency_ms_p99: nullableNumber,
    latency_source: z.string().describe('what the latency measures'),
    breakers: z.record(z.string(), z.enum(['closed', 'half_open', 'open'])).describe('by `<worker>/<stage>`'),
    model_version: z.string().nullable(),
    dead_letters: z.number().int().nullable().describe('messages waiting in pipeline.dead_letters'),
    degraded: z.array(z.string()).describe('figures that could not be measured, and why'),
  })
  .meta({ id: 'StageHealth' });
export type StageHealth = z.infer<typeof StageHealthSchema>;

/** GET /api/health: `{status}` without a key; with a viewer key, the supervisor's /health body, relayed. */
export const GatewayHealthSchema = z
  .object({ status: z.string() })
  .catchall(z.unknown())
  .meta({ id: 'PipelineHealth' });
