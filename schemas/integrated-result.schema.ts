import { z } from 'zod';
import { SYMBOL_PATTERN } from './bar.schema';
import {
  ConfidenceSchema,
  RegimeProbabilitiesSchema,
  RegimeSchema,
  SimilarPatternsSchema,
} from './strategic-context.schema';

const indicator = z.number().nullable();

/** The eleven indicator values of a 5m bar; null during each indicator's warm-up or when not built. */
export const IndicatorsSchema = z
  .object({
    sma20: indicator,
    ema12: indicator,
    ema26: indicator,
    rsi14: indicator,
    macd: indicator,
    macd_signal: indicator,
    macd_hist: indicator,
    bb_upper: indicator,
    bb_middle: indicator,
    bb_lower: indicator,
    atr14: indicator,
  });

export type Indicators = z.infer<typeof IndicatorsSchema>;

export const TacticalActionSchema = z.enum(['LONG', 'FLAT', 'SHORT']);
export const ExecutionStyleSchema = z.enum(['MARKET', 'LIMIT', 'WAIT']);

/**
 * One integrated result per accepted 5m bar (wire contract v1), routing key `results.<symbol>`,
 * `messageId` `<symbol>:5m:<ts>`.
 */
export const IntegratedResultSchema = z
  .object({
    v: z.literal(1),
    symbol: z.string().regex(SYMBOL_PATTERN),
    ts: z.number().int(),
    close_ts: z.number().int(),
    close: z.number(),
    indicators: IndicatorsSchema,
    strategic: z
      .object({
        bar_close_ts: z.number().int().nullable(),
        regime: RegimeSchema.nullable(),
        regime_probabilities: RegimeProbabilitiesSchema.nullable(),
        confidence: ConfidenceSchema.nullable(),
        uncertainty: z.number().min(0).max(1).nullable(),
        similar_patterns: SimilarPatternsSchema.nullable(),
        stale: z.boolean(),
      }),

    actions: z
      .object({
        tactical: TacticalActionSchema.nullable(),
        risk: z.number().min(0).max(1).nullable(),
        execution: ExecutionStyleSchema.nullable(),
      }),

    target_position: z.number().min(-1).max(1).nullable(),
    /**
     * The geometric mean (cube root of the product) of the probabilities the three agents' policies
     * gave to the actions they chose: how decided the policy was, not a probability of anything.
     */
    combined_confidence: z.number().min(0).max(1).nullable(),
    model_version: z.string().nullable(),
    degraded: z.array(z.string()),
    latency_ms: z.number().nonnegative(),
    /**
     * True when the decision was sampled for exploration (`PIPELINE_TRAINING=on`) rather than the
     * greedy policy's; absent otherwise. Added to contract 1 (a field, not a new version).
     */
    exploring: z.boolean().optional(),
  });

export type IntegratedResult = z.infer<typeof IntegratedResultSchema>;
