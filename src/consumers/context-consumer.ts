import type { ConsumeMessage } from 'amqplib';
import { StrategicContextSchema } from '../../schemas/strategic-context.schema';
import { BaseConsumer, type BaseConsumerOptions, type HandleResult } from '../broker/base-consumer';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import type { ContextBufferFlow } from '../flows/context-buffer-flow';
import { parseMessage } from './parse-message';

/** Feeds strategic contexts into the tactical worker's context buffer (stored in Redis, then acked). */
export class ContextConsumer extends BaseConsumer {
  constructor(
    connection: BrokerConnection,
    publisher: Publisher,
    private readonly buffer: ContextBufferFlow,
    options: BaseConsumerOptions,
  ) {
    super(connection, publisher, options);
  }

  protected handle(msg: ConsumeMessage): Promise<HandleResult> {
    const context = parseMessage(msg.content, StrategicContextSchema);
    return Promise.resolve({ kind: 'commit', committed: this.buffer.put(context) });
  }

  protected reset(): void {}
}
