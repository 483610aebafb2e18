import { z } from 'zod';
import { SYMBOL_PATTERN } from './bar.schema';

export const RegimeSchema = z.enum(['BULL', 'BEAR', 'SIDEWAYS', 'VOLATILE']);
export type RegimeName = z.infer<typeof RegimeSchema>;
export const ConfidenceSchema = z.enum(['LOW', 'MEDIUM', 'HIGH']);
export type ConfidenceLevel = z.infer<typeof ConfidenceSchema>;

const probability = z.number().min(0).max(1);

/** Probability of each regime; the four sum to 1. */
export const RegimeProbabilitiesSchema = z
  .object({ BULL: probability, BEAR: probability, SIDEWAYS: probability, VOLATILE: probability })

export type RegimeProbabilities = z.infer<typeof RegimeProbabilitiesSchema>;

/** What followed the most similar past patterns (only neighbours older than the bar, outcome known). */
export const SimilarPatternsSchema = z
  .object({
    k: z.number().int().nonnegative(),
    mean_forward_return: z.number().nullable(),
    up_fraction: probability.nullable(),
    mean_distance: z.number().nonnegative().nullable(),
  });

export type SimilarPatterns = z.infer<typeof SimilarPatternsSchema>;

/**
 * The strategic worker's context for one completed 30m bar, published to `context.<symbol>` on
 * `pipeline.results` and consumed by the tactical side. Fields of stages not built are null and the
 * stage is named in `degraded`.
 */
export const StrategicContextSchema = z
  .object({
    v: z.literal(1),
    symbol: z.string().regex(SYMBOL_PATTERN),
    /** Open time of the 30m bar. */
    ts: z.number().int(),
    /** Close time of the 30m bar (ts + 30 min). */
    bar_close_ts: z.number().int(),
    close: z.number(),
    regime: RegimeSchema.nullable(),
    regime_probabilities: RegimeProbabilitiesSchema.nullable(),
    confidence: ConfidenceSchema.nullable(),
    uncertainty: probability.nullable(),
    similar_patterns: SimilarPatternsSchema.nullable(),
    degraded: z.array(z.string()),
  });

export type StrategicContext = z.infer<typeof StrategicContextSchema>;
