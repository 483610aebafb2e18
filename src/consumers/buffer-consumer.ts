import type { ConsumeMessage } from 'amqplib';
import type { ZodType } from 'zod';
import { BaseConsumer, type BaseConsumerOptions, type HandleResult } from '../broker/base-consumer';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import type { TimeKeyedBufferFlow } from '../flows/context-buffer-flow';
import { parseMessage } from './parse-message';

/**
 * Feeds a flow buffer from its queue: strategic contexts into the tactical worker's context buffer,
 * tactical feedback into the strategic worker's feedback buffer. Each item is stored in Redis
 * before its message is acked; bad messages are dead-lettered.
 */
export class BufferConsumer<T> extends BaseConsumer {
  constructor(
    connection: BrokerConnection,
    publisher: Publisher,
    private readonly buffer: TimeKeyedBufferFlow<T>,
    private readonly schema: ZodType<T>,
    options: BaseConsumerOptions,
  ) {
    super(connection, publisher, options);
  }

  protected handle(msg: ConsumeMessage): Promise<HandleResult> {
    const item = parseMessage(msg.content, this.schema);
    return Promise.resolve({ kind: 'commit', committed: this.buffer.put(item) });
  }

  protected reset(): void {}
}
