import type { ConsumeMessage } from 'amqplib';
import { Bar30mSchema, type Bar30m } from '../../schemas/bar.schema';
import { FeedbackSchema, type Feedback } from '../../schemas/feedback.schema';
import type { HandleResult } from '../broker/base-consumer';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import { EXCHANGE_INTERNAL, isContextQueue, messageIds, routingKeys } from '../broker/topology';
import { ValidationError } from '../errors';
import { WaitAbandonedError, type TimeKeyedBufferFlow } from '../flows/context-buffer-flow';
import type { DurableWrite, PreparedBar, StrategicFlow, StrategicState } from '../flows/strategic-flow';
import type { StrategicContext } from '../../schemas/strategic-context.schema';
import type { SymbolStateStore } from '../state/symbol-state-store';
import type { Confirmation, Emission, StageOutput } from './bar-commits';
import { BarStageConsumer, type BarStageConsumerOptions } from './bar-stage-consumer';
import { parseMessage } from './parse-message';

/**
 * Consumes its strategic shard's queue, which carries a symbol's 30m bars and its six-bar feedback
 * through the same ring and so in the order the tactical side published them. Feedback goes into
 * the feedback buffer (stored in Redis before the ack). Each 30m bar gives one strategic context,
 * sent to the queue named in the bar's reply-to (the context queue of the tactical shard that built
 * it) as `reply.<queue>` on `pipeline.internal`.
 */
export class StrategicConsumer extends BarStageConsumer<StrategicState, Bar30m> {
  constructor(
    connection: BrokerConnection,
    publisher: Publisher,
    store: SymbolStateStore<StrategicState>,
    private readonly flow: StrategicFlow,
    private readonly feedback: TimeKeyedBufferFlow<Feedback>,
    options: BarStageConsumerOptions,
  ) {
    super(connection, publisher, store, Bar30mSchema, options);
  }

  protected override handle(msg: ConsumeMessage): Promise<HandleResult> {
    if (msg.fields.routingKey.startsWith(routingKeys.feedback(''))) {
      const item = parseMessage(msg.content, FeedbackSchema);
      return Promise.resolve({ kind: 'commit', committed: this.feedback.put(item) });
    }
    return super.handle(msg);
  }

  /** Bars whose waits are over, analysed together in the next pass (see {@link runPass}). */
  private pass: PassEntry[] = [];

  protected override async process(
    bar: Bar30m,
    state: StrategicState | null,
    msg: ConsumeMessage,
    _receivedAt: number,
    superseded: AbortSignal,
  ): Promise<StageOutput<StrategicState>> {
    const replyTo: unknown = msg.properties.replyTo;
    if (!isContextQueue(replyTo)) {
      throw new ValidationError(
        `30m bar ${bar.symbol}:30m:${bar.ts} has no usable reply-to (${JSON.stringify(replyTo ?? null)}): the tactical worker that builds a 30m bar names its context queue (tactical_context.<k>) there; 30m bars published by anyone else are not processed`,
      );
    }
    if (msg.fields.redelivered) {
      // The crash lane counts attempts around the whole computation: one bar at a time, as before.
      const { context, state: next, durable } = await this.guardCompute(msg, `${bar.symbol}:30m:${bar.ts}`, () => this.flow.step(bar, state, superseded));
      this.warnDegraded(context);
      const emission = this.emissionOf(context, replyTo);
      if (durable === null) return { state: next, emissions: [emission] };
      return { state: next, emissions: [], confirmations: [this.publishBeforeDurable(emission, this.publishEmission(emission), durable)] };
    }
    const prepared = await this.flow.prepare(bar, state, superseded);
    if (prepared.run === undefined) {
      const { context, state: next, durable } = await prepared.step();
      this.warnDegraded(context);
      const emission = this.emissionOf(context, replyTo);
      if (durable === null) return { state: next, emissions: [emission] };
      return { state: next, emissions: [], confirmations: [this.publishBeforeDurable(emission, this.publishEmission(emission), durable)] };
    }
    const run = prepared.run;
    return new Promise<StageOutput<StrategicState>>((resolve, reject) => {
      this.pass.push({ run, replyTo, superseded, resolve, reject });
      if (this.pass.length === 1) setImmediate(() => this.runPass());
    });
  }

  /**
   * One pass over the bars readied since the last one (at a 30m close, the deliveries of a whole
   * turn of the event loop): first every bar's analysis, each context sent as soon as it is known;
   * then, for each, the rest of its bar (pattern insert and merge, the sync start, its checkpoint
   * state). Each symbol has its own analyzer and store and its bars run one at a time, so a bar's
   * result does not depend on which bars share its pass.
   */
  private runPass(): void {
    const pass = this.pass;
    this.pass = [];
    const sent: { entry: PassEntry; finish: () => { state: StrategicState; durable: DurableWrite | null }; emission: Emission; publish: Promise<void> }[] = [];
    for (const entry of pass) {
      if (entry.superseded.aborted) {
        // The delivery is gone: left undone, the redelivered bar computes it from its checkpoint.
        entry.reject(new WaitAbandonedError());
        continue;
      }
      try {
        const { context, finish } = entry.run();
        this.warnDegraded(context);
        const emission = this.emissionOf(context, entry.replyTo);
        const publish = this.publishEmission(emission);
        publish.catch(() => undefined); // awaited (and retried) by the commit
        sent.push({ entry, finish, emission, publish });
      } catch (err) {
        entry.reject(err);
      }
    }
    for (const { entry, finish, emission, publish } of sent) {
      try {
        const { state, durable } = finish();
        const confirmation =
          durable === null
            ? { what: emission.messageId, confirmed: publish, again: () => this.publishEmission(emission) }
            : this.publishBeforeDurable(emission, publish, durable);
        entry.resolve({ state, emissions: [], confirmations: [confirmation] });
      } catch (err) {
        entry.reject(err);
      }
    }
  }

  private warnDegraded(context: StrategicContext): void {
    if (context.degraded.includes('feedback')) {
      // Rare and costly: the bar waited the whole PIPELINE_CONTEXT_WAIT_MS, and so did the tactical bar waiting for this context.
      this.log.warn({ symbol: context.symbol, ts: context.ts }, 'feedback wait ran out: context computed without the lagged feedback window');
    }
  }

  private emissionOf(context: StrategicContext, replyTo: string): Emission {
    return {
      exchange: EXCHANGE_INTERNAL,
      routingKey: routingKeys.reply(replyTo),
      body: context,
      messageId: messageIds.context(context.symbol, context.bar_close_ts),
      mandatory: true,
    };
  }

  /**
   * The context is on its way (`publish`); the pattern store's write of the same bar goes on
   * meanwhile, and the commit waits for both. A failure of either is retried alone: a context
   * already confirmed is not sent again for a failed disk write.
   */
  private publishBeforeDurable(emission: Emission, first: Promise<void>, durable: DurableWrite): Confirmation {
    let publish = first;
    const confirmed = Promise.all([publish, durable.done]).then(() => undefined);
    confirmed.catch(() => undefined); // awaited (and retried) by the commit
    const again = async (): Promise<void> => {
      // Only a publish that failed goes again (one still in flight is waited for).
      publish = publish.catch(() => this.publishEmission(emission));
      await Promise.all([durable.retry(), publish]);
    };
    return { what: emission.messageId, confirmed, again };
  }
}

interface PassEntry {
  run: NonNullable<PreparedBar['run']>;
  replyTo: string;
  superseded: AbortSignal;
  resolve: (output: StageOutput<StrategicState>) => void;
  reject: (err: unknown) => void;
}
