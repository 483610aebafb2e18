import { z } from 'zod';
import { IntegratedResultSchema } from './integrated-result.schema';

/**
 * Content type of the integrated results of one batch of bars, sent by the tactical worker to the
 * replay that asked for them (internal: live results are one message each on `pipeline.results`).
 */
export const RESULT_BATCH_CONTENT_TYPE = 'application/vnd.pipeline.result-batch+json';

/**
 * Header of a bar batch naming the routing key on `pipeline.internal` its results go to, batched,
 * instead of one message each on `pipeline.results` (a private replay's own results queue).
 */
export const HEADER_RESULTS_TO = 'x-results-to';

/** The routing keys a bar batch may name in {@link HEADER_RESULTS_TO}. */
export const RESULTS_TO_PATTERN = /^replay\.results\.[A-Za-z0-9_-]{1,64}$/;

/** The results of the bars of one batch that the worker accepted, each exactly as it would be published alone. */
export const ResultBatchSchema = z.object({
  v: z.literal(1, { error: 'v must be 1' }),
  results: z.array(IntegratedResultSchema),
});

export type ResultBatch = z.infer<typeof ResultBatchSchema>;
