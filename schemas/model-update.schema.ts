import { z } from 'zod';

/**
 * Announcement of a newly promoted model version (v1), published to the fanout exchange
 * `pipeline.internal` (routing key `models.promoted`) with `messageId` `model:<version>`. Tactical workers load that version from the
 * model registry and swap it in between bars.
 */
export const ModelUpdateSchema = z
  .object({
    v: z.literal(1, { error: 'v must be 1' }),
    /** The promoted version, `v0001`, `v0002`, ... */
    version: z.string().regex(/^v\d{4,}$/, 'version must look like v0001'),
    /** The version it was trained from (null: the seeded initial policy). */
    parent: z
      .string()
      .regex(/^v\d{4,}$/, 'parent must look like v0001')
      .nullable(),
    /** Held-out evaluation that justified the promotion. */
    metrics: z
      .object({
        /** Mean annualised Sharpe over the held-out window's symbols. */
        sharpe: z.number(),
        /** Identifies the held-out window. */
        window: z.string().optional(),
      })
      .passthrough()
      .nullable(),
    /** ISO-8601 time of the promotion. */
    promoted_at: z.iso.datetime({ error: 'promoted_at must be an ISO-8601 UTC time' }),
  })
  .strict();
export type ModelUpdate = z.infer<typeof ModelUpdateSchema>;
