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
  /** Unacknowledged deliveries. @defaultValue 1000 */
  prefetchCount?: number;
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
    await channel.prefetch(this.options.prefetchCount ?? 1000);
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: boundedQueueArguments(this.options.maxQueueLength ?? 100_000),
    });
    await channel.bindQueue(queue, EXCHANGE_RESULTS, routingKeys.result('#'));
    // No acknowledgements: the gateway only reads, and its queue drops its oldest message past
    // maxQueueLength rather than ever pushing back on the pipeline.
    await channel.consume(
      queue,
      (msg: ConsumeMessage | null) => {
        if (msg === null) {
          this.options.log.warn('results feed consumer cancelled by the broker');
          return;
        }
        this.handle(msg.content);
      },
      { noAck: true },
    );
    this.channel = channel;
    this.options.log.info('results feed consuming');
  }

  /** @internal */
  detach(): void {
    this.channel = null;
    this.model = null;
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
