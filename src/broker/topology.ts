import type { Channel, Options } from 'amqplib';

/** Topic exchange users publish bars to; the tactical workers publish the 30m bars they build to it. */
export const EXCHANGE_BARS = 'market.bars';
/** Topic exchange of the integrated results, and of nothing else (users may bind `#`). */
export const EXCHANGE_RESULTS = 'pipeline.results';
/**
 * Topic exchange of the pipeline's own traffic: batches of 5m bars from `pipeline replay`
 * (`bars.5m.<symbol>`, content type `BAR_BATCH_CONTENT_TYPE`, to the tactical shards), 30m bars on
 * their way to the strategic workers
 * (`bars.30m.<symbol>`, also forwarded to {@link EXCHANGE_BARS}), contexts (`reply.<queue>`),
 * feedback (`feedback.<symbol>`), experience batches (`experience.<symbol>`) and model
 * announcements (`models.promoted`).
 */
export const EXCHANGE_INTERNAL = 'pipeline.internal';
/** Fanout exchange of dead letters. */
export const EXCHANGE_DLX = 'pipeline.dlx';
/** Consistent-hash exchange spreading 5m bars over the tactical shards (PIPELINE_SHARDS > 1 only). */
export const EXCHANGE_TACTICAL_RING = 'pipeline.tactical.ring';
/** Consistent-hash exchange spreading 30m bars and feedback over the strategic shards (PIPELINE_SHARDS > 1 only). */
export const EXCHANGE_STRATEGIC_RING = 'pipeline.strategic.ring';
/** Exchange type of the rings (plugin `rabbitmq_consistent_hash_exchange`). */
export const RING_EXCHANGE_TYPE = 'x-consistent-hash';
/** The plugin the rings need. */
export const RING_PLUGIN = 'rabbitmq_consistent_hash_exchange';

/**
 * Header naming the symbol a message is about. The strategic ring hashes on it (`hash-header`), so
 * that a symbol's 30m bars and its feedback, which have different routing keys, reach the same shard.
 */
export const HEADER_SYMBOL = 'x-symbol';

/** Queue of every dead letter, with `x-rejection-reason` and `x-rejected-by`. */
export const QUEUE_DEAD_LETTERS = 'pipeline.dead_letters';
/** The users' queue of integrated results. */
export const QUEUE_RESULTS = 'integrated_results';
/** Experience batches for the trainer. */
export const QUEUE_EXPERIENCE = 'tactical_experience';

/** Roles whose queues are sharded by symbol. */
export type ShardedQueueKind = 'tactical' | 'strategic' | 'context';

const SHARD_QUEUE_BASE: Record<ShardedQueueKind, string> = {
  /** 5m bars of the symbols of tactical shard k. */
  tactical: 'tactical_processing',
  /** 30m bars and feedback of the symbols of strategic shard k. */
  strategic: 'strategic_processing',
  /** Strategic contexts answering tactical shard k's 30m bars (its reply-to queue). */
  context: 'tactical_context',
};

/**
 * The one place a shard's queue name is built: `tactical_processing.<k>`,
 * `strategic_processing.<k>`, `tactical_context.<k>`, k from 0 to shards − 1.
 */
export function shardQueue(kind: ShardedQueueKind, shard: number): string {
  if (!Number.isInteger(shard) || shard < 0) throw new RangeError(`shard must be a non-negative integer, got ${shard}`);
  return `${SHARD_QUEUE_BASE[kind]}.${shard}`;
}

/** True when `name` is a context queue a strategic worker may answer to (a 30m bar's reply-to). */
export function isContextQueue(name: unknown): name is string {
  return typeof name === 'string' && /^tactical_context\.\d{1,4}$/.test(name);
}

/** Routing keys, built in one place. */
export const routingKeys = {
  bar: (timeframe: string, symbol: string): string => `bars.${timeframe}.${symbol}`,
  result: (symbol: string): string => `results.${symbol}`,
  /** A context on its way to the queue named in its 30m bar's reply-to. */
  reply: (queue: string): string => `reply.${queue}`,
  feedback: (symbol: string): string => `feedback.${symbol}`,
  experience: (symbol: string): string => `experience.${symbol}`,
  model: (): string => 'models.promoted',
} as const;

/**
 * Message ids, built in one place (a consumer's dedupe and the dead-letter tools key on them):
 * `<symbol>:<timeframe>:<ts>` for a bar (as `barId` of the bar schema), `<symbol>:context:<ts>`,
 * `<symbol>:feedback:<ts>`, `<symbol>:experience:<ts>`, `experience-batch:<symbol>:<ts>:<n>`,
 * `model:<version>`, and `dlq:<queue>:<tag>:<ms>` for a dead letter that arrived without one.
 */
export const messageIds = {
  bar: (symbol: string, timeframe: string, ts: number): string => `${symbol}:${timeframe}:${ts}`,
  context: (symbol: string, barCloseTs: number): string => `${symbol}:context:${barCloseTs}`,
  feedback: (symbol: string, windowCloseTs: number): string => `${symbol}:feedback:${windowCloseTs}`,
  experience: (symbol: string, ts: number): string => `${symbol}:experience:${ts}`,
  experienceBatch: (symbol: string, firstTs: number, size: number): string => `experience-batch:${symbol}:${firstTs}:${size}`,
  resultBatch: (symbol: string, firstTs: number, lastTs: number): string => `results:${symbol}:5m:${firstTs}..${lastTs}`,
  barBatch: (symbol: string, timeframe: string, firstTs: number, lastTs: number): string => `${symbol}:${timeframe}:${firstTs}..${lastTs}`,
  model: (version: string): string => `model:${version}`,
  deadLetter: (queue: string, deliveryTag: number, atMs: number): string => `dlq:${queue}:${deliveryTag}:${atMs}`,
} as const;

/**
 * Message headers the pipeline writes or reads, named in one place: the symbol a ring hashes on,
 * the producer's publish time, what the dead-lettering records, and what `pipeline dlq replay` adds.
 * The broker's own (`x-death`, `x-first-death-*`, `x-last-death-*`, `x-delivery-count`) are here too.
 */
export const headers = {
  symbol: HEADER_SYMBOL,
  publishedAt: 'x-published-at',
  rejectionReason: 'x-rejection-reason',
  rejectedBy: 'x-rejected-by',
  rejectedAt: 'x-rejected-at',
  originalExchange: 'x-original-exchange',
  originalRoutingKey: 'x-original-routing-key',
  originalQueue: 'x-original-queue',
  replayCount: 'x-replay-count',
  replayedAt: 'x-replayed-at',
  death: 'x-death',
  firstDeathExchange: 'x-first-death-exchange',
  firstDeathQueue: 'x-first-death-queue',
  firstDeathReason: 'x-first-death-reason',
  lastDeathExchange: 'x-last-death-exchange',
  lastDeathQueue: 'x-last-death-queue',
  lastDeathReason: 'x-last-death-reason',
  deliveryCount: 'x-delivery-count',
} as const;

/** Queue arguments of a bounded queue that drops its oldest messages (a live feed). */
export function boundedQueueArguments(maxLength: number): Record<string, unknown> {
  return { 'x-max-length': maxLength, 'x-overflow': 'drop-head' };
}

/** Options of {@link declareTopology}. */
export interface TopologyOptions {
  /** `quorum` (default) or `classic` queues. */
  queueType: 'quorum' | 'classic';
  /** Deliveries of a message before the broker dead-letters it (quorum `x-delivery-limit`). */
  maxAttempts: number;
  /** Shards of the tactical and strategic roles (PIPELINE_SHARDS). @defaultValue 1 */
  shards?: number;
}

/** The broker's delivery limit of a shard queue, in units of `maxAttempts` (a backstop, see below). */
const SHARD_DELIVERY_LIMIT_FACTOR = 4;

/**
 * Arguments of a work queue: durable, dead-lettering to {@link EXCHANGE_DLX}. Shard queues (`sharded`)
 * are single-active-consumer, and their broker delivery limit is a backstop only: the consumers
 * decide retries and dead letters per message themselves (a worker that dies returns every message
 * it held, each counting a delivery, so a limit of `maxAttempts` would dead-letter innocent bars
 * after a few crashes caused by another one).
 */
export function workQueueOptions(options: TopologyOptions, sharded = false): Options.AssertQueue {
  const args: Record<string, unknown> = { 'x-dead-letter-exchange': EXCHANGE_DLX };
  if (options.queueType === 'quorum') {
    args['x-queue-type'] = 'quorum';
    // A message that kills its worker on every delivery must not loop forever: after the limit the
    // broker dead-letters it (at least once: it is never dropped between the queue and the DLX).
    args['x-delivery-limit'] = sharded ? options.maxAttempts * SHARD_DELIVERY_LIMIT_FACTOR : options.maxAttempts;
    args['x-dead-letter-strategy'] = 'at-least-once';
    args['x-overflow'] = 'reject-publish';
  }
  // One consumer at a time keeps per-symbol order; a second worker of the same shard waits as a hot
  // standby and takes over when the first one's channel closes.
  if (sharded) args['x-single-active-consumer'] = true;
  return { durable: true, arguments: args };
}

/** Ring binding weight: points on the hash ring per queue (more points, more even spread). */
const RING_WEIGHT = '32';

/** Bindings of the pipeline for `shards` shards, as [destination, source exchange, pattern, kind]. */
export function bindings(shards: number): { destination: string; source: string; pattern: string; exchangeToExchange?: boolean }[] {
  const out: { destination: string; source: string; pattern: string; exchangeToExchange?: boolean }[] = [
    { destination: QUEUE_RESULTS, source: EXCHANGE_RESULTS, pattern: 'results.#' },
    { destination: QUEUE_EXPERIENCE, source: EXCHANGE_INTERNAL, pattern: 'experience.#' },
    // The 30m bars the pipeline builds are public: forwarded to market.bars for anyone bound there.
    { destination: EXCHANGE_BARS, source: EXCHANGE_INTERNAL, pattern: 'bars.30m.#', exchangeToExchange: true },
  ];
  for (let k = 0; k < shards; k++) {
    const context = shardQueue('context', k);
    out.push({ destination: context, source: EXCHANGE_INTERNAL, pattern: routingKeys.reply(context) });
  }
  if (shards === 1) {
    // '#' rather than '*': symbols may contain '.', which splits topic words.
    out.push({ destination: shardQueue('tactical', 0), source: EXCHANGE_BARS, pattern: 'bars.5m.#' });
    // Batches of 5m bars (replay) enter on the internal exchange, not visible to users of market.bars.
    out.push({ destination: shardQueue('tactical', 0), source: EXCHANGE_INTERNAL, pattern: 'bars.5m.#' });
    out.push({ destination: shardQueue('strategic', 0), source: EXCHANGE_INTERNAL, pattern: 'bars.30m.#' });
    out.push({ destination: shardQueue('strategic', 0), source: EXCHANGE_INTERNAL, pattern: 'feedback.#' });
    return out;
  }
  out.push({ destination: EXCHANGE_TACTICAL_RING, source: EXCHANGE_BARS, pattern: 'bars.5m.#', exchangeToExchange: true });
  // Same routing key as the symbol's single bars, so a batch reaches the same shard.
  out.push({ destination: EXCHANGE_TACTICAL_RING, source: EXCHANGE_INTERNAL, pattern: 'bars.5m.#', exchangeToExchange: true });
  out.push({ destination: EXCHANGE_STRATEGIC_RING, source: EXCHANGE_INTERNAL, pattern: 'bars.30m.#', exchangeToExchange: true });
  out.push({ destination: EXCHANGE_STRATEGIC_RING, source: EXCHANGE_INTERNAL, pattern: 'feedback.#', exchangeToExchange: true });
  for (let k = 0; k < shards; k++) {
    out.push({ destination: shardQueue('tactical', k), source: EXCHANGE_TACTICAL_RING, pattern: RING_WEIGHT });
    out.push({ destination: shardQueue('strategic', k), source: EXCHANGE_STRATEGIC_RING, pattern: RING_WEIGHT });
  }
  return out;
}

/**
 * Declares every exchange, queue and binding of the wire contract for the configured number of
 * shards. Idempotent: runs at start and again after every reconnect. A queue that exists with other
 * arguments makes the broker close the channel with PRECONDITION_FAILED, and a ring declared on a
 * broker without the consistent-hash plugin fails with COMMAND_INVALID; the caller treats both as
 * fatal.
 *
 * Routing by symbol: the tactical ring hashes the routing key `bars.5m.<symbol>` (one key per
 * symbol, and the one thing every producer sets); the strategic ring hashes the header
 * {@link HEADER_SYMBOL}, which the tactical workers set on every 30m bar and feedback they publish.
 */
export async function declareTopology(channel: Channel, options: TopologyOptions): Promise<void> {
  const shards = options.shards ?? 1;
  await channel.assertExchange(EXCHANGE_BARS, 'topic', { durable: true });
  await channel.assertExchange(EXCHANGE_RESULTS, 'topic', { durable: true });
  await channel.assertExchange(EXCHANGE_INTERNAL, 'topic', { durable: true });
  await channel.assertExchange(EXCHANGE_DLX, 'fanout', { durable: true });
  if (shards > 1) {
    await channel.assertExchange(EXCHANGE_TACTICAL_RING, RING_EXCHANGE_TYPE, { durable: true });
    await channel.assertExchange(EXCHANGE_STRATEGIC_RING, RING_EXCHANGE_TYPE, {
      durable: true,
      arguments: { 'hash-header': HEADER_SYMBOL },
    });
  }
  const dlqArgs: Record<string, unknown> =
    options.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
  await channel.assertQueue(QUEUE_DEAD_LETTERS, { durable: true, arguments: dlqArgs });
  await channel.bindQueue(QUEUE_DEAD_LETTERS, EXCHANGE_DLX, '');
  await channel.assertQueue(QUEUE_RESULTS, workQueueOptions(options));
  await channel.assertQueue(QUEUE_EXPERIENCE, workQueueOptions(options));
  for (let k = 0; k < shards; k++) {
    for (const kind of ['tactical', 'strategic', 'context'] as const) {
      await channel.assertQueue(shardQueue(kind, k), workQueueOptions(options, true));
    }
  }
  for (const b of bindings(shards)) {
    if (b.exchangeToExchange === true) await channel.bindExchange(b.destination, b.source, b.pattern);
    else await channel.bindQueue(b.destination, b.source, b.pattern);
  }
}
