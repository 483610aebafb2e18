import { z } from 'zod';
import { SYMBOL_PATTERN } from './bar.schema';
import { IndicatorsSchema } from './integrated-result.schema';
import {
  ConfidenceSchema,
  RegimeProbabilitiesSchema,
  SimilarPatternsSchema,
} from './strategic-context.schema';

/** Sizes of the agents' observations (the tactical, risk and execution actors) and of the critic's global state. */
export const TACTICAL_OBS_DIM = 23;
export const RISK_OBS_DIM = 10;
export const EXECUTION_OBS_DIM = 10;
export const GLOBAL_STATE_DIM = TACTICAL_OBS_DIM + RISK_OBS_DIM + EXECUTION_OBS_DIM;

// zod 4 numbers are finite by construction (and JSON cannot carry Infinity or NaN).
const vector = (name: string, length: number) =>
  z
    .array(z.number({ error: `${name} must hold finite numbers` }))
    .length(length, `${name} must have exactly ${length} values`);

const actionIndex = (name: string, count: number) =>
  z
    .number({ error: `${name} must be a number` })
    .int(`${name} must be an integer action index`)
    .min(0, `${name} must be an action index 0..${count - 1}`)
    .max(count - 1, `${name} must be an action index 0..${count - 1}`);

const logProb = (name: string) =>
  z.number({ error: `${name} must be a finite number` }).max(0, `${name} must be a log-probability (<= 0)`);

const price = (name: string) =>
  z.number({ error: `${name} must be a finite number` }).positive(`${name} must be greater than 0`);

/**
 * One experience transition (v1), published alone to `experience.<symbol>` on `pipeline.internal`
 * (queue `tactical_experience`, `messageId` `<symbol>:experience:<ts>`) or inside an
 * {@link ExperienceBatchSchema}; the tactical workers send the same transitions as binary
 * experience frames (schemas/experience-frame.ts), which decode to exactly these objects. When
 * training is on: the decision made on the close of bar `ts`, the team reward it earned over the
 * next bar, and the market inputs of the decision (so the trainer can replay held-out bars).
 * Observation lengths are the networks' input sizes (src/learning/features.ts); action indices
 * index TACTICAL_ACTIONS (3), RISK_SIZES (4) and EXECUTION_ACTIONS (3).
 */
export const ExperienceSchema = z
  .object({
    v: z.literal(1, { error: 'v must be 1' }),
    symbol: z
      .string({ error: 'symbol must be a string' })
      .regex(SYMBOL_PATTERN, 'symbol must be 1 to 32 of A-Z a-z 0-9 . _ - /'),
    /** Open time of the bar the decision was made on (epoch ms). */
    ts: z.number({ error: 'ts must be a number' }).int('ts must be an integer (epoch milliseconds)').nonnegative(),
    model_version: z.string().min(1).nullable(),
    observations: z
      .object({
        tactical: vector('observations.tactical', TACTICAL_OBS_DIM),
        risk: vector('observations.risk', RISK_OBS_DIM),
        execution: vector('observations.execution', EXECUTION_OBS_DIM),
      })
      .strict(),
    global_state: vector('global_state', GLOBAL_STATE_DIM),
    actions: z
      .object({
        tactical: actionIndex('actions.tactical', 3),
        risk: actionIndex('actions.risk', 4),
        execution: actionIndex('actions.execution', 3),
      })
      .strict(),
    log_probs: z
      .object({
        tactical: logProb('log_probs.tactical'),
        risk: logProb('log_probs.risk'),
        execution: logProb('log_probs.execution'),
      })
      .strict(),
    reward: z.number({ error: 'reward must be a finite number' }),
    done: z.boolean({ error: 'done must be a boolean' }),
    market: z
      .object({
        bar: z
          .object({
            ts: z.number().int(),
            open: price('market.bar.open'),
            high: price('market.bar.high'),
            low: price('market.bar.low'),
            close: price('market.bar.close'),
            volume: z.number({ error: 'market.bar.volume must be a finite number' }).nonnegative(),
          })
          .strict(),
        indicators: IndicatorsSchema,
        strategic: z
          .object({
            regime_probabilities: RegimeProbabilitiesSchema.nullable(),
            uncertainty: z.number().min(0).max(1).nullable(),
            confidence: ConfidenceSchema.nullable(),
            similar_patterns: SimilarPatternsSchema.nullable(),
          })
          .strict()
          .nullable(),
      })
      .strict(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.market.bar.ts !== t.ts) {
      ctx.addIssue({ code: 'custom', path: ['market', 'bar', 'ts'], message: `market.bar.ts ${t.market.bar.ts} must equal ts ${t.ts}` });
    }
    const { bar } = t.market;
    if (!(bar.low <= Math.min(bar.open, bar.close) && Math.max(bar.open, bar.close) <= bar.high)) {
      ctx.addIssue({ code: 'custom', path: ['market', 'bar'], message: 'market.bar must have low <= min(open, close) <= max(open, close) <= high' });
    }
  });
export type Experience = z.infer<typeof ExperienceSchema>;

/** Content type of an {@link ExperienceBatchSchema} message (a single transition is `application/json`). */
export const EXPERIENCE_BATCH_CONTENT_TYPE = 'application/vnd.pipeline.experience-batch+json';

/**
 * A batch of experience transitions (v1), as tactical workers before the binary experience frame
 * published them to `experience.batch` on `pipeline.internal` (queue `tactical_experience`,
 * content type {@link EXPERIENCE_BATCH_CONTENT_TYPE}, the JSON compressed as raw DEFLATE with
 * content encoding `deflate`; plain JSON is accepted too), and as the trainer still accepts them
 * (`ExperienceBatcher` with `format: 'json'` sends them): one message per group of bars.
 * Each transition is exactly an {@link ExperienceSchema} message and keeps its own identity
 * `<symbol>:experience:<ts>`, by which the trainer drops a transition it has already trained on.
 */
export const ExperienceBatchSchema = z
  .object({
    v: z.literal(1, { error: 'v must be 1' }),
    transitions: z.array(ExperienceSchema).min(1, 'transitions must hold at least one transition'),
  })
  .strict();
export type ExperienceBatch = z.infer<typeof ExperienceBatchSchema>;
