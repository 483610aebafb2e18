import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { errorMessage, isRetriable } from '../errors';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import type { Logger } from '../observability/logger';
import type { BrokerConnection, ConnectionAttachment } from './broker-connection';
import { Backoff, retry } from '../util/backoff';
import { coalesceSocketWrites, type Publisher } from './publisher';
import { EXCHANGE_DLX, headers as HEADERS, messageIds, zeroCreditConsumerArguments } from './topology';

/** What a handler decided about one message. */
export type HandleResult =
  /** Nothing to do (a duplicate): acknowledge. */
  | { kind: 'done' }
  /** The message is bad: dead-letter it with this reason. */
  | { kind: 'reject'; reason: string }
  /** Acknowledge once `committed` resolves (output confirmed and state durable). */
  | { kind: 'commit'; committed: Promise<void> };

/** Options of {@link BaseConsumer}. */
export interface BaseConsumerOptions {
  /** Queue to consume. */
  queue: string;
  /** Stage name written into `x-rejected-by`. */
  stage: string;
  /** Unacknowledged messages held at once. */
  prefetchCount: number;
  /** Deliveries of a message before a retriable failure dead-letters it. */
  maxAttempts: number;
  /** First pause before trying again after a retriable failure; doubles up to 30 s (with jitter). */
  retryDelayMs: number;
  log: Logger;
}

const HEADER_REASON = HEADERS.rejectionReason;
const HEADER_STAGE = HEADERS.rejectedBy;

/**
 * Consumes one queue with manual acks. Each delivery goes to {@link handle}; the message is acked
 * only after the handler's commit (output confirmed, state durable) resolves, so processing of the
 * next message never waits for the previous one's confirm. Bad messages are dead-lettered at once
 * with `x-rejection-reason` and `x-rejected-by`. A retriable failure is tried again in place after a
 * pause (exponential backoff), holding back this message only: the channel stays open, so no other
 * message is returned to the queue, delayed or charged a delivery; after `maxAttempts` attempts the
 * message is dead-lettered with the error. (Subclasses that keep per-key order, the bar stages,
 * retry inside their per-symbol lane instead.) In-memory state is dropped ({@link reset}) only when
 * the channel is lost. Re-registers after reconnects and server cancels.
 */
export abstract class BaseConsumer implements ConnectionAttachment {
  protected readonly log: Logger;
  private model: ChannelModel | null = null;
  private channel: Channel | null = null;
  private generation = 0;
  private unacked = 0;
  private consecutiveFailures = 0;
  private resetting = false;
  private stopping = false;
  private stopPromise: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];
  private consumerTag: string | null = null;
  /** The pauses between tries: of a message, a dead letter, a publish, a re-consume. */
  protected readonly backoff: Backoff;

  constructor(
    connection: BrokerConnection,
    protected readonly publisher: Publisher,
    protected readonly options: BaseConsumerOptions,
  ) {
    this.log = options.log;
    this.backoff = new Backoff({ initialDelayMs: options.retryDelayMs, maxDelayMs: Math.max(options.retryDelayMs, 30_000) });
    connection.attach(this);
  }

  /** Processes one delivery. Throw a non-retriable error to dead-letter, a retriable one to retry. */
  protected abstract handle(msg: ConsumeMessage): Promise<HandleResult>;

  /** Forgets in-memory state: unacknowledged messages are about to be delivered again. */
  protected abstract reset(): void;

  /** True while a consumer is registered on the queue. */
  get consuming(): boolean {
    return this.consumerTag !== null && !this.resetting;
  }

  /** Messages delivered and not yet acknowledged. */
  get inFlight(): number {
    return this.unacked;
  }

  /** @internal */
  async attach(model: ChannelModel): Promise<void> {
    coalesceSocketWrites(model); // acks go out with the publishes of the same pass
    this.model = model;
    if (!this.stopping) await this.openAndConsume();
  }

  /** @internal */
  detach(): void {
    this.model = null;
    this.dropChannel();
  }

  private dropChannel(): void {
    this.held = [];
    if (this.heldTimer !== null) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    this.generation++;
    this.channel = null;
    this.consumerTag = null;
    this.unacked = 0;
    this.reset();
    this.notifyIdle();
  }

  private async openAndConsume(): Promise<void> {
    const model = this.model;
    if (model === null) return;
    const channel = await model.createChannel();
    const generation = ++this.generation;
    channel.on('error', (err: Error) => this.log.warn({ err }, 'consumer channel error'));
    channel.on('close', () => {
      if (this.channel === channel) {
        this.dropChannel();
        // Closed by the broker (not by us): consume again unless the connection is gone.
        if (!this.stopping && this.model !== null) this.scheduleResume();
      }
    });
    await channel.prefetch(this.options.prefetchCount);
    this.channel = channel;
    const reply = await channel.consume(this.options.queue, (msg) => {
      if (msg === null) {
        this.log.warn('consumer cancelled by the broker; consuming again');
        if (this.channel === channel) {
          this.consumerTag = null;
          this.scheduleResume();
        }
        return;
      }
      this.onDelivery(msg, channel, generation);
    });
    this.consumerTag = reply.consumerTag;
    this.log.info({ prefetch: this.options.prefetchCount }, 'consuming');
  }

  private scheduleResume(): void {
    if (this.resetting) return;
    this.resetting = true;
    this.consecutiveFailures++;
    const delay = this.backoff.delayMs(this.consecutiveFailures);
    const model = this.model;
    const timer = setTimeout(() => {
      this.resetting = false;
      // A reconnect in between attached a new connection and consumes on it already.
      if (this.stopping || this.model === null || this.model !== model || this.channel !== null) return;
      this.openAndConsume().catch((err: unknown) => {
        this.log.error({ err }, 'cannot consume again; retrying');
        this.scheduleResume();
      });
    }, delay);
    timer.unref();
  }

  /**
   * Where redelivered messages must be put back in order: a group (symbol) and a position in it
   * (ts). RabbitMQ 3.10 quorum queues return the unacknowledged messages of a closed channel in no
   * particular order once there are more than a few dozen, so redeliveries are held and released
   * sorted. Return null (the default) to process redeliveries as they come.
   */
  protected redeliveryOrder(_msg: ConsumeMessage): { group: string; order: number } | null {
    return null;
  }

  private held: { msg: ConsumeMessage; channel: Channel; generation: number; key: { group: string; order: number } }[] = [];
  private heldTimer: NodeJS.Timeout | null = null;

  private onDelivery(msg: ConsumeMessage, channel: Channel, generation: number): void {
    if (msg.fields.redelivered) {
      const key = this.redeliveryOrder(msg);
      if (key !== null) {
        // Returned messages are delivered before any fresh one; hold them until a fresh message
        // arrives, the prefetch window is full, or deliveries pause, then process them in order.
        this.held.push({ msg, channel, generation, key });
        if (this.held.length + this.unacked >= this.options.prefetchCount) this.releaseHeld();
        else {
          if (this.heldTimer !== null) clearTimeout(this.heldTimer);
          this.heldTimer = setTimeout(() => this.releaseHeld(), 100);
          this.heldTimer.unref();
        }
        return;
      }
    }
    if (this.held.length > 0) this.releaseHeld();
    void this.onMessage(msg, channel, generation);
  }

  private releaseHeld(): void {
    if (this.heldTimer !== null) clearTimeout(this.heldTimer);
    this.heldTimer = null;
    const held = this.held;
    this.held = [];
    held.sort((a, b) => (a.key.group < b.key.group ? -1 : a.key.group > b.key.group ? 1 : a.key.order - b.key.order));
    for (const h of held) void this.onMessage(h.msg, h.channel, h.generation);
  }

  private async onMessage(msg: ConsumeMessage, channel: Channel, generation: number): Promise<void> {
    this.unacked++;
    const started = performance.now();
    let outcome: 'ok' | 'duplicate' | 'dead_lettered' | 'retried' = 'ok';
    try {
      // Retriable failures are tried again here, with this message alone held back: the channel
      // stays open, so no other message is returned to the queue or counts a delivery.
      let attempts = 0;
      try {
        const result = await retry(
          (attempt) => {
            attempts = attempt;
            if (generation !== this.generation) throw new ChannelGoneError();
            return this.settle(msg);
          },
          {
            backoff: this.backoff,
            shouldRetry: (err, attempt) =>
              generation === this.generation && !this.stopping && isRetriable(err) && attempt < this.options.maxAttempts,
            onRetry: (err, attempt, delayMs) => {
              outcome = 'retried';
              this.log.warn({ err: errorMessage(err), attempt, delayMs, routingKey: msg.fields.routingKey }, 'retriable failure; trying this message again');
            },
            pause: (ms) => this.pause(ms),
          },
        );
        if (result !== 'ok') outcome = result; // a retried message that then went through stays 'retried'
        this.ack(msg, channel, generation);
        this.consecutiveFailures = 0;
      } catch (err) {
        if (generation !== this.generation) return; // channel already gone: the broker redelivers
        if (this.stopping) {
          // Leave it unacknowledged: closing the channel at the end of stop() requeues it, while the
          // other in-flight messages still finish and are acked.
          outcome = 'retried';
          this.settleWithoutAck();
          return;
        }
        outcome = 'dead_lettered';
        const reason = isRetriable(err) ? `gave up after ${attempts} attempts: ${errorMessage(err)}` : errorMessage(err);
        try {
          await this.deadLetterUntilConfirmed(msg, reason, generation);
        } catch {
          if (generation === this.generation) this.settleWithoutAck();
          return;
        }
        this.ack(msg, channel, generation);
      }
    } finally {
      pipelineEvents.emit(PipelineEvent.MessageHandled, {
        queue: this.options.queue,
        outcome,
        durationMs: performance.now() - started,
      });
    }
  }

  /**
   * Runs the handler's decision for one try of `msg` to its end (commit awaited, dead letter
   * confirmed) and says what it was.
   */
  private async settle(msg: ConsumeMessage): Promise<'ok' | 'duplicate' | 'dead_lettered'> {
    const result = await this.handle(msg);
    if (result.kind === 'commit') {
      await result.committed;
      return 'ok';
    }
    if (result.kind === 'reject') {
      await this.deadLetter(msg, result.reason);
      return 'dead_lettered';
    }
    return 'duplicate';
  }

  /** Resolves after `ms`, or at once when the consumer stops or loses its channel. */
  protected pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      const generation = this.generation;
      const check = setInterval(() => {
        if (this.stopping || generation !== this.generation) done();
      }, 50);
      check.unref();
      function done(): void {
        clearTimeout(timer);
        clearInterval(check);
        resolve();
      }
    });
  }

  /** True once {@link stop} was called. */
  protected get isStopping(): boolean {
    return this.stopping;
  }

  /** Dead-letters `msg`, trying again (with delays) until the dead letter is confirmed. */
  private deadLetterUntilConfirmed(msg: ConsumeMessage, reason: string, generation: number): Promise<void> {
    return retry(() => this.deadLetter(msg, reason), {
      backoff: this.backoff,
      shouldRetry: () => !this.stopping && generation === this.generation,
      onRetry: (err) => this.log.error({ err }, 'dead-lettering failed; retrying'),
      pause: (ms) => this.pause(ms),
    });
  }

  private settleWithoutAck(): void {
    this.unacked--;
    if (this.unacked === 0) this.notifyIdle();
  }

  private ack(msg: ConsumeMessage, channel: Channel, generation: number): void {
    if (generation !== this.generation) return; // the broker redelivers it; the dedupe mark drops it
    channel.ack(msg);
    this.unacked--;
    if (this.unacked === 0) this.notifyIdle();
  }

  /** Publishes a copy of `msg` to the dead-letter exchange with the reason; resolves on confirm. */
  protected async deadLetter(msg: ConsumeMessage, reason: string): Promise<void> {
    const headers = {
      ...(msg.properties.headers ?? {}),
      [HEADER_REASON]: reason,
      [HEADER_STAGE]: this.options.stage,
      [HEADERS.originalExchange]: msg.fields.exchange,
      [HEADERS.originalRoutingKey]: msg.fields.routingKey,
      [HEADERS.originalQueue]: this.options.queue,
      [HEADERS.rejectedAt]: new Date().toISOString(),
    };
    await this.publisher.publish(EXCHANGE_DLX, '', msg.content, {
      ...msg.properties,
      headers,
      messageId:
        typeof msg.properties.messageId === 'string'
          ? msg.properties.messageId
          : messageIds.deadLetter(this.options.queue, msg.fields.deliveryTag, Date.now()),
    });
    this.log.warn({ reason, routingKey: msg.fields.routingKey }, 'message dead-lettered');
    pipelineEvents.emit(PipelineEvent.DeadLettered, {
      queue: this.options.queue,
      stage: this.options.stage,
      reason,
    });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Starts nothing: consuming begins when the connection attaches. Present for symmetry. */
  async start(): Promise<void> {}

  /**
   * Resolves once the broker has applied every ack sent on `channel` (bounded by `timeoutMs`).
   *
   * Acks are fire-and-forget, and on a quorum queue (RabbitMQ 3.10) the channel sends at most 32
   * settlements to the queue before hearing that they were applied; later ones wait inside the
   * channel and are sent when those answers come. Closing the channel drops the waiting ones: their
   * messages, processed and acked, return to the queue as redeliveries. A burst of acks just before
   * the close (the last group commit of a graceful stop) loses all but about 32 that way. Registering
   * a consumer is a synchronous command that the queue applies after the settlements sent before it,
   * and the broker answers it only after the channel has taken in their confirmations, which sends
   * the waiting ones ahead of anything that follows (the close). The consumer has zero credit
   * (`x-credit`), so nothing is delivered to it; prefetch 1 bounds what a broker that ignores that
   * argument could deliver (it would go back to the queue with the close).
   */
  private async settleBarrier(channel: Channel, timeoutMs: number): Promise<void> {
    const barrier = (async () => {
      await channel.prefetch(1);
      const { consumerTag } = await channel.consume(this.options.queue, () => undefined, {
        arguments: zeroCreditConsumerArguments(),
      });
      await channel.cancel(consumerTag);
    })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([barrier, timeout]);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not confirm that the broker applied the last acks; closing anyway (acked messages may come back as redeliveries)');
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Cancels the consumer, calls `afterCancel`, waits (bounded) until every delivered message is
   * acknowledged or has failed (failed ones stay unacknowledged), makes sure the broker applied the
   * acks ({@link settleBarrier}), then closes the channel, which requeues what is left. Idempotent.
   */
  stop(closeTimeoutMs: number, afterCancel?: () => void): Promise<void> {
    if (this.stopPromise === null) {
      this.stopPromise = (async () => {
        this.stopping = true;
        // Held redeliveries were never started: closing the channel hands them back to the broker.
        this.held = [];
        if (this.heldTimer !== null) clearTimeout(this.heldTimer);
        this.heldTimer = null;
        const channel = this.channel;
        if (channel !== null && this.consumerTag !== null) {
          await channel.cancel(this.consumerTag).catch(() => undefined);
          this.consumerTag = null;
        }
        afterCancel?.();
        if (this.unacked > 0) {
          await Promise.race([
            new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
            new Promise<void>((resolve) => setTimeout(resolve, closeTimeoutMs).unref()),
          ]);
        }
        if (this.unacked > 0) this.log.warn({ unacked: this.unacked }, 'closing with unacknowledged messages; the broker redelivers them');
        this.channel = null;
        this.generation++; // no ack goes out after the barrier below
        if (channel !== null) {
          // Bounded apart from the wait above: a broker that answers nothing must not hold the stop
          // past the supervisor's grace period (close timeout + 5 s).
          await this.settleBarrier(channel, Math.min(closeTimeoutMs, 3000));
          await channel.close().catch(() => undefined);
        }
      })();
    }
    return this.stopPromise;
  }
}

/** A try found the channel of its delivery gone (the broker redelivers the message). */
class ChannelGoneError extends Error {
  constructor() {
    super('the channel of this delivery is gone');
    this.name = 'ChannelGoneError';
  }
}
