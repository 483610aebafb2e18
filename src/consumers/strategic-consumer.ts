import { Bar30mSchema, type Bar30m } from '../../schemas/bar.schema';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import { EXCHANGE_RESULTS, routingKeys } from '../broker/topology';
import type { StrategicFlow, StrategicState } from '../flows/strategic-flow';
import type { SymbolStateStore } from '../state/symbol-state-store';
import { BarStageConsumer, type BarStageConsumerOptions, type StageOutput } from './bar-stage-consumer';

/** Consumes 30m bars and publishes one strategic context per bar to `context.<symbol>`. */
export class StrategicConsumer extends BarStageConsumer<StrategicState, Bar30m> {
  constructor(
    connection: BrokerConnection,
    publisher: Publisher,
    store: SymbolStateStore<StrategicState>,
    private readonly flow: StrategicFlow,
    options: BarStageConsumerOptions,
  ) {
    super(connection, publisher, store, Bar30mSchema as never, options);
  }

  protected override async process(bar: Bar30m, state: StrategicState | null): Promise<StageOutput<StrategicState>> {
    const { context, state: next } = await this.flow.step(bar, state);
    return {
      state: next,
      emissions: [
        {
          exchange: EXCHANGE_RESULTS,
          routingKey: routingKeys.context(bar.symbol),
          body: context,
          messageId: `${bar.symbol}:context:${context.bar_close_ts}`,
          mandatory: true,
        },
      ],
    };
  }
}
