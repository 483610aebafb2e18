import type { Channel, Options } from 'amqplib';

/** Topic exchange users publish bars to; the resampler publishes 30m bars back to it. */
export const EXCHANGE_BARS = 'market.bars';
/** Topic exchange of everything the pipeline emits: results, contexts, feedback, experience. */
export const EXCHANGE_RESULTS = 'pipeline.results';
/** Fanout exchange of dead letters. */
export const EXCHANGE_DLX = 'pipeline.dlx';
/** Fanout exchange announcing new promoted model versions to tactical workers. */
export const EXCHANGE_MODELS = 'pipeline.models';

/** Queue of every dead letter, with `x-rejection-reason` and `x-rejected-by`. */
export const QUEUE_DEAD_LETTERS = 'pipeline.dead_letters';
/** The users' queue of integrated results. */
export const QUEUE_RESULTS = 'integrated_results';
/** 5m bars for the tactical worker. */
export const QUEUE_TACTICAL = 'tactical_processing';
/** 5m bars for the resampler. */
export const QUEUE_RESAMPLER = 'resampler_processing';
/** 30m bars for the strategic worker. */
export const QUEUE_STRATEGIC = 'strategic_processing';
/** Strategic contexts for the tactical worker's context buffer. */
export const QUEUE_CONTEXT = 'tactical_context';
/** Six-bar feedback for the strategic worker. */
export const QUEUE_FEEDBACK = 'strategic_feedback';
/** Transitions for the trainer. */
export const QUEUE_EXPERIENCE = 'tactical_experience';

/** Routing keys, built in one place. */
export const routingKeys = {
  bar: (timeframe: string, symbol: string): string => `bars.${timeframe}.${symbol}`,
  result: (symbol: string): string => `results.${symbol}`,
  context: (symbol: string): string => `context.${symbol}`,
  feedback: (symbol: string): string => `feedback.${symbol}`,
  experience: (symbol: string): string => `experience.${symbol}`,
} as const;

/** Options of {@link declareTopology}. */
export interface TopologyOptions {
  /** `quorum` (default) or `classic` queues. */
  queueType: 'quorum' | 'classic';
  /** Deliveries of a message before the broker dead-letters it (quorum `x-delivery-limit`). */
  maxAttempts: number;
}

/** Arguments of a work queue: durable, dead-lettering to {@link EXCHANGE_DLX}. */
export function workQueueOptions(options: TopologyOptions): Options.AssertQueue {
  const args: Record<string, unknown> = { 'x-dead-letter-exchange': EXCHANGE_DLX };
  if (options.queueType === 'quorum') {
    args['x-queue-type'] = 'quorum';
    // A message that kills its worker on every delivery must not loop forever: after the limit the
    // broker dead-letters it (at least once: it is never dropped between the queue and the DLX).
    args['x-delivery-limit'] = options.maxAttempts;
    args['x-dead-letter-strategy'] = 'at-least-once';
    args['x-overflow'] = 'reject-publish';
  }
  return { durable: true, arguments: args };
}

/** Bindings of the work queues, as [queue, exchange, pattern]. */
export const BINDINGS: readonly [string, string, string][] = [
  // '#' rather than '*': symbols may contain '.', which splits topic words.
  [QUEUE_TACTICAL, EXCHANGE_BARS, 'bars.5m.#'],
  [QUEUE_RESAMPLER, EXCHANGE_BARS, 'bars.5m.#'],
  [QUEUE_STRATEGIC, EXCHANGE_BARS, 'bars.30m.#'],
  [QUEUE_RESULTS, EXCHANGE_RESULTS, 'results.#'],
  [QUEUE_CONTEXT, EXCHANGE_RESULTS, 'context.#'],
  [QUEUE_FEEDBACK, EXCHANGE_RESULTS, 'feedback.#'],
  [QUEUE_EXPERIENCE, EXCHANGE_RESULTS, 'experience.#'],
];

/**
 * Declares every exchange, queue and binding of the wire contract. Idempotent: runs at start and
 * again after every reconnect. A queue that exists with other arguments makes the broker close the
 * channel with PRECONDITION_FAILED, which the caller treats as fatal.
 */
export async function declareTopology(channel: Channel, options: TopologyOptions): Promise<void> {
  await channel.assertExchange(EXCHANGE_BARS, 'topic', { durable: true });
  await channel.assertExchange(EXCHANGE_RESULTS, 'topic', { durable: true });
  await channel.assertExchange(EXCHANGE_DLX, 'fanout', { durable: true });
  await channel.assertExchange(EXCHANGE_MODELS, 'fanout', { durable: true });
  const dlqArgs: Record<string, unknown> =
    options.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
  await channel.assertQueue(QUEUE_DEAD_LETTERS, { durable: true, arguments: dlqArgs });
  await channel.bindQueue(QUEUE_DEAD_LETTERS, EXCHANGE_DLX, '');
  const queueOptions = workQueueOptions(options);
  const queues = new Set(BINDINGS.map(([q]) => q));
  for (const queue of queues) await channel.assertQueue(queue, queueOptions);
  for (const [queue, exchange, pattern] of BINDINGS) await channel.bindQueue(queue, exchange, pattern);
}
