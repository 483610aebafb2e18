import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import { errorMessage, PublishError } from '../errors';
import { Backoff } from '../util/backoff';
import type { Logger } from '../observability/logger';
import type { BrokerConnection, ConnectionAttachment } from './broker-connection';

/** Options of {@link Publisher}. */
export interface PublisherOptions {
  /** Publishes awaiting their confirm before {@link Publisher.publish} waits. @defaultValue 1024 */
  maxInFlight: number;
  /** How long a publish may wait for a channel and its confirm. @defaultValue 10000 */
  publishTimeoutMs: number;
  /** Circuit breaker around every publish (stage `publish`). @defaultValue none */
  guard?: <T>(call: () => Promise<T>) => Promise<T>;
  log: Logger;
}

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
  returned: boolean;
}

/**
 * Publishes on a confirm channel. `publish()` resolves on the broker's confirm and rejects on nack,
 * return (unroutable with `mandatory`), channel loss or timeout. Backpressure: at most `maxInFlight`
 * unconfirmed messages, the socket's `drain` is awaited when the channel's buffer is full, and
 * nothing is written while the broker blocks the connection.
 */
export class Publisher implements ConnectionAttachment {
  private channel: ConfirmChannel | null = null;
  private channelWaiters: (() => void)[] = [];
  private inFlight = 0;
  private slotWaiters: (() => void)[] = [];
  private needsDrain = false;
  private drainWaiters: (() => void)[] = [];
  /**
   * Per channel, the mandatory publishes awaiting their confirm, by messageId in publish order. A
   * channel's returns and confirms come in publish order, and the broker returns a message before
   * it confirms it, so a return belongs to the oldest publish of its messageId not yet returned,
   * even when several publishes of one messageId are in flight at once (a re-send).
   */
  private readonly awaitingReturn = new WeakMap<ConfirmChannel, Map<string, Pending[]>>();
  private stopped = false;
  private model: ChannelModel | null = null;
  private reopenAttempts = 0;
  private readonly reopenBackoff = new Backoff({ initialDelayMs: 100, maxDelayMs: 5000 });
  private channelsOpened = 0;
  private warnedUncoalesced = false;
  /** The confirm deadlines of the publishes in flight (one sweep, not a timer per publish). */
  private readonly deadlines = new DeadlineSweep(250);

  constructor(
    private readonly connection: BrokerConnection,
    private readonly options: PublisherOptions,
  ) {
    connection.attach(this);
  }

  /** @internal */
  async attach(model: ChannelModel): Promise<void> {
    if (!coalesceSocketWrites(model) && !this.warnedUncoalesced) {
      this.warnedUncoalesced = true;
      this.options.log.warn('amqplib internals differ from what write coalescing expects: frames are written one by one (slower, still correct)');
    }
    this.model = model;
    this.reopenAttempts = 0;
    await this.openChannel(model);
  }

  /** @internal */
  detach(): void {
    this.model = null;
    this.channel = null;
  }

  /** Opens a confirm channel on `model` and makes it the one publishes go out on. */
  private async openChannel(model: ChannelModel): Promise<void> {
    const channel = await model.createConfirmChannel();
    if (this.model !== model || this.stopped) {
      // The connection went away (or a newer one attached) while the channel opened.
      await channel.close().catch(() => undefined);
      return;
    }
    // amqplib emits 'error' before 'close' only when the broker closed the channel; a channel closed
    // with its connection gets 'close' alone (the connection's recovery attaches a new one then).
    let closedByBroker = false;
    channel.on('error', (err: Error) => {
      closedByBroker = true;
      this.options.log.warn({ err }, 'publisher channel error');
    });
    channel.on('drain', () => {
      if (this.channel !== channel) return;
      this.needsDrain = false;
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    });
    const awaiting = new Map<string, Pending[]>();
    this.awaitingReturn.set(channel, awaiting);
    channel.on('return', (msg: Message) => {
      const id = msg.properties.messageId as string | undefined;
      const pending = id === undefined ? undefined : awaiting.get(id)?.find((p) => !p.returned);
      if (pending !== undefined) pending.returned = true;
    });
    channel.on('nack', () => {
      // The broker refused a message while the channel stays open: replace the channel (see below).
      if (this.channel === channel) this.replaceChannel(channel, 'broker nacked a publish');
    });
    channel.on('close', () => {
      // Closed by the broker (a channel error) while the connection lives on: nothing else would
      // ever open a new one, so every later publish would wait for a channel in vain.
      if (closedByBroker && this.channel === channel) this.replaceChannel(channel, 'publisher channel closed by the broker');
    });
    this.channel = channel;
    this.channelsOpened++;
    this.needsDrain = false;
    const drainWaiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of drainWaiters) w();
    const waiters = this.channelWaiters;
    this.channelWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Stops publishing on `channel` and opens a fresh one on the same connection. Used when the broker
   * nacks a publish or closes the channel. A nack here is never flow control (the pipeline's queues
   * have no length limit): on RabbitMQ 3.10, a channel that first publishes to a quorum queue just
   * after the node of its leader died can stay stuck nacking every later publish to that queue, while
   * a channel opened a moment later works (docs/scaling.md, "The stuck channel"). Publishes still waiting
   * on the old channel fail (the broker's close rejects their confirms) and their callers retry them.
   */
  private replaceChannel(channel: ConfirmChannel, why: string): void {
    if (this.channel !== channel) return;
    this.channel = null;
    channel.close().catch(() => undefined);
    this.scheduleReopen(why);
  }

  /** Opens a new channel on the current connection after a pause that doubles (100 ms to 5 s, with jitter). */
  private scheduleReopen(why: string): void {
    const model = this.model;
    if (model === null || this.stopped) return;
    this.reopenAttempts++;
    const delay = this.reopenBackoff.delayMs(this.reopenAttempts);
    this.options.log.warn({ reason: why, delayMs: delay }, 'opening a new confirm channel');
    const timer = setTimeout(() => {
      if (this.model !== model || this.stopped || this.channel !== null) return;
      this.openChannel(model).catch((err: unknown) => {
        // A connection on its way out: its recovery attaches the next one (this.model changes).
        if (this.model === model && this.channel === null) this.scheduleReopen(`cannot open a new channel (${errorMessage(err)})`);
      });
    }, delay);
    timer.unref();
  }

  /** Confirm channels opened so far (one per connect, plus one per replaced channel). */
  get channelsOpenedCount(): number {
    return this.channelsOpened;
  }

  /**
   * Publishes one persistent message and resolves on its confirm. `messageId` is required so that
   * returns can be matched and subscribers can dedupe.
   */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish & { messageId: string },
  ): Promise<void> {
    const guard = this.options.guard;
    const call = (): Promise<void> => this.publishNow(exchange, routingKey, content, options);
    return guard === undefined ? call() : guard(call);
  }

  /**
   * Fast path: a free slot, an open channel, no drain to wait for and the connection not blocked
   * (the usual case) publish at once, without a promise hop; otherwise {@link publishSlow} waits for
   * each of those first.
   */
  private publishNow(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish & { messageId: string },
  ): Promise<void> {
    const channel = this.channel;
    if (this.stopped) return Promise.reject(new PublishError('publisher is stopped'));
    if (channel === null || this.needsDrain || this.inFlight >= this.options.maxInFlight || this.connection.isBlocked) {
      return this.publishSlow(exchange, routingKey, content, options);
    }
    this.inFlight++;
    const confirmed = this.send(channel, exchange, routingKey, content, options, Date.now() + this.options.publishTimeoutMs);
    return confirmed.finally(() => this.releaseSlot());
  }

  private async publishSlow(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish & { messageId: string },
  ): Promise<void> {
    const deadline = Date.now() + this.options.publishTimeoutMs;
    if (this.stopped) throw new PublishError('publisher is stopped');
    await this.acquireSlot(deadline);
    try {
      await this.connection.whenUnblocked();
      let channel = await this.waitForChannel(deadline);
      if (this.needsDrain) {
        await this.waitFor(this.drainWaiters, deadline, 'drain');
        channel = await this.waitForChannel(deadline); // the channel may have been replaced meanwhile
      }
      await this.send(channel, exchange, routingKey, content, options, deadline);
    } finally {
      this.releaseSlot();
    }
  }

  /** Writes one message on `channel`; resolves on its confirm, rejects on nack, return, failure or `deadline`. */
  private send(
    channel: ConfirmChannel,
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish & { messageId: string },
    deadline: number,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = { resolve, reject, returned: false };
      const mandatory = options.mandatory === true;
      const awaiting = this.awaitingReturn.get(channel);
      // Kept until the broker confirms (or the channel fails) it, even past the timeout: a late
      // return must not be booked to a later publish of the same messageId.
      const forget = (): void => {
        const queue = awaiting?.get(options.messageId);
        const i = queue?.indexOf(pending) ?? -1;
        if (queue === undefined || i < 0) return;
        queue.splice(i, 1);
        if (queue.length === 0) awaiting?.delete(options.messageId);
      };
      if (mandatory && awaiting !== undefined) {
        const queue = awaiting.get(options.messageId);
        if (queue === undefined) awaiting.set(options.messageId, [pending]);
        else queue.push(pending);
      }
      const expiry = this.deadlines.add(deadline, () =>
        reject(new PublishError(`no confirm for ${options.messageId} within ${this.options.publishTimeoutMs} ms`)),
      );
      try {
        const ok = channel.publish(
          exchange,
          routingKey,
          content,
          { persistent: true, contentType: 'application/json', ...options },
          (err: unknown) => {
            expiry.settled = true;
            if (mandatory) forget();
            if (err !== null && err !== undefined) {
              reject(new PublishError(`broker did not confirm ${options.messageId}`, { cause: err }));
            } else if (pending.returned) {
              reject(new PublishError(`${options.messageId} is unroutable: no queue bound to ${exchange} ${routingKey}`));
            } else {
              if (this.reopenAttempts !== 0 && this.channel === channel) this.reopenAttempts = 0;
              resolve();
            }
          },
        );
        if (!ok) this.needsDrain = true;
      } catch (err) {
        expiry.settled = true;
        forget();
        reject(new PublishError(`publish of ${options.messageId} failed`, { cause: err }));
      }
    });
  }

  private async acquireSlot(deadline: number): Promise<void> {
    while (this.inFlight >= this.options.maxInFlight) {
      await this.waitFor(this.slotWaiters, deadline, 'an in-flight slot');
    }
    this.inFlight++;
  }

  private releaseSlot(): void {
    this.inFlight--;
    const w = this.slotWaiters.shift();
    if (w !== undefined) w();
  }

  private async waitForChannel(deadline: number): Promise<ConfirmChannel> {
    while (this.channel === null) {
      if (this.stopped) throw new PublishError('publisher is stopped');
      await this.waitFor(this.channelWaiters, deadline, 'a broker channel');
    }
    return this.channel;
  }

  private waitFor(list: (() => void)[], deadline: number, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const i = list.indexOf(waiter);
        if (i >= 0) list.splice(i, 1);
        reject(new PublishError(`timed out waiting for ${what}`));
      }, Math.max(1, deadline - Date.now()));
      timer.unref();
      list.push(waiter);
    });
  }

  /** Waits for outstanding confirms (bounded), then closes the channel. Idempotent. */
  async stop(closeTimeoutMs: number): Promise<void> {
    if (this.stopped) return;
    const deadline = Date.now() + closeTimeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.stopped = true;
    this.deadlines.stop();
    const channel = this.channel;
    this.channel = null;
    if (channel !== null) await channel.close().catch(() => undefined);
    for (const w of this.channelWaiters.splice(0)) w();
  }
}

const COALESCED = Symbol('coalescedSocketWrites');

interface AmqpMux {
  out: { cork(): void; uncork(): void };
  _readIncoming(): void;
  [COALESCED]?: true;
}

/**
 * amqplib writes every frame of every channel (publishes, acks) to the socket one `write()` at a
 * time, each a system call of its own (profile: 7-9% of the tactical worker's time at full load).
 * Its multiplexer writes whatever the channels hold in one pass; corking the socket around that
 * pass sends the pass as one `writev`. Order, backpressure (`write()` returning false, `drain`) and
 * timing are unchanged: the pass ends with the uncork, in the same turn of the event loop.
 * Idempotent. Falls back safely: when amqplib's internals differ from what is expected (an
 * upgrade renamed them), it changes nothing and returns false, and frames are written one by one
 * as amqplib does by itself (slower, equally correct). test/integration/amqplib-internals.test.ts
 * fails when the installed amqplib no longer matches.
 * @returns true when the patch is in place (now or from an earlier call)
 */
export function coalesceSocketWrites(model: ChannelModel): boolean {
  const mux = (model as unknown as { connection?: { muxer?: AmqpMux } }).connection?.muxer;
  if (mux === undefined || typeof mux !== 'object') return false;
  if (mux[COALESCED] === true) return true;
  if (typeof mux._readIncoming !== 'function') return false;
  const out = mux.out;
  if (typeof out?.cork !== 'function' || typeof out.uncork !== 'function') return false;
  const readIncoming = mux._readIncoming.bind(mux);
  mux._readIncoming = () => {
    out.cork();
    try {
      readIncoming();
    } finally {
      out.uncork();
    }
  };
  mux[COALESCED] = true;
  return true;
}

/** One expiry of a {@link DeadlineSweep}; set `settled` once the awaited thing happened. */
interface Expiry {
  deadline: number;
  settled: boolean;
  expire: () => void;
}

/**
 * Deadlines checked by one timer every `everyMs`, instead of a timer per item: an item expires
 * between its deadline and `everyMs` later. Items are kept in insertion order, which is deadline
 * order but for a publish that waited (for a slot, a channel, a drain) before it was written: a sweep
 * stops at the first item not yet due, so such a publish's successors can expire up to one timeout
 * late, never early.
 */
class DeadlineSweep {
  private items: Expiry[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly everyMs: number) {}

  add(deadline: number, expire: () => void): Expiry {
    const item: Expiry = { deadline, settled: false, expire };
    this.items.push(item);
    if (this.timer === null) {
      this.timer = setInterval(() => this.sweep(), this.everyMs);
      this.timer.unref();
    }
    return item;
  }

  private sweep(): void {
    const now = Date.now();
    const items = this.items;
    let i = this.head;
    for (; i < items.length; i++) {
      const item = items[i] as Expiry;
      if (item.settled) continue;
      if (item.deadline > now) break;
      item.settled = true;
      item.expire();
    }
    // Settled items at the front are dropped; the array is compacted once half of it is dead.
    while (i < items.length && (items[i] as Expiry).settled) i++;
    this.head = i;
    if (this.head === items.length) {
      this.items = [];
      this.head = 0;
      if (this.timer !== null) clearInterval(this.timer);
      this.timer = null;
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
