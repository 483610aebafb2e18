import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { BaseConsumer, type HandleResult } from '../../../src/broker/base-consumer';
import type { Publisher } from '../../../src/broker/publisher';
import { detachedConnection, stageOptions } from '../../fixtures/consumers';

/** Each delivery is committed when the test says so. */
class ControlledConsumer extends BaseConsumer {
  readonly commits: (() => void)[] = [];

  protected handle(): Promise<HandleResult> {
    const committed = new Promise<void>((resolve) => this.commits.push(resolve));
    return Promise.resolve({ kind: 'commit', committed });
  }

  protected reset(): void {}
}

/** Records, in order, what the consumer asks of its channel. */
function recordingModel(calls: string[], barrierAnswers = true): { model: ChannelModel; deliver: (tag: number) => void } {
  let onMessage: ((msg: ConsumeMessage | null) => void) | null = null;
  let tags = 0;
  const channel = {
    on: () => undefined,
    prefetch: (n: number) => {
      calls.push(`prefetch ${n}`);
      return Promise.resolve();
    },
    consume: (queue: string, cb: (msg: ConsumeMessage | null) => void, options?: { arguments?: Record<string, unknown> }) => {
      const credit = options?.arguments?.['x-credit'];
      calls.push(credit === undefined ? `consume ${queue}` : `consume ${queue} x-credit ${JSON.stringify(credit)}`);
      if (onMessage === null) onMessage = cb;
      else if (!barrierAnswers) return new Promise<never>(() => undefined);
      return Promise.resolve({ consumerTag: `tag${++tags}` });
    },
    cancel: (tag: string) => {
      calls.push(`cancel ${tag}`);
      return Promise.resolve();
    },
    ack: (msg: ConsumeMessage) => void calls.push(`ack ${msg.fields.deliveryTag}`),
    close: () => {
      calls.push('close');
      return Promise.resolve();
    },
  };
  const model = { createChannel: () => Promise.resolve(channel) } as unknown as ChannelModel;
  const deliver = (tag: number): void =>
    onMessage!({ content: Buffer.from('{}'), properties: {}, fields: { deliveryTag: tag, redelivered: false } } as unknown as ConsumeMessage);
  return { model, deliver };
}

/**
 * RabbitMQ 3.10 quorum queues: acks sent while 32 earlier settlements of the channel are not yet
 * applied wait inside the channel and are dropped if it closes first, so the processed messages
 * come back. The graceful stop must put a synchronous command through the queue after its last
 * acks (a zero-credit consumer, registered and cancelled) and close the channel only after it.
 */
function consumerOn(model: ChannelModel): Promise<ControlledConsumer> {
  const consumer = new ControlledConsumer(detachedConnection(), {} as Publisher, stageOptions());
  return consumer.attach(model).then(() => consumer);
}

describe('BaseConsumer.stop', () => {
  it('registers a zero-credit consumer after the last ack and before closing the channel', async () => {
    const calls: string[] = [];
    const { model, deliver } = recordingModel(calls);
    const consumer = await consumerOn(model);
    for (const tag of [1, 2, 3]) deliver(tag);
    await new Promise((r) => setImmediate(r));
    expect(consumer.inFlight).toBe(3);

    const stopped = consumer.stop(5000);
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).not.toContain('close'); // waits for the messages in flight
    for (const commit of consumer.commits) commit();
    await stopped;

    expect(calls).toEqual([
      'prefetch 10',
      'consume q',
      'cancel tag1',
      'ack 1',
      'ack 2',
      'ack 3',
      'prefetch 1',
      'consume q x-credit {"credit":{"!":"long","value":0},"drain":false}',
      'cancel tag2',
      'close',
    ]);
  });

  it('closes the channel anyway when the broker does not answer the barrier (bounded)', async () => {
    const calls: string[] = [];
    const { model, deliver } = recordingModel(calls, false);
    const consumer = await consumerOn(model);
    deliver(1);
    await new Promise((r) => setImmediate(r));
    const stopped = consumer.stop(200);
    consumer.commits[0]!();
    await stopped; // without the bound this never resolves and the test times out
    expect(calls.slice(-4)).toEqual(['ack 1', 'prefetch 1', 'consume q x-credit {"credit":{"!":"long","value":0},"drain":false}', 'close']);
  });
});
