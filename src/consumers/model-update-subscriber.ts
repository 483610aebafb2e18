import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { ModelUpdateSchema } from '../../schemas/model-update.schema';
import type { BrokerConnection, ConnectionAttachment } from '../broker/broker-connection';
import { EXCHANGE_INTERNAL, routingKeys } from '../broker/topology';
import type { Logger } from '../observability/logger';
import { parseMessage } from './parse-message';

/** Options of {@link ModelUpdateSubscriber}. */
export interface ModelUpdateSubscriberOptions {
  /**
   * Called with each newly promoted version, one call at a time in arrival order. The tactical
   * worker loads `TacticalPolicy.load(registry, version)` and calls `agentStage.swap(policy)`
   * (decisions are synchronous, so the swap lands between bars). A throw is logged, not retried.
   */
  onUpdate: (version: string) => Promise<void> | void;
  log: Logger;
}

/**
 * Listens for promoted model versions on the `models.promoted` announcements on the `pipeline.internal` exchange through an
 * exclusive, auto-delete, server-named queue (declared again on every reconnect) consumed without
 * acks: an announcement is a hint, the registry is the truth. An announcement missed while
 * disconnected is not replayed, so a worker that must not miss one compares its version with
 * `registry.latestPromoted()` after reconnecting. Invalid messages are logged and dropped (a
 * no-ack queue cannot dead-letter). Emits nothing.
 */
export class ModelUpdateSubscriber implements ConnectionAttachment {
  private channel: Channel | null = null;
  private updates: Promise<void> = Promise.resolve();
  private stopPromise: Promise<void> | null = null;

  constructor(
    connection: BrokerConnection,
    private readonly options: ModelUpdateSubscriberOptions,
  ) {
    connection.attach(this);
  }

  /** True while subscribed. */
  get subscribed(): boolean {
    return this.channel !== null;
  }

  /** @internal */
  async attach(model: ChannelModel): Promise<void> {
    if (this.stopPromise !== null) return;
    const { log } = this.options;
    const channel = await model.createChannel();
    channel.on('error', (err: Error) => log.warn({ err }, 'model update channel error'));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = null;
    });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, EXCHANGE_INTERNAL, routingKeys.model());
    await channel.consume(queue, (msg) => this.onMessage(msg), { noAck: true });
    if (this.stopPromise !== null) {
      await channel.close().catch(() => undefined);
      return;
    }
    this.channel = channel;
    log.info({ queue }, 'subscribed to model updates');
  }

  /** @internal */
  detach(): void {
    this.channel = null;
  }

  private onMessage(msg: ConsumeMessage | null): void {
    const { log } = this.options;
    if (msg === null) {
      log.warn('model update consumer cancelled by the broker');
      return;
    }
    let version: string;
    try {
      version = parseMessage(msg.content, ModelUpdateSchema).version;
    } catch (err) {
      log.warn({ err: (err as Error).message, messageId: msg.properties.messageId as unknown }, 'invalid model update ignored');
      return;
    }
    this.updates = this.updates.then(async () => {
      if (this.stopPromise !== null) return;
      try {
        await this.options.onUpdate(version);
        log.info({ version }, 'model update applied');
      } catch (err) {
        log.error({ err, version }, 'model update failed');
      }
    });
  }

  /** Does nothing: subscribing happens when the connection attaches. Present for symmetry. */
  async start(): Promise<void> {}

  /** Closes the channel (its queue goes with it) and lets a running update finish. Idempotent. */
  stop(): Promise<void> {
    if (this.stopPromise === null) {
      this.stopPromise = (async () => {
        const channel = this.channel;
        this.channel = null;
        if (channel !== null) await channel.close().catch(() => undefined);
        await this.updates;
      })();
    }
    return this.stopPromise;
  }
}
