import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { IntegratedResultSchema } from '../../schemas/integrated-result.schema';
import type { BrokerConnection, ConnectionAttachment } from '../broker/broker-connection';
import { boundedQueueArguments, EXCHANGE_RESULTS, QUEUE_DEAD_LETTERS, routingKeys } from '../broker/topology';
import type { Logger } from '../observability/logger';
import type { RecentResults } from './recent-results';

/** Options of {@link ResultsFeed}. */
export interface ResultsFeedOptions {
  /** Messages the gateway's queue holds before the oldest is dropped (the gateway is a view, not a worker). @defaultValue 100000 */
  maxQueueLength?: number;
  /** Unacknowledged deliveries (the broker sends no more until some are acknowledged). @defaultValue 1000 */
  prefetchCount?: number;
  /** Deliveries acknowledged together, with one `multiple` ack. @defaultValue 250 */
  ackEvery?: number;
  /** Longest time a delivery waits for its batched acknowledgement when fewer than `ackEvery` are pending. @defaultValue 20 */
  ackAfterMs?: number;
  log: Logger;
}

/**
 * The gateway's own queue: a server-named, exclusive, auto-deleted queue bound to
 * `pipeline.results` with `results.#`, so the gateway sees every result without touching
 * `integrated_results` or any other queue of the pipeline. Redeclared and rebound on every
 * reconnect (results published while the gateway was disconnected are not seen: it keeps recent
 * results, it is not a durable subscriber). Each valid result goes to {@link RecentResults}; invalid
 * bodies are counted and dropped (they are not ours to dead-letter). Also reads the depth of
 * `pipeline.dead_letters` for the live page.
 */
export class ResultsFeed implements ConnectionAttachment {
  private channel: Channel | null = null;
  private model: ChannelModel | null = null;
  /** Results received and valid. */
  received = 0;
  /** Bodies that were not valid integrated results. */
  invalid = 0;
  private deadLetters: number | null = null;
  /** The newest delivery not yet acknowledged, with the count of those before it, on `channel`. */
  private unacked: { channel: Channel; last: ConsumeMessage; count: number } | null = null;
  private ackTimer: NodeJS.Timeout | null = null;

  constructor(
    connection: BrokerConnection,
    private readonly results: RecentResults,
    private readonly options: ResultsFeedOptions,
  ) {
    connection.attach(this);
  }

  /** True while the queue is consumed. */
  get consuming(): boolean {
    return this.channel !== null;
  }

  /** @internal */
  async attach(model: ChannelModel): Promise<void> {
    this.model = model;
    const channel = await model.createChannel();
    channel.on('error', (err: Error) => this.options.log.warn({ err }, 'results feed channel error'));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = null;
    });
    const prefetchCount = this.options.prefetchCount ?? 1000;
    const ackEvery = Math.min(this.options.ackEvery ?? 250, prefetchCount);
    await channel.prefetch(prefetchCount);
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: boundedQueueArguments(this.options.maxQueueLength ?? 100_000),
    });
    await channel.bindQueue(queue, EXCHANGE_RESULTS, routingKeys.result('#'));
    // Acknowledged in batches with a bounded prefetch: the broker then keeps what the gateway has not
    // taken yet in this queue, where x-max-length drops the oldest, instead of pushing it into the
    // gateway's socket and memory unbounded (as noAck would). The gateway still never pushes back on
    // the pipeline: its queue is its own.
    await channel.consume(queue, (msg: ConsumeMessage | null) => {
      if (msg === null) {
        this.options.log.warn('results feed consumer cancelled by the broker');
        return;
      }
      this.handle(msg.content);
      this.noteDelivery(channel, msg, ackEvery);
    });
    this.channel = channel;
    this.options.log.info('results feed consuming');
    // Read the dead-letter depth now rather than at the first stats tick, so /api/*/health reports it
    // from the moment the gateway consumes.
    await this.refreshDeadLetters();
  }

  /** @internal */
  detach(): void {
    this.channel = null;
    this.model = null;
    this.dropUnacked();
  }

  /** Counts a handled delivery; acknowledges it and all before it once `ackEvery` are pending or `ackAfterMs` passed. */
  private noteDelivery(channel: Channel, msg: ConsumeMessage, ackEvery: number): void {
    const pending = this.unacked;
    let current = pending;
    if (current === null || current.channel !== channel) current = this.unacked = { channel, last: msg, count: 1 };
    else {
      current.last = msg;
      current.count++;
    }
    if (current.count >= ackEvery) this.ackPending();
    else if (this.ackTimer === null) this.ackTimer = setTimeout(() => this.ackPending(), this.options.ackAfterMs ?? 20).unref();
  }

  private ackPending(): void {
    const pending = this.unacked;
    this.dropUnacked();
    if (pending === null) return;
    try {
      pending.channel.ack(pending.last, true);
    } catch (err) {
      // A channel that closed meanwhile: its deliveries go back to the queue (or with it).
      this.options.log.debug({ err }, 'results feed ack on a closed channel');
    }
  }

  private dropUnacked(): void {
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.unacked = null;
  }

  private handle(content: Buffer): void {
    const text = content.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.invalid++;
      return;
    }
    const result = IntegratedResultSchema.safeParse(parsed);
    if (!result.success) {
      this.invalid++;
      return;
    }
    this.received++;
    this.results.add({ result: result.data, text });
  }

  /** Messages waiting in `pipeline.dead_letters`, as last read (null before the first read or after a failure). */
  get deadLetterCount(): number | null {
    return this.deadLetters;
  }

  /** Reads the depth of the dead-letter queue (a passive check: it never declares or changes it). */
  async refreshDeadLetters(): Promise<void> {
    const model = this.model;
    if (model === null) return;
    // Its own short-lived channel: a failed check closes the channel it runs on.
    let channel: Channel | null = null;
    try {
      channel = await model.createChannel();
      channel.on('error', () => undefined);
      const ok = await channel.checkQueue(QUEUE_DEAD_LETTERS);
      this.deadLetters = ok.messageCount;
      await channel.close().catch(() => undefined);
    } catch (err) {
      this.deadLetters = null;
      this.options.log.warn({ err }, 'cannot read the dead-letter queue depth');
    }
  }
}
