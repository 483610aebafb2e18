import type { ConsumeMessage } from 'amqplib';
import { Bar30mSchema, type Bar30m } from '../../schemas/bar.schema';
import { FeedbackSchema, type Feedback } from '../../schemas/feedback.schema';
import type { HandleResult } from '../broker/base-consumer';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import { EXCHANGE_INTERNAL, isContextQueue, messageIds, routingKeys } from '../broker/topology';
import { ValidationError } from '../errors';
import type { TimeKeyedBufferFlow } from '../flows/context-buffer-flow';
import type { DurableWrite, StrategicFlow, StrategicState } from '../flows/strategic-flow';
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
    const { context, state: next, durable } = await this.guardCompute(msg, `${bar.symbol}:30m:${bar.ts}`, () => this.flow.step(bar, state, superseded));
    if (context.degraded.includes('feedback')) {
      // Rare and costly: the bar waited the whole PIPELINE_CONTEXT_WAIT_MS, and so did the tactical bar waiting for this context.
      this.log.warn({ symbol: bar.symbol, ts: bar.ts }, 'feedback wait ran out: context computed without the lagged feedback window');
    }
    const emission: Emission = {
      exchange: EXCHANGE_INTERNAL,
      routingKey: routingKeys.reply(replyTo),
      body: context,
      messageId: messageIds.context(bar.symbol, context.bar_close_ts),
      mandatory: true,
    };
    if (durable === null) return { state: next, emissions: [emission] };
    return { state: next, emissions: [], confirmations: [this.publishBeforeDurable(emission, durable)] };
  }

  /**
   * The context leaves now; the pattern store's write of the same bar goes on meanwhile, and the
   * commit waits for both. A failure of either is retried alone: a context already confirmed is
   * not sent again for a failed disk write.
   */
  private publishBeforeDurable(emission: Emission, durable: DurableWrite): Confirmation {
    let publish = this.publishEmission(emission);
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
