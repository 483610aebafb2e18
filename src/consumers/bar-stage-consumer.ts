import type { ConsumeMessage } from 'amqplib';
import { setMaxListeners } from 'node:events';
import type { ZodType } from 'zod';
import { TIMEFRAME_MS } from '../../schemas/bar.schema';
import { EXCHANGE_BARS, EXCHANGE_INTERNAL, messageIds, routingKeys } from '../broker/topology';
import { BaseConsumer, type BaseConsumerOptions, type HandleResult } from '../broker/base-consumer';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import { isRetriable, OutOfOrderError, PipelineError, ValidationError } from '../errors';
import type { SymbolStateStore } from '../state/symbol-state-store';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import { retry } from '../util/backoff';
import { KeyedSerialQueue } from '../util/keyed-serial-queue';
import { BarCommits, type Confirmation, type Emission, type StageOutput } from './bar-commits';
import { parseMessage } from './parse-message';

export type { Confirmation, Emission, StageOutput } from './bar-commits';

/** Per-symbol state every bar stage keeps: the open time of the last accepted bar. */
export interface StageState {
  lastTs: number;
}

/** Options of {@link BarStageConsumer}. */
export interface BarStageConsumerOptions extends BaseConsumerOptions {
  timeframe: '5m' | '30m';
  /**
   * Deliveries of a message that was being processed each time its worker died, after which it is
   * dead-lettered unprocessed (a poison message). @defaultValue 3
   */
  crashAttempts?: number;
}

/**
 * The signal of one state generation. Every bar waiting for a context listens to it (one per symbol
 * at most, each removed when its wait ends), so the default limit of 10 listeners would warn of a leak.
 */
function generationSignal(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/**
 * Deliveries in flight (unacknowledged) up to which a single bar may take the synchronous fast path.
 * Above it the bars go their lanes, where the agents batch the decisions of one event-loop turn:
 * with 1,000 symbols closing at once the fast path (each bar decided alone) made the burst about 20%
 * slower (`BENCH_SECTIONS=burst npx tsx bench/pipeline.bench.ts`, 2026-12-08).
 */
const FAST_PATH_MAX_IN_FLIGHT = 8;

/** The state of a stage was dropped while a message was in flight; the broker redelivers it. */
class SupersededError extends PipelineError {
  constructor() {
    super('SUPERSEDED', 'state was reset while the message was in flight', true);
  }
}

/** A message that was being processed each time its worker died. Never retried. */
export class PoisonMessageError extends PipelineError {
  constructor(message: string) {
    super('POISON_MESSAGE', message, false);
  }
}

/**
 * Base of the stages that turn bars of one symbol, in order, into messages: tactical and strategic.
 * It validates (bad JSON or schema → dead letter with the reason), dedupes against the symbol's last
 * accepted bar and the Redis dedupe bitmap (duplicate → ack, no output), rejects out-of-order bars,
 * runs {@link process} one bar at a time per symbol (other symbols go on), publishes the outputs at
 * once and hands state + dedupe mark to the store's group commit after their confirms, in bar order
 * per symbol. The message is acked after that commit; the next bar does not wait for it.
 *
 * Isolation per symbol: a retriable failure while processing a bar is tried again (with a pause) in
 * the symbol's own lane, so only that symbol's later bars wait; after `maxAttempts` the bar is
 * dead-lettered and the symbol goes on (a gap). A failed publish is sent again (the same message),
 * and a failed state write is retried by the store; neither holds back another symbol. A bar that
 * comes back redelivered (its worker died or lost the broker) is processed in a crash lane, one at a
 * time, with an attempt counter in Redis around its computation: a message that kills the worker
 * every time is recognised after `crashAttempts` deaths and dead-lettered alone.
 */
export abstract class BarStageConsumer<S extends StageState, B extends { symbol: string; ts: number }> extends BaseConsumer {
  private readonly serial = new KeyedSerialQueue();
  private cache = new Map<string, S | null>();
  /** The commits of this state generation (see {@link BarCommits}: the commit protocol). */
  private commits: BarCommits<S>;
  /**
   * Symbols with a bar left unacknowledged for redelivery (stopping, channel lost): their later
   * bars must not be processed or committed without it, or the redelivered bar would be out of order.
   */
  private heldBack = new Set<string>();
  private crashLane: Promise<void> = Promise.resolve();
  private stateGeneration = 0;
  /** Aborted when the state generation ends (channel lost): the waits of its deliveries stop at once. */
  private generationEnded = generationSignal();
  private readonly timeframeMs: number;
  private readonly crashAttempts: number;
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
    this.crashAttempts = options.crashAttempts ?? 3;
    this.options = options;
    this.commits = this.newCommits();
  }

  /** The commits of the current state generation: they end with it. */
  private newCommits(): BarCommits<S> {
    const generation = this.stateGeneration;
    const held = this.heldBack;
    return new BarCommits(
      this.store,
      this.timeframeMs,
      () => generation === this.stateGeneration,
      () => new SupersededError(),
      (symbol) => held.add(symbol),
    );
  }

  /**
   * Computes the outputs and the next state for one accepted bar. `superseded` aborts when the
   * delivery is gone (channel lost): a wait for another stage's output (context, feedback) must end
   * then, not run out, since running out would change the bar's result.
   */
  protected abstract process(
    bar: B,
    state: S | null,
    msg: ConsumeMessage,
    receivedAt: number,
    superseded: AbortSignal,
  ): Promise<StageOutput<S>>;

  /**
   * A replay batch's loop, and a single bar's fast path: computes at once, in order, the leading bars of `bars` (consecutive,
   * each after `state`'s) that need nothing to be waited for, with no await, and returns how many
   * it decided and their outputs together (the last bar's state); undefined or 0 decided when
   * the first must go the per-bar way ({@link process}: a wait, a load). Each bar's outputs must be
   * those {@link process} gives it; nothing may change for the bars left undecided.
   * @defaultValue none decided
   */
  protected processRun(
    _bars: readonly B[],
    _state: S | null,
    _msg: ConsumeMessage,
    _receivedAt: number,
    _superseded: AbortSignal,
  ): { decided: number; output: StageOutput<S> } | undefined {
    return undefined;
  }

  /** Redeliveries are put back in `ts` order per symbol before processing (see BaseConsumer). */
  protected override redeliveryOrder(msg: ConsumeMessage): { group: string; order: number } | null {
    try {
      const body = JSON.parse(msg.content.toString('utf8')) as { symbol?: unknown; ts?: unknown; bars?: { ts?: unknown }[] };
      // A batch of bars is ordered by its first bar.
      const ts = Array.isArray(body.bars) ? body.bars[0]?.ts : body.ts;
      return typeof body.symbol === 'string' && typeof ts === 'number' ? { group: body.symbol, order: ts } : null;
    } catch {
      return null;
    }
  }

  /** Called when in-memory state is dropped; subclasses drop their own caches too. */
  protected onReset(): void {}

  protected reset(): void {
    this.stateGeneration++;
    this.generationEnded.abort();
    this.generationEnded = generationSignal();
    this.cache = new Map();
    this.heldBack = new Set();
    this.commits = this.newCommits();
    this.store.discardPending();
    this.onReset();
  }

  protected async handle(msg: ConsumeMessage): Promise<HandleResult> {
    const receivedAt = performance.now();
    const bar = parseMessage(msg.content, this.schema);
    const expectedKey = routingKeys.bar(this.options.timeframe, bar.symbol);
    if (msg.fields.routingKey !== expectedKey && (msg.fields.exchange === EXCHANGE_BARS || msg.fields.exchange === EXCHANGE_INTERNAL)) {
      throw new ValidationError(
        `routing key ${msg.fields.routingKey} does not match the body (symbol ${bar.symbol}): publish it as ${expectedKey}`,
      );
    }
    this.onDelivered(bar, msg);
    return this.handleNow(bar, msg, receivedAt) ?? this.handleBar(bar, msg, receivedAt);
  }

  /**
   * The synchronous fast path of a single bar: when its symbol's lane is idle, its state is in
   * memory, it is newer than the last accepted bar, it is a first delivery and everything it needs
   * is in memory ({@link processRun}: its context in the buffer), it is computed at once, with no
   * await, and handed to the commit as the lane would have. Otherwise (undefined) it goes the
   * lane's way. The outputs are the same either way.
   */
  private handleNow(bar: B, msg: ConsumeMessage, receivedAt: number): HandleResult | undefined {
    // Many deliveries at once (a burst at a close, a backlog): the lane's way, where the agents
    // decide the bars of one event-loop turn in one batched forward pass, is faster then.
    if (this.inFlight > FAST_PATH_MAX_IN_FLIGHT || !this.serial.idle(bar.symbol)) return undefined;
    const run = this.commitRunNow([bar], msg, receivedAt, this.stateGeneration, this.generationEnded.signal, this.heldBack);
    return run === undefined ? undefined : { kind: 'commit', committed: run.committed };
  }

  /**
   * Computes at once the leading bars of `bars` (one symbol's, in order) that need nothing to be
   * waited for ({@link processRun}) and hands them to the commit as one; undefined when the first
   * must go the per-bar way (state not in memory, not newer than the last accepted bar, a
   * redelivery, stopping, the symbol held back, or a wait). The caller holds the symbol's lane or
   * knows it is idle.
   */
  private commitRunNow(
    bars: readonly B[],
    msg: ConsumeMessage,
    receivedAt: number,
    generation: number,
    superseded: AbortSignal,
    held: Set<string>,
  ): { decided: number; committed: Promise<void> } | undefined {
    const first = bars[0] as B;
    const symbol = first.symbol;
    const state = this.cache.get(symbol);
    if (state === undefined || (state !== null && first.ts <= state.lastTs) || msg.fields.redelivered || this.notStarted(symbol, generation, held)) return undefined;
    const run = this.processRun(bars, state, msg, receivedAt, superseded);
    if (run === undefined || run.decided === 0) return undefined;
    this.cache.set(symbol, run.output.state);
    const ts = bars.slice(0, run.decided).map((b) => b.ts);
    return { decided: run.decided, committed: this.commitOutput(symbol, ts, run.output, superseded) };
  }

  /**
   * Called for every bar that passed validation, in delivery order, before it joins its symbol's
   * lane (a batch's bars one by one). The tactical worker uses it to look ahead at bars in hand.
   */
  protected onDelivered(_bar: B, _msg: ConsumeMessage): void {}

  /**
   * A batch of consecutive bars of one symbol in one delivery (`pipeline replay`), taken as one job
   * of its symbol's lane: the state is loaded once, the bars that need nothing to be waited for are
   * computed together ({@link processRun}) and each such run is handed over as ONE commit (its
   * outputs, the last bar's state, every bar's dedupe mark); a bar that must wait (its context,
   * a load, a redelivery's crash count, a retry) goes the per-bar way at that point, as if it had
   * come alone, and so does a duplicate or an out-of-order bar. The results are those of one bar
   * per message. The batch is acknowledged once every bar is committed (outputs confirmed, state
   * durable). A bar that must be dead-lettered (out of order, poison) is dead-lettered alone, as a
   * single-bar message, and the others go on; a failure that leaves a bar unacknowledged
   * (stopping, channel lost) leaves the whole batch to be delivered again, and its bars already
   * committed are then dropped as duplicates. `whenProcessed` is called once every bar has been
   * computed or has failed (before their commits), with the delivery's superseded signal.
   */
  protected handleBatch(msg: ConsumeMessage, bars: readonly B[], whenProcessed?: (superseded: AbortSignal) => void): Promise<HandleResult> {
    const receivedAt = performance.now();
    const generation = this.stateGeneration;
    const superseded = this.generationEnded.signal;
    const held = this.heldBack;
    for (const bar of bars) this.onDelivered(bar, msg);
    const symbol = (bars[0] as B).symbol;
    const outcomes: Promise<void>[] = [];
    const outcome = (done: Promise<void>): void => {
      done.catch(() => undefined); // observed by `committed`
      outcomes.push(done);
    };
    const processed = this.serial.run(symbol, async () => {
      for (let i = 0; i < bars.length; ) {
        const run = this.commitRunNow(bars.slice(i), msg, receivedAt, generation, superseded, held);
        if (run !== undefined) {
          outcome(run.committed);
          i += run.decided;
          continue;
        }
        const bar = bars[i] as B;
        try {
          const r = await this.attemptBar(bar, msg, receivedAt, generation, superseded, held);
          if (r.kind === 'commit') outcome(r.committed);
          else if (r.kind === 'reject') outcome(this.deadLetterBar(msg, bar, r.reason, generation));
        } catch (err) {
          // Left unacknowledged: the rest of the batch waits for the redelivery too.
          if (isRetriable(err) || err instanceof SupersededError) throw err;
          outcome(this.deadLetterBar(msg, bar, err instanceof Error ? err.message : String(err), generation));
        }
        i++;
      }
    });
    // Every bar computed (or failed): what waits for the whole batch's outputs can go now.
    if (whenProcessed !== undefined) void processed.then(() => whenProcessed(superseded), () => whenProcessed(superseded));
    const committed = processed.then(() => Promise.all(outcomes)).then(() => undefined);
    return Promise.resolve({ kind: 'commit', committed });
  }

  /** Dead-letters one bar of a batch as the single-bar message it stands for, until confirmed. */
  private async deadLetterBar(batch: ConsumeMessage, bar: B, reason: string, generation: number): Promise<void> {
    const single = {
      content: Buffer.from(JSON.stringify(bar)),
      fields: { ...batch.fields, exchange: EXCHANGE_BARS, routingKey: routingKeys.bar(this.options.timeframe, bar.symbol) },
      properties: {
        ...batch.properties,
        contentType: 'application/json',
        messageId: messageIds.bar(bar.symbol, this.options.timeframe, bar.ts),
      },
    } as ConsumeMessage;
    await retry(() => this.deadLetter(single, reason), {
      backoff: this.backoff,
      shouldRetry: () => generation === this.stateGeneration && !this.isStopping,
      pause: (ms) => this.pause(ms),
    });
  }

  /** Runs one bar through its symbol's lane. */
  private handleBar(bar: B, msg: ConsumeMessage, receivedAt: number): Promise<HandleResult> {
    const generation = this.stateGeneration;
    const superseded = this.generationEnded.signal;
    const held = this.heldBack;
    return this.serial.run(bar.symbol, () => this.attemptBar(bar, msg, receivedAt, generation, superseded, held));
  }

  /** Stopping, or the generation or the symbol's delivery gone: bars not started stay unacknowledged and are redelivered. */
  private notStarted(symbol: string, generation: number, held: Set<string>): boolean {
    return generation !== this.stateGeneration || this.isStopping || held.has(symbol);
  }

  /** Processes one bar in its symbol's lane (the caller's job), retrying a retriable failure in place. */
  private async attemptBar(bar: B, msg: ConsumeMessage, receivedAt: number, generation: number, superseded: AbortSignal, held: Set<string>): Promise<HandleResult> {
    let attempts = 0;
    let notStarted = false;
    try {
      return await retry(
        (attempt) => {
          attempts = attempt;
          notStarted = this.notStarted(bar.symbol, generation, held);
          if (notStarted) throw new SupersededError();
          return this.processInOrder(bar, msg, receivedAt, generation, superseded);
        },
        {
          backoff: this.backoff,
          shouldRetry: (err, attempt) =>
            !(err instanceof SupersededError) && isRetriable(err) && !this.isStopping && attempt < this.options.maxAttempts,
          onRetry: (err, attempt, delayMs) =>
            this.log.warn({ err: (err as Error).message, symbol: bar.symbol, ts: bar.ts, attempt, delayMs }, 'retriable failure; trying the bar again (its symbol waits)'),
          pause: (ms) => this.pause(ms),
        },
      );
    } catch (err) {
      if (notStarted) throw err;
      if (err instanceof SupersededError || !isRetriable(err) || this.isStopping) {
        // A retriable error here leaves the message unacknowledged: hold the symbol back.
        if (isRetriable(err)) held.add(bar.symbol);
        throw err;
      }
      throw new PoisonMessageError(`gave up after ${attempts} attempts: ${(err as Error).message}`);
    }
  }

  /**
   * Runs the computation of a bar (the part a bad message could crash). A redelivered message runs
   * in the crash lane, one at a time, between an attempt count and its reset in Redis; when the
   * count says the worker died `crashAttempts` times on it, it is not run again.
   */
  protected async guardCompute<T>(msg: ConsumeMessage, id: string, compute: () => Promise<T> | T): Promise<T> {
    if (!msg.fields.redelivered) return compute();
    const previous = this.crashLane;
    let release: () => void = () => undefined;
    this.crashLane = new Promise<void>((resolve) => (release = resolve));
    try {
      await previous;
      const attempts = await this.store.countAttempt(id);
      if (attempts >= this.crashAttempts) {
        // Forget the count: a replay of the dead letter (a fresh delivery) starts over.
        await this.store.clearAttempts(id).catch(() => undefined);
        throw new PoisonMessageError(
          `the ${this.options.stage} worker died ${attempts} times while processing ${id}: dead-lettered unprocessed so that the other bars go on; inspect the message (pipeline dlq list) before replaying it`,
        );
      }
      let out: T;
      try {
        out = await compute();
      } catch (err) {
        // It failed without killing the worker: not a crash, so the count starts over.
        await this.store.clearAttempts(id).catch(() => undefined);
        throw err;
      }
      await this.store.clearAttempts(id);
      return out;
    } finally {
      release();
    }
  }

  private async processInOrder(
    bar: B,
    msg: ConsumeMessage,
    receivedAt: number,
    generation: number,
    superseded: AbortSignal,
  ): Promise<HandleResult> {
    let state = this.cache.get(bar.symbol);
    if (state === undefined) {
      state = await this.store.load(bar.symbol);
      if (generation !== this.stateGeneration) throw new SupersededError();
      this.cache.set(bar.symbol, state);
    }
    if (state !== null && bar.ts <= state.lastTs) {
      if (bar.ts === state.lastTs || this.commits.isPending(bar.symbol, bar.ts)) return { kind: 'done' };
      if (await this.store.wasAccepted(bar.symbol, this.timeframeMs, bar.ts)) return { kind: 'done' };
      throw new OutOfOrderError(
        `out of order: ${bar.symbol} bar ts ${bar.ts} (${new Date(bar.ts).toISOString()}) is older than the last accepted bar ${state.lastTs} (${new Date(state.lastTs).toISOString()}); publish bars of a symbol in ts order`,
      );
    }
    let output: StageOutput<S>;
    try {
      output = await this.process(bar, state, msg, receivedAt, superseded);
    } catch (err) {
      // The delivery is gone (a wait abandoned, a publish on the closed channel): redelivered, not retried here.
      if (generation !== this.stateGeneration) throw new SupersededError();
      throw err;
    }
    if (generation !== this.stateGeneration) throw new SupersededError();
    this.cache.set(bar.symbol, output.state);
    const confirmations = output.confirmations ?? [];
    if (msg.fields.redelivered && output.emissions.length + confirmations.length > 0) {
      // Possibly a re-send: the first delivery may have published these outputs before it died.
      pipelineEvents.emit(PipelineEvent.Resend, { stage: this.options.stage });
    }
    return { kind: 'commit', committed: this.commitOutput(bar.symbol, [bar.ts], output, superseded) };
  }

  /** Steps 2–4 of the commit protocol for the outputs of the bars `ts` (one, or a batch's run). */
  private commitOutput(symbol: string, ts: readonly number[], output: StageOutput<S>, superseded: AbortSignal): Promise<void> {
    // Observed at once: when the previous bar's hand-over fails (state reset by a lost channel),
    // the commit stops before reaching these confirms, and one failing later (its channel closed)
    // must not be an unhandled rejection, which ends the worker.
    const confirmed = Promise.all([
      ...output.emissions.map((e) => this.publishUntilConfirmed(e, superseded)),
      ...(output.confirmations ?? []).map((c) => this.confirmUntilDone(c, superseded)),
    ]).then(() => undefined);
    confirmed.catch(() => undefined);
    return this.commits.commit(symbol, ts, output.state, confirmed);
  }

  /**
   * Publishes an emission, sending it again until confirmed. Ends with the failure once the delivery is gone (`superseded`: the state generation
   * ended) or the worker stops: the redelivered bar sends it again.
   */
  protected publishUntilConfirmed(e: Emission, superseded: AbortSignal): Promise<void> {
    return this.sendUntilConfirmed(e.messageId, () => this.publishEmission(e), superseded);
  }

  /** Waits for a {@link Confirmation}, trying it `again` until confirmed (see {@link sendUntilConfirmed}). */
  private confirmUntilDone(c: Confirmation, superseded: AbortSignal): Promise<void> {
    const again = c.again;
    return again === undefined ? c.confirmed : this.sendUntilConfirmed(c.what, again, superseded, c.confirmed);
  }

  /**
   * Calls `send` (after `first`, a send already under way, when given) until one is confirmed,
   * pausing between tries. Ends with the failure once the delivery is gone (`superseded`) or the
   * worker stops.
   */
  protected sendUntilConfirmed(messageId: string, send: () => Promise<void>, superseded: AbortSignal, first?: Promise<void>): Promise<void> {
    return retry((attempt) => (attempt === 1 && first !== undefined ? first : send()), {
      backoff: this.backoff,
      shouldRetry: () => !superseded.aborted && !this.isStopping,
      onRetry: (err, attempt, delayMs) => this.log.warn({ err: (err as Error).message, messageId, attempt, delayMs }, 'publish failed; sending it again'),
      pause: (ms) => this.pause(ms),
    });
  }

  /** Publishes one emission and resolves on its confirm. */
  protected publishEmission(e: Emission): Promise<void> {
    return this.publisher.publish(e.exchange, e.routingKey, Buffer.from(JSON.stringify(e.body)), {
      messageId: e.messageId,
      mandatory: e.mandatory ?? false,
      ...(e.headers === undefined ? {} : { headers: e.headers }),
      ...(e.replyTo === undefined ? {} : { replyTo: e.replyTo }),
    });
  }
}
