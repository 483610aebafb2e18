import type { ConsumeMessage } from 'amqplib';
import type { ZodType } from 'zod';
import { TIMEFRAME_MS } from '../../schemas/bar.schema';
import { EXCHANGE_BARS, routingKeys } from '../broker/topology';
import { BaseConsumer, type BaseConsumerOptions, type HandleResult } from '../broker/base-consumer';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import { OutOfOrderError, PipelineError, ValidationError } from '../errors';
import type { SymbolStateStore } from '../state/symbol-state-store';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import { KeyedSerialQueue } from '../util/keyed-serial-queue';
import { parseMessage } from './parse-message';

/** A message a stage emits for one input. */
export interface Emission {
  exchange: string;
  routingKey: string;
  body: unknown;
  messageId: string;
  /** Reject the publish when no queue is bound. */
  mandatory?: boolean;
}

/** What a stage computed for one bar. */
export interface StageOutput<S> {
  state: S;
  emissions: Emission[];
}

/** Per-symbol state every bar stage keeps: the open time of the last accepted bar. */
export interface StageState {
  lastTs: number;
}

/** Options of {@link BarStageConsumer}. */
export interface BarStageConsumerOptions extends BaseConsumerOptions {
  timeframe: '5m' | '30m';
  /**
   * Whether this stage dead-letters bad input. Two stages read every 5m bar (tactical and
   * resampler); only one of them (tactical) owns rejections, so a bad bar leaves one dead letter,
   * and the other acknowledges it without output. @defaultValue true
   */
  ownsRejections?: boolean;
}

/** The state of a stage was dropped while a message was in flight; the broker redelivers it. */
class SupersededError extends PipelineError {
  constructor() {
    super('SUPERSEDED', 'state was reset while the message was in flight', true);
  }
}

/**
 * Base of the stages that turn bars of one symbol, in order, into messages: resampler, strategic,
 * tactical. It validates (bad JSON or schema → dead letter with the reason), dedupes against the
 * symbol's last accepted bar and the Redis dedupe bitmap (duplicate → ack, no output), rejects
 * out-of-order bars, runs {@link process} one bar at a time per symbol (other symbols go on), publishes
 * the outputs at once and commits state + dedupe mark after their confirms, in bar order per symbol.
 * The message is acked after that commit; the next bar does not wait for it.
 */
export abstract class BarStageConsumer<S extends StageState, B extends { symbol: string; ts: number }> extends BaseConsumer {
  private readonly serial = new KeyedSerialQueue();
  private cache = new Map<string, S | null>();
  /** Bars processed but not yet committed, per symbol (a duplicate may arrive before the commit). */
  private pending = new Map<string, Set<number>>();
  private commitTails = new Map<string, Promise<void>>();
  /** Symbols whose processing failed in this generation: their later bars must not be processed. */
  private poisoned = new Set<string>();
  private stateGeneration = 0;
  private readonly timeframeMs: number;
  private readonly ownsRejections: boolean;
  protected override readonly options: BarStageConsumerOptions;

  constructor(
    connection: BrokerConnection,
    publisher: Publisher,
    protected readonly store: SymbolStateStore<S>,
    private readonly schema: ZodType<B>,
    options: BarStageConsumerOptions,
  ) {
    super(connection, publisher, options);
    this.timeframeMs = TIMEFRAME_MS[options.timeframe];
    this.ownsRejections = options.ownsRejections ?? true;
    this.options = options;
  }

  /** Computes the outputs and the next state for one accepted bar. */
  protected abstract process(bar: B, state: S | null, msg: ConsumeMessage, receivedAt: number): Promise<StageOutput<S>>;

  /** Redeliveries are put back in `ts` order per symbol before processing (see BaseConsumer). */
  protected override redeliveryOrder(msg: ConsumeMessage): { group: string; order: number } | null {
    try {
      const body = JSON.parse(msg.content.toString('utf8')) as { symbol?: unknown; ts?: unknown };
      return typeof body.symbol === 'string' && typeof body.ts === 'number' ? { group: body.symbol, order: body.ts } : null;
    } catch {
      return null;
    }
  }

  /** Called when in-memory state is dropped; subclasses drop their own caches too. */
  protected onReset(): void {}

  protected reset(): void {
    this.stateGeneration++;
    this.cache = new Map();
    this.pending = new Map();
    this.commitTails = new Map();
    this.poisoned = new Set();
    this.onReset();
  }

  protected async handle(msg: ConsumeMessage): Promise<HandleResult> {
    try {
      return await this.handleBar(msg);
    } catch (err) {
      if (this.ownsRejections || !(err instanceof ValidationError || err instanceof OutOfOrderError)) throw err;
      this.log.debug({ reason: err.message }, 'bad bar skipped; the owning stage dead-letters it');
      return { kind: 'done' };
    }
  }

  private async handleBar(msg: ConsumeMessage): Promise<HandleResult> {
    const receivedAt = performance.now();
    const bar = parseMessage(msg.content, this.schema);
    const expectedKey = routingKeys.bar(this.options.timeframe, bar.symbol);
    if (msg.fields.routingKey !== expectedKey && msg.fields.exchange === EXCHANGE_BARS) {
      throw new ValidationError(
        `routing key ${msg.fields.routingKey} does not match the body (symbol ${bar.symbol}): publish it as ${expectedKey}`,
      );
    }
    const generation = this.stateGeneration;
    return this.serial.run(bar.symbol, async (): Promise<HandleResult> => {
      const poisoned = this.poisoned;
      if (generation !== this.stateGeneration || poisoned.has(bar.symbol)) throw new SupersededError();
      try {
        return await this.processInOrder(bar, msg, receivedAt, generation);
      } catch (err) {
        // A later bar of this symbol must never be processed without this one (it would see a gap).
        if (!(err instanceof ValidationError || err instanceof OutOfOrderError)) poisoned.add(bar.symbol);
        throw err;
      }
    });
  }

  private async processInOrder(bar: B, msg: ConsumeMessage, receivedAt: number, generation: number): Promise<HandleResult> {
    {
      let state = this.cache.get(bar.symbol);
      if (state === undefined) {
        state = await this.store.load(bar.symbol);
        if (generation !== this.stateGeneration) throw new SupersededError();
        this.cache.set(bar.symbol, state);
      }
      if (state !== null && bar.ts <= state.lastTs) {
        if (bar.ts === state.lastTs || this.pending.get(bar.symbol)?.has(bar.ts) === true) return { kind: 'done' };
        if (await this.store.wasAccepted(bar.symbol, this.timeframeMs, bar.ts)) return { kind: 'done' };
        throw new OutOfOrderError(
          `out of order: ${bar.symbol} bar ts ${bar.ts} (${new Date(bar.ts).toISOString()}) is older than the last accepted bar ${state.lastTs} (${new Date(state.lastTs).toISOString()}); publish bars of a symbol in ts order`,
        );
      }
      const output = await this.process(bar, state, msg, receivedAt);
      if (generation !== this.stateGeneration) throw new SupersededError();
      this.cache.set(bar.symbol, output.state);
      let pendingSet = this.pending.get(bar.symbol);
      if (pendingSet === undefined) {
        pendingSet = new Set();
        this.pending.set(bar.symbol, pendingSet);
      }
      pendingSet.add(bar.ts);
      if (msg.fields.redelivered && output.emissions.length > 0) {
        // Possibly a re-send: the first delivery may have published these outputs before it died.
        pipelineEvents.emit(PipelineEvent.Resend, { stage: this.options.stage });
      }
      const confirms = output.emissions.map((e) =>
        this.publisher.publish(e.exchange, e.routingKey, Buffer.from(JSON.stringify(e.body)), {
          messageId: e.messageId,
          mandatory: e.mandatory ?? false,
        }),
      );
      const previous = this.commitTails.get(bar.symbol) ?? Promise.resolve();
      const committed = (async () => {
        // Outputs first, then state: a crash in between re-sends identical outputs on redelivery,
        // never loses one. Commits of one symbol apply in bar order.
        const results = await Promise.allSettled([previous, ...confirms]);
        const failed = results.find((r) => r.status === 'rejected');
        if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
        if (generation !== this.stateGeneration) throw new SupersededError();
        await this.store.commit(bar.symbol, output.state, { timeframeMs: this.timeframeMs, ts: bar.ts });
        pendingSet.delete(bar.ts);
      })();
      this.commitTails.set(bar.symbol, committed);
      const poisoned = this.poisoned;
      committed.catch(() => poisoned.add(bar.symbol));
      return { kind: 'commit', committed };
    }
  }
}
