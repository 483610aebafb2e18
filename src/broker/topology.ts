import type { Channel, Options } from 'amqplib';
import { contextShards, generationsOf, sourceGeneration, steadyLayout, type ShardGeneration, type ShardLayout } from './shard-generation';

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
 * `strategic_processing.<k>`, `tactical_context.<k>`, k from 0 to shards − 1. Generations above 0
 * (after `pipeline shards resize`) insert `g<generation>`: `tactical_processing.g1.<k>`; context
 * queues have no generation.
 */
export function shardQueue(kind: ShardedQueueKind, shard: number, generation = 0): string {
  if (!Number.isInteger(shard) || shard < 0) throw new RangeError(`shard must be a non-negative integer, got ${shard}`);
  if (!Number.isInteger(generation) || generation < 0) throw new RangeError(`generation must be a non-negative integer, got ${generation}`);
  return kind === 'context' || generation === 0 ? `${SHARD_QUEUE_BASE[kind]}.${shard}` : `${SHARD_QUEUE_BASE[kind]}.g${generation}.${shard}`;
}

/** The ring of a role in a generation: today's names for generation 0, `<ring>.g<generation>` above. */
export function ringExchange(kind: 'tactical' | 'strategic', generation = 0): string {
  const base = kind === 'tactical' ? EXCHANGE_TACTICAL_RING : EXCHANGE_STRATEGIC_RING;
  return generation === 0 ? base : `${base}.g${generation}`;
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

/**
 * Consumer arguments of a consumer that gets no message (zero credit, RabbitMQ's `x-credit`): the
 * graceful stop registers one as a barrier that makes the broker apply the acks sent before it.
 */
export function zeroCreditConsumerArguments(): Record<string, unknown> {
  return { 'x-credit': { credit: { '!': 'long', value: 0 }, drain: false } };
}

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
  /**
   * The recorded shard layout (see shard-generation.ts); when given it decides the queues, rings
   * and bindings, and `shards` is ignored. A function is called on every declaration (every
   * reconnect), so that a process that outlived a resize binds the layout's generation, not the
   * one it started with. @defaultValue generation 0 with `shards` shards
   */
  layout?: ShardLayout | (() => Promise<ShardLayout>);
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

/** One binding of the topology: a queue (or an exchange) bound to a source exchange. */
export interface TopologyBinding {
  destination: string;
  source: string;
  pattern: string;
  exchangeToExchange?: boolean;
}

/**
 * The bindings that feed a generation's queues of one role from the pipeline's exchanges (5m bars
 * from {@link EXCHANGE_BARS}; 30m bars and feedback from {@link EXCHANGE_INTERNAL}): straight to the
 * queue with one shard, through the generation's ring with more. `pipeline shards resize` moves
 * these and only these.
 */
export function sourceBindings(role: 'tactical' | 'strategic', generation: ShardGeneration): TopologyBinding[] {
  const single = generation.shards === 1;
  const destination = single ? shardQueue(role, 0, generation.generation) : ringExchange(role, generation.generation);
  // '#' rather than '*': symbols may contain '.', which splits topic words. Batches of 5m bars (replay)
  // enter on the internal exchange with the routing key of the symbol's single bars, so a batch
  // reaches the same shard, and users of market.bars never see them.
  const sources: [string, string][] =
    role === 'tactical'
      ? [[EXCHANGE_BARS, 'bars.5m.#'], [EXCHANGE_INTERNAL, 'bars.5m.#']]
      : [[EXCHANGE_INTERNAL, 'bars.30m.#'], [EXCHANGE_INTERNAL, 'feedback.#']];
  return sources.map(([source, pattern]) => (single ? { destination, source, pattern } : { destination, source, pattern, exchangeToExchange: true }));
}

/**
 * Bindings of the pipeline for `shards` shards (or for a recorded layout), as [destination, source
 * exchange, pattern, kind]. Only the source generation of each role is bound to the pipeline's
 * exchanges (see {@link sourceGeneration}); the other generation's ring keeps its queues only.
 */
export function bindings(shards: number, layout: ShardLayout = steadyLayout(shards)): TopologyBinding[] {
  const out: TopologyBinding[] = [
    { destination: QUEUE_RESULTS, source: EXCHANGE_RESULTS, pattern: 'results.#' },
    { destination: QUEUE_EXPERIENCE, source: EXCHANGE_INTERNAL, pattern: 'experience.#' },
    // The 30m bars the pipeline builds are public: forwarded to market.bars for anyone bound there.
    { destination: EXCHANGE_BARS, source: EXCHANGE_INTERNAL, pattern: 'bars.30m.#', exchangeToExchange: true },
  ];
  for (let k = 0; k < contextShards(layout); k++) {
    const context = shardQueue('context', k);
    out.push({ destination: context, source: EXCHANGE_INTERNAL, pattern: routingKeys.reply(context) });
  }
  out.push(...sourceBindings('tactical', sourceGeneration(layout, 'tactical')));
  out.push(...sourceBindings('strategic', sourceGeneration(layout, 'strategic')));
  for (const g of generationsOf(layout)) {
    if (g.shards === 1) continue;
    for (let k = 0; k < g.shards; k++) {
      out.push({ destination: shardQueue('tactical', k, g.generation), source: ringExchange('tactical', g.generation), pattern: RING_WEIGHT });
      out.push({ destination: shardQueue('strategic', k, g.generation), source: ringExchange('strategic', g.generation), pattern: RING_WEIGHT });
    }
  }
  return out;
}

/** Declares the rings of a generation with more than one shard (idempotent). */
export async function declareRings(channel: Channel, generation: ShardGeneration): Promise<void> {
  if (generation.shards <= 1) return;
  await channel.assertExchange(ringExchange('tactical', generation.generation), RING_EXCHANGE_TYPE, { durable: true });
  await channel.assertExchange(ringExchange('strategic', generation.generation), RING_EXCHANGE_TYPE, {
    durable: true,
    arguments: { 'hash-header': HEADER_SYMBOL },
  });
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
  const layout = typeof options.layout === 'function' ? await options.layout() : (options.layout ?? steadyLayout(options.shards ?? 1));
  await channel.assertExchange(EXCHANGE_BARS, 'topic', { durable: true });
  await channel.assertExchange(EXCHANGE_RESULTS, 'topic', { durable: true });
  await channel.assertExchange(EXCHANGE_INTERNAL, 'topic', { durable: true });
  await channel.assertExchange(EXCHANGE_DLX, 'fanout', { durable: true });
  for (const g of generationsOf(layout)) await declareRings(channel, g);
  const dlqArgs: Record<string, unknown> =
    options.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
  await channel.assertQueue(QUEUE_DEAD_LETTERS, { durable: true, arguments: dlqArgs });
  await channel.bindQueue(QUEUE_DEAD_LETTERS, EXCHANGE_DLX, '');
  await channel.assertQueue(QUEUE_RESULTS, workQueueOptions(options));
  await channel.assertQueue(QUEUE_EXPERIENCE, workQueueOptions(options));
  for (let k = 0; k < contextShards(layout); k++) await channel.assertQueue(shardQueue('context', k), workQueueOptions(options, true));
  for (const g of generationsOf(layout)) {
    for (let k = 0; k < g.shards; k++) {
      for (const kind of ['tactical', 'strategic'] as const) {
        await channel.assertQueue(shardQueue(kind, k, g.generation), workQueueOptions(options, true));
      }
    }
  }
  for (const b of bindings(layout.current.shards, layout)) {
    if (b.exchangeToExchange === true) await channel.bindExchange(b.destination, b.source, b.pattern);
    else await channel.bindQueue(b.destination, b.source, b.pattern);
  }
}
