import { z } from 'zod';

/**
 * Headers of a message in `pipeline.dead_letters`. The body is the rejected message, unchanged.
 * Messages the broker itself dead-letters (delivery limit reached) carry RabbitMQ's `x-death`
 * instead of the pipeline's headers.
 */
export const DeadLetterHeadersSchema = z
  .object({
    /** Why the message was rejected, in words a person can act on. */
    'x-rejection-reason': z.string().min(1),
    /** The stage that rejected it: `tactical`, `resampler`, `strategic`, ... */
    'x-rejected-by': z.string().min(1),
    'x-original-exchange': z.string(),
    'x-original-routing-key': z.string(),
    'x-original-queue': z.string(),
    /** ISO-8601 time of the rejection. */
    'x-rejected-at': z.string(),
  })
  .passthrough();
export type DeadLetterHeaders = z.infer<typeof DeadLetterHeadersSchema>;
