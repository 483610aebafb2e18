import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import { BAR_BATCH_CONTENT_TYPE, MAX_BATCH_BARS, type BarBatch } from '../../schemas/bar-batch.schema';
import { BarSchema, barId, type Bar } from '../../schemas/bar.schema';
import { BrokerConnection, type ConnectionAttachment } from '../broker/broker-connection';
import { EXCHANGE_BARS, EXCHANGE_INTERNAL, headers, messageIds, routingKeys, type TopologyOptions } from '../broker/topology';
import { PublishError, ValidationError } from '../errors';
import type { Logger } from '../observability/logger';

/** Header carrying the epoch milliseconds at which the producer handed the bar to the socket. */
export const HEADER_PUBLISHED_AT = headers.publishedAt;

/** Options of {@link BarProducer}. */
export interface BarProducerOptions extends TopologyOptions {
  /** Broker URL; a vhost in the path is honoured. */
  url: string;
  /** Name shown in the broker's connection list. @defaultValue `'bar-producer'` */
  connectionName?: string;
  /** Bars published and not yet confirmed before publishing waits. @defaultValue 1000 */
  maxUnconfirmed?: number;
  /**
   * How long a bar may wait for its confirm, or the producer for a broker channel, before
   * {@link BarProducer.publish} rejects. Time the broker spends blocking the connection (memory or
   * disk alarm) does not count. @defaultValue 10000
   */
  confirmTimeoutMs?: number;
  /** How long {@link BarProducer.stop} waits for outstanding confirms. @defaultValue 10000 */
  closeTimeoutMs?: number;
  /** Connection attempts at start before giving up. @defaultValue 3 */
  initialMaxRetries?: number;
  log: Logger;
}

/** Options of one {@link BarProducer.publish} run. */
export interface PublishBarsOptions {
  /** Bars per second, scheduled by absolute time so the rate does not drift; 0 = as fast as confirms allow. @defaultValue 0 */
  ratePerSecond?: number;
  /** Called with the number of bars confirmed so far, after every confirm. */
  onProgress?: (confirmed: number) => void;
  /** Called when a bar is written to the channel, with the `x-published-at` it carries. */
  onSent?: (bar: Bar, publishedAtMs: number) => void;
  /** Stops taking bars from the source; bars already sent are still confirmed. */
  signal?: AbortSignal;
  /** Headers added to every message of the run (besides {@link HEADER_PUBLISHED_AT}). */
  headers?: Record<string, unknown>;
}

/** What one {@link BarProducer.publish} run did. */
export interface PublishBarsResult {
  /** Bars taken from the source and published. */
  published: number;
  /** Bars the broker confirmed (equals `published` when the promise resolves). */
  confirmed: number;
  /** Bars sent a second time after a lost channel (at least once: the pipeline drops the duplicate). */
  resent: number;
  /** True when the run ended early through `signal` or {@link BarProducer.stop}. */
  aborted: boolean;
  durationMs: number;
}

interface Slot {
  channel: ConfirmChannel;
  open: boolean;
}

interface Entry {
  seq: number;
  /** One bar, or the bars of a batch (oldest first). */
  bars: readonly Bar[];
  exchange: string;
  contentType: string;
  messageId: string;
  routingKey: string;
  content: Buffer;
  slot: Slot | null;
  sentAt: number;
  sends: number;
}

/**
 * Publishes bars to {@link EXCHANGE_BARS} with routing key `bars.<timeframe>.<symbol>`, persistent,
 * `messageId` = {@link barId}, header {@link HEADER_PUBLISHED_AT}, on one confirm channel of its own
 * connection (which declares the topology, so bars published before the pipeline starts are kept).
 *
 * Order matters to the pipeline (an older bar than the last accepted one is dead-lettered), so bars
 * are written strictly in source order from one loop; that is why this does not use the shared
 * `Publisher`, whose concurrent `publish()` calls may pass each other while waiting for a slot or
 * for `drain`. Backpressure: at most `maxUnconfirmed` bars await a confirm, the socket's `drain` is
 * awaited when the channel's buffer is full, and nothing is written while the broker blocks the
 * connection. When the connection is lost, the unconfirmed bars are sent again in order on the
 * recovered channel (at least once; the pipeline acknowledges and drops a repeated bar).
 *
 * Emits no events; progress goes to the callbacks of {@link publish}.
 */
export class BarProducer implements ConnectionAttachment {
  private readonly maxUnconfirmed: number;
  private readonly confirmTimeoutMs: number;
  private connection: BrokerConnection | null = null;
  private slot: Slot | null = null;
  private slotLostAt = Date.now();
  private needsDrain = false;
  private readonly unconfirmed = new Map<number, Entry>();
  private failure: Error | null = null;
  private changeWaiters: (() => void)[] = [];
  private running = false;
  private stopping = false;
  private stopPromise: Promise<void> | null = null;
  private lastUnblockedAt = 0;
  private confirmed = 0;
  private resent = 0;
  private onConfirmed: ((confirmed: number) => void) | undefined;
  private onSent: ((bar: Bar, publishedAtMs: number) => void) | undefined;
  private headers: Record<string, unknown> = {};

  constructor(private readonly options: BarProducerOptions) {
    this.maxUnconfirmed = options.maxUnconfirmed ?? 1000;
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? 10_000;
    if (!Number.isInteger(this.maxUnconfirmed) || this.maxUnconfirmed < 1) {
      throw new RangeError(`maxUnconfirmed must be a positive integer, got ${this.maxUnconfirmed}`);
    }
    if (!(this.confirmTimeoutMs > 0)) throw new RangeError('confirmTimeoutMs must be > 0');
  }

  /** Connects, declares the topology and opens the confirm channel. */
  async start(): Promise<void> {
    if (this.connection !== null) return;
    if (this.stopping) throw new PublishError('bar producer is stopped');
    const connection = new BrokerConnection({
      url: this.options.url,
      connectionName: this.options.connectionName ?? 'bar-producer',
      queueType: this.options.queueType,
      maxAttempts: this.options.maxAttempts,
      // The pipeline's shard count and recorded layout: declaring one shard on a sharded pipeline
      // would bind tactical_processing.0 to market.bars next to the ring, so shard 0 got every bar.
      ...(this.options.shards === undefined ? {} : { shards: this.options.shards }),
      ...(this.options.layout === undefined ? {} : { layout: this.options.layout }),
      initialMaxRetries: this.options.initialMaxRetries ?? 3,
      onFatalReconnect: (err) => this.fail(new PublishError('gave up reconnecting to the broker', { cause: err })),
      log: this.options.log,
    });
    connection.onFatal = (err) => this.fail(new PublishError('fatal broker error', { cause: err }));
    connection.attach(this);
    this.connection = connection;
    await connection.start();
    await this.waitUntil(() => this.slot !== null, 'a broker channel');
  }

  /** @internal Opens the confirm channel and sends again, in order, what the lost one left unconfirmed. */
  async attach(model: ChannelModel): Promise<void> {
    const channel = await model.createConfirmChannel();
    const slot: Slot = { channel, open: true };
    channel.on('error', (err: Error) => {
      // The broker closed this channel for a reason of its own (not a lost connection): the same
      // publish would fail again, so the run fails rather than resending forever.
      this.options.log.warn({ err }, 'bar producer channel error');
      this.fail(new PublishError('the broker closed the publishing channel', { cause: err }));
    });
    channel.on('close', () => {
      slot.open = false;
      if (this.slot === slot) this.loseSlot();
    });
    channel.on('drain', () => {
      if (this.slot === slot) this.needsDrain = false;
      this.wake();
    });
    channel.on('return', (msg: Message) => {
      this.fail(
        new PublishError(
          `${String(msg.properties.messageId)} is unroutable: no queue is bound to ${msg.fields.exchange} ${msg.fields.routingKey}` +
            (msg.fields.exchange === EXCHANGE_INTERNAL ? ' (a pipeline that takes bar batches binds it; publish one bar per message to an older one)' : ''),
        ),
      );
    });
    this.slot = slot;
    this.needsDrain = false;
    for (const entry of this.unconfirmed.values()) this.send(entry, slot);
    this.wake();
  }

  /** @internal */
  detach(): void {
    this.loseSlot();
  }

  /** Bars sent and not yet confirmed. */
  get pendingConfirms(): number {
    return this.unconfirmed.size;
  }

  /**
   * Publishes every bar of `bars` in order and resolves when the broker has confirmed all of them.
   * Each bar is validated against {@link BarSchema} first; an invalid one rejects the run with a
   * {@link ValidationError} (bars before it are still confirmed). Rejects with a
   * {@link PublishError} on a nack, an unroutable bar, a fatal channel error or a confirm timeout;
   * after such a failure the producer stays failed (stop it and make a new one). One run at a time.
   */
  publish(bars: AsyncIterable<Bar> | Iterable<Bar>, options: PublishBarsOptions = {}): Promise<PublishBarsResult> {
    return this.run(bars, options);
  }

  /**
   * Like {@link publish}, but each item is a batch of consecutive bars of one symbol, sent as one
   * message (content type {@link BAR_BATCH_CONTENT_TYPE}) to `pipeline.internal` as
   * `bars.5m.<symbol>`, which routes it to the symbol's tactical shard like its single bars. The
   * counts of the result, `onSent` and `onProgress` are in bars; `maxUnconfirmed` counts messages.
   */
  publishBatches(batches: AsyncIterable<readonly Bar[]> | Iterable<readonly Bar[]>, options: PublishBarsOptions = {}): Promise<PublishBarsResult> {
    return this.run(batches, options);
  }

  private async run(items: AsyncIterable<Bar | readonly Bar[]> | Iterable<Bar | readonly Bar[]>, options: PublishBarsOptions): Promise<PublishBarsResult> {
    if (this.running) throw new PublishError('a publish run is already in progress');
    if (this.stopping) throw new PublishError('bar producer is stopped');
    if (this.connection === null) throw new PublishError('call start() before publish()');
    const rate = options.ratePerSecond ?? 0;
    if (!(rate >= 0) || !Number.isFinite(rate)) throw new RangeError(`ratePerSecond must be >= 0, got ${rate}`);
    if (this.failure !== null) throw this.failure;
    this.running = true;
    this.confirmed = 0;
    this.resent = 0;
    this.onConfirmed = options.onProgress;
    this.onSent = options.onSent;
    this.headers = options.headers ?? {};
    const started = performance.now();
    const intervalMs = rate > 0 ? 1000 / rate : 0;
    let published = 0;
    let seq = 0;
    let aborted = false;
    const halted = (): boolean => this.stopping || options.signal?.aborted === true;
    const onAbort = (): void => this.wake();
    options.signal?.addEventListener('abort', onAbort);
    try {
      try {
        for await (const item of items) {
          if (halted()) {
            aborted = true;
            break;
          }
          const batch: readonly Bar[] | null = isBatch(item) ? item : null;
          const group = batch ?? [item as Bar];
          for (const bar of group) {
            const parsed = BarSchema.safeParse(bar);
            if (!parsed.success) {
              throw new ValidationError(
                `bar ${barId(bar)} is invalid: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
              );
            }
          }
          const first = group[0];
          if (first === undefined) continue;
          if (batch !== null) checkBatch(batch);
          if (intervalMs > 0) {
            // Due time from the start of the run, not from the previous bar: a late bar does not
            // push every later one back, so the average rate holds.
            const due = started + published * intervalMs;
            while (!halted() && due - performance.now() > 1) await this.sleep(due - performance.now());
            if (halted()) {
              aborted = true;
              break;
            }
          }
          const slot = await this.readyToSend();
          const last = group[group.length - 1] as Bar;
          const body: Bar | BarBatch = batch === null ? first : { v: 1, symbol: first.symbol, bars: [...batch] };
          const entry: Entry = {
            seq: seq++,
            bars: group,
            exchange: batch === null ? EXCHANGE_BARS : EXCHANGE_INTERNAL,
            contentType: batch === null ? 'application/json' : BAR_BATCH_CONTENT_TYPE,
            messageId: batch === null ? barId(first) : messageIds.barBatch(first.symbol, first.timeframe, first.ts, last.ts),
            routingKey: routingKeys.bar(first.timeframe, first.symbol),
            content: Buffer.from(JSON.stringify(body)),
            slot: null,
            sentAt: 0,
            sends: 0,
          };
          this.unconfirmed.set(entry.seq, entry);
          published += group.length;
          this.send(entry, slot);
        }
      } finally {
        // Whatever ended the loop, what was sent gets its confirm (or the run's error is reported).
        await this.waitUntil(() => this.unconfirmed.size === 0, 'outstanding confirms');
      }
      return {
        published,
        confirmed: this.confirmed,
        resent: this.resent,
        aborted,
        durationMs: performance.now() - started,
      };
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      this.running = false;
      this.onConfirmed = undefined;
      this.onSent = undefined;
    }
  }

  private send(entry: Entry, slot: Slot): void {
    entry.slot = slot;
    entry.sentAt = Date.now();
    if (entry.sends > 0) this.resent++;
    entry.sends++;
    let ok: boolean;
    try {
      ok = slot.channel.publish(
        entry.exchange,
        entry.routingKey,
        entry.content,
        {
          persistent: true,
          contentType: entry.contentType,
          messageId: entry.messageId,
          timestamp: Math.floor(entry.sentAt / 1000),
          mandatory: true,
          headers: { ...this.headers, [HEADER_PUBLISHED_AT]: entry.sentAt },
        },
        (err: unknown) => this.onConfirm(entry, slot, err),
      );
    } catch (err) {
      // The channel is closing under us; the bar stays unconfirmed and is sent on the next one.
      this.options.log.warn({ err, messageId: entry.messageId }, 'publish on a closing channel');
      return;
    }
    if (!ok) this.needsDrain = true;
    if (this.onSent !== undefined) for (const bar of entry.bars) this.onSent(bar, entry.sentAt);
  }

  private onConfirm(entry: Entry, slot: Slot, err: unknown): void {
    if (err === null || err === undefined) {
      if (entry.slot === slot && this.unconfirmed.get(entry.seq) === entry) {
        this.unconfirmed.delete(entry.seq);
        this.confirmed += entry.bars.length;
        this.onConfirmed?.(this.confirmed);
      }
      this.wake();
      return;
    }
    // amqplib fails every pending callback with 'channel closed' when the channel goes, before the
    // channel's own 'close' listeners run; after a microtask `slot.open` says which case this is:
    // a lost channel (send again later) or a real nack from the broker.
    queueMicrotask(() => {
      if (slot.open && entry.slot === slot) {
        this.fail(new PublishError(`the broker did not confirm ${entry.messageId}`, { cause: err }));
      }
    });
  }

  /** Waits until a bar may be written: a channel, no full buffer, a free window slot, not blocked. */
  private async readyToSend(): Promise<Slot> {
    for (;;) {
      const connection = this.connection;
      if (connection?.isBlocked === true) {
        this.options.log.warn('broker blocked the connection; publishing paused');
        await connection.whenUnblocked();
        this.lastUnblockedAt = Date.now();
        continue;
      }
      await this.waitUntil(
        () => this.slot !== null && !this.needsDrain && this.unconfirmed.size < this.maxUnconfirmed,
        'room to publish',
      );
      // The getter may have changed during the wait (TypeScript narrowed it above).
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- undoes TypeScript's narrowing from before the await
      const blocked = (connection as BrokerConnection | null)?.isBlocked === true;
      if (this.slot !== null && !blocked) return this.slot;
    }
  }

  /**
   * Waits for `ready()`, waking on every confirm, drain or channel change. Throws the run's failure,
   * or a timeout when the oldest unconfirmed bar (or the wait for a channel) exceeds `confirmTimeoutMs`.
   */
  private async waitUntil(ready: () => boolean, what: string): Promise<void> {
    for (;;) {
      if (this.failure !== null) throw this.failure;
      if (ready()) return;
      const now = Date.now();
      let deadline = Infinity;
      if (this.connection?.isBlocked !== true) {
        for (const entry of this.unconfirmed.values()) {
          if (entry.slot !== null) {
            deadline = Math.max(entry.sentAt, this.lastUnblockedAt) + this.confirmTimeoutMs;
            break; // the oldest sent one
          }
        }
        if (this.slot === null) deadline = Math.min(deadline, Math.max(this.slotLostAt, this.lastUnblockedAt) + this.confirmTimeoutMs);
      }
      if (now >= deadline) {
        throw new PublishError(
          this.slot === null
            ? `no broker channel for ${this.confirmTimeoutMs} ms while waiting for ${what}`
            : `no confirm within ${this.confirmTimeoutMs} ms while waiting for ${what} (${this.unconfirmed.size} unconfirmed)`,
        );
      }
      await this.nextChange(Number.isFinite(deadline) ? deadline - now : 1000);
    }
  }

  private nextChange(maxWaitMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(1, maxWaitMs));
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.changeWaiters.push(done);
    });
  }

  private wake(): void {
    const waiters = this.changeWaiters;
    this.changeWaiters = [];
    for (const w of waiters) w();
  }

  /** Sleeps up to `ms`; any change (a confirm, stop, abort) ends it early, so callers loop. */
  private sleep(ms: number): Promise<void> {
    return this.nextChange(ms);
  }

  private loseSlot(): void {
    if (this.slot !== null) this.slotLostAt = Date.now();
    this.slot = null;
    this.needsDrain = false;
    for (const entry of this.unconfirmed.values()) entry.slot = null;
    this.wake();
  }

  private fail(err: Error): void {
    if (this.failure === null) this.failure = err;
    this.wake();
  }

  /**
   * Stops taking bars, waits (bounded by `closeTimeoutMs`) for outstanding confirms, then closes
   * the channel and the connection. Idempotent: a second call gets the first call's promise.
   */
  stop(): Promise<void> {
    if (this.stopPromise === null) {
      this.stopPromise = (async () => {
        this.stopping = true;
        this.wake();
        const deadline = Date.now() + (this.options.closeTimeoutMs ?? 10_000);
        while (this.unconfirmed.size > 0 && this.slot !== null && this.failure === null && Date.now() < deadline) {
          await this.nextChange(deadline - Date.now());
        }
        if (this.unconfirmed.size > 0) {
          this.options.log.warn({ unconfirmed: this.unconfirmed.size }, 'bar producer stopped with unconfirmed bars');
          this.fail(new PublishError(`bar producer stopped with ${this.unconfirmed.size} bars unconfirmed`));
        }
        const slot = this.slot;
        this.slot = null;
        if (slot !== null) {
          try {
            await slot.channel.close();
          } catch (err) {
            this.options.log.warn({ err }, 'closing the bar producer channel failed');
          }
        }
        const connection = this.connection;
        if (connection !== null) await connection.stop();
      })();
    }
    return this.stopPromise;
  }
}

function isBatch(item: Bar | readonly Bar[]): item is readonly Bar[] {
  return Array.isArray(item);
}

/** A batch must be what the tactical worker accepts: one symbol, 5m, oldest first, not too many. */
function checkBatch(batch: readonly Bar[]): void {
  const first = batch[0] as Bar;
  if (batch.length > MAX_BATCH_BARS) throw new ValidationError(`a batch holds at most ${MAX_BATCH_BARS} bars, got ${batch.length}`);
  batch.forEach((bar, i) => {
    if (bar.timeframe !== '5m') throw new ValidationError(`bar ${barId(bar)}: only 5m bars travel in batches`);
    if (bar.symbol !== first.symbol) throw new ValidationError(`bar ${barId(bar)}: a batch holds one symbol (${first.symbol})`);
    const prev = batch[i - 1];
    if (prev !== undefined && bar.ts <= prev.ts) throw new ValidationError(`bar ${barId(bar)}: bars of a batch go oldest first`);
  });
}
