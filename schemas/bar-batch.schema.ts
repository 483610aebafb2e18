import { z } from 'zod';
import { Bar5mSchema } from './bar.schema';

/**
 * Content type of a batch of 5m bars (internal: `pipeline replay` publishes it on
 * `pipeline.internal` as `bars.5m.<symbol>`; the public input stays one bar per message).
 */
export const BAR_BATCH_CONTENT_TYPE = 'application/vnd.pipeline.bar-batch+json';

/** Most bars one batch may carry. */
export const MAX_BATCH_BARS = 10_000;

/**
 * Consecutive 5m bars of one symbol in one message, oldest first (`ts` strictly increasing). The
 * tactical worker processes them exactly as if each had come as its own message, in this order, and
 * acknowledges the batch once every bar's result is confirmed and its state durable.
 */
export const BarBatchSchema = z
  .object({
    v: z.literal(1, { error: 'v must be 1' }),
    symbol: z.string({ error: 'symbol must be a string' }),
    bars: z.array(Bar5mSchema).min(1, 'a batch holds at least one bar').max(MAX_BATCH_BARS, `a batch holds at most ${MAX_BATCH_BARS} bars`),
  })
  .superRefine((batch, ctx) => {
    batch.bars.forEach((bar, i) => {
      if (bar.symbol !== batch.symbol)
        ctx.addIssue({ code: 'custom', path: ['bars', i, 'symbol'], message: `bar symbol ${bar.symbol} differs from the batch symbol ${batch.symbol}: one symbol per batch` });
      const prev = batch.bars[i - 1];
      if (prev !== undefined && bar.ts <= prev.ts)
        ctx.addIssue({ code: 'custom', path: ['bars', i, 'ts'], message: `ts ${bar.ts} is not after the previous bar's ${prev.ts}: bars of a batch go oldest first` });
    });
  });

export type BarBatch = z.infer<typeof BarBatchSchema>;
