import type { ConsumeMessage } from 'amqplib';
import { Bar5mSchema, type Bar } from '../../schemas/bar.schema';
import { EXCHANGE_RESULTS, routingKeys } from '../broker/topology';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import type { ContextBufferFlow } from '../flows/context-buffer-flow';
import type { TacticalFlow, TacticalState } from '../flows/tactical-flow';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import type { SymbolStateStore } from '../state/symbol-state-store';
import { BarStageConsumer, type BarStageConsumerOptions, type Emission, type StageOutput } from './bar-stage-consumer';

/**
 * Consumes 5m bars and publishes one integrated result per accepted bar to `results.<symbol>`,
 * after waiting (bounded) for the strategic context the bar is due.
 */
export class TacticalConsumer extends BarStageConsumer<TacticalState, Bar> {
  private readonly publishExperience: boolean;

  constructor(
    connection: BrokerConnection,
    publisher: Publisher,
    store: SymbolStateStore<TacticalState>,
    private readonly flow: TacticalFlow,
    private readonly contexts: ContextBufferFlow,
    options: BarStageConsumerOptions & { publishExperience: boolean },
  ) {
    super(connection, publisher, store, Bar5mSchema as never, options);
    this.publishExperience = options.publishExperience;
  }

  protected override async process(
    bar: Bar,
    state: TacticalState | null,
    _msg: ConsumeMessage,
    receivedAt: number,
  ): Promise<StageOutput<TacticalState>> {
    const required = this.flow.requiredContext(bar, state);
    const lookup = await this.contexts.lookup(bar.symbol, required);
    const { result, state: next, transition, feedback } = await this.flow.step(bar, state, required, lookup);
    result.latency_ms = Math.round((performance.now() - receivedAt) * 1000) / 1000;
    pipelineEvents.emit(PipelineEvent.ResultPublished, {
      stage: 'tactical',
      latencyMs: result.latency_ms,
      stale: lookup.stale,
    });
    const emissions: Emission[] = [
      {
        exchange: EXCHANGE_RESULTS,
        routingKey: routingKeys.result(bar.symbol),
        body: result,
        messageId: `${bar.symbol}:5m:${bar.ts}`,
        mandatory: true,
      },
    ];
    for (const f of feedback) {
      emissions.push({
        exchange: EXCHANGE_RESULTS,
        routingKey: routingKeys.feedback(f.symbol),
        body: f,
        messageId: `${f.symbol}:feedback:${f.window_close_ts}`,
        mandatory: true,
      });
    }
    if (this.publishExperience && transition !== null) {
      emissions.push({
        exchange: EXCHANGE_RESULTS,
        routingKey: routingKeys.experience(bar.symbol),
        body: transition,
        messageId: `${transition.symbol}:experience:${transition.ts}`,
      });
    }
    return { state: next, emissions };
  }
}
