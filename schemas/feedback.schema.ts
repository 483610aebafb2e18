import { z } from 'zod';
import { SYMBOL_PATTERN } from './bar.schema';
import { ConfidenceSchema, RegimeSchema } from './strategic-context.schema';

/**
 * Six-bar feedback: what the tactical decisions of one 30m window achieved, published by the
 * tactical worker to `feedback.<symbol>` on `pipeline.results` once per 30m period with bars, and
 * used by the strategic worker in its confidence.
 */
export const FeedbackSchema = z
  .object({
    v: z.literal(1),
    symbol: z.string().regex(SYMBOL_PATTERN),
    /** Close time of the 30m window (a multiple of 30 minutes). */
    window_close_ts: z.number().int(),
    /** 5m bars of the window seen by the tactical worker (6 unless the feed had gaps). */
    bars: z.number().int().min(1).max(6),
    /** Outcomes of directional (LONG or SHORT) decisions realised in the window. */
    directional: z.number().int().nonnegative(),
    /** Of those, how many had the direction of the bar's close-to-close move. */
    hits: z.number().int().nonnegative(),
    /** hits / directional, null when no decision was directional. */
    hit_rate: z.number().min(0).max(1).nullable(),
    /** Log change of the agents' equity over the window, after costs. */
    realised_return: z.number(),
    /** Costs paid per unit traded in the window, in basis points of the close (null without trades). */
    slippage_bps: z.number().nonnegative().nullable(),
    /** The regime and confidence of the strategic context in force at the window's last bar. */
    regime: RegimeSchema.nullable(),
    confidence: ConfidenceSchema.nullable(),
    model_version: z.string().nullable(),
  });

export type Feedback = z.infer<typeof FeedbackSchema>;
