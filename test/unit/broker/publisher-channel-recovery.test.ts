import { EventEmitter } from 'node:events';
import type { ChannelModel } from 'amqplib';
import pino from 'pino';
import type { BrokerConnection } from '../../../src/broker/broker-connection';
import { Publisher } from '../../../src/broker/publisher';
import { PublishError } from '../../../src/errors';
import { createGuard } from '../../../src/flows/breakers';
import { waitFor } from '../../fixtures/broker';

/**
 * How the publisher's confirm channel recovers while its connection stays up. The fault that made
 * the node-loss test fail on a quiet machine (RabbitMQ 3.10.8, reproduced by hand): a confirm channel
 * that first publishes to a quorum queue just after the node of the queue's leader died is nacked on
 * every later publish to that queue, for good, while a channel opened a moment later works. The
 * publisher kept that channel (it only opened a new one on a reconnect), so its breaker opened and
 * never closed again.
 */

type Mode = 'ack' | 'nack';

/** A confirm channel that acks or nacks every publish, in amqplib's order (callback, then the event). */
class FakeConfirmChannel extends EventEmitter {
  closed = false;
  published = 0;
  private readonly pending = new Set<(err: Error | null) => void>();

  constructor(readonly mode: Mode) {
    super();
  }

  publish(_exchange: string, _routingKey: string, _content: Buffer, _options: unknown, cb: (err: Error | null) => void): boolean {
    if (this.closed) throw new Error('Channel closed');
    this.published++;
    this.pending.add(cb);
    setImmediate(() => {
      if (!this.pending.delete(cb)) return;
      if (this.mode === 'ack') {
        cb(null);
      } else {
        cb(new Error('message nacked'));
        this.emit('nack', {});
      }
    });
    return true;
  }

  /** The broker closes the channel (a channel error): amqplib emits 'error', then 'close'. */
  brokerClose(): void {
    this.emit('error', new Error('Channel closed by server: 541 (INTERNAL-ERROR)'));
    void this.close();
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const cb of this.pending) cb(new Error('channel closed'));
      this.pending.clear();
      this.emit('close');
    }
    return Promise.resolve();
  }
}

/** A connection whose confirm channels behave as listed (the last mode repeats). */
function fakeModel(modes: Mode[]): { model: ChannelModel; channels: FakeConfirmChannel[] } {
  const channels: FakeConfirmChannel[] = [];
  const model = {
    createConfirmChannel: () => {
      const channel = new FakeConfirmChannel(modes[Math.min(channels.length, modes.length - 1)]!);
      channels.push(channel);
      return Promise.resolve(channel);
    },
  } as unknown as ChannelModel;
  return { model, channels };
}

const log = pino({ level: 'silent' });
const connection = { attach: () => undefined, whenUnblocked: () => Promise.resolve() } as unknown as BrokerConnection;
const publishers: Publisher[] = [];

function newPublisher(guard?: ReturnType<typeof createGuard>): Publisher {
  const publisher = new Publisher(connection, { maxInFlight: 64, publishTimeoutMs: 2000, log, ...(guard !== undefined ? { guard } : {}) });
  publishers.push(publisher);
  return publisher;
}

const send = (publisher: Publisher, id: string): Promise<void> =>
  publisher.publish('pipeline.results', 'results.X', Buffer.from('{}'), { messageId: id });

afterEach(async () => {
  for (const p of publishers.splice(0)) await p.stop(10);
});

describe('Publisher: a confirm channel that stops working while the connection stays', () => {
  it('replaces a channel the broker nacks, so later publishes are confirmed on a fresh one', async () => {
    const publisher = newPublisher();
    const { model, channels } = fakeModel(['nack', 'ack']);
    await publisher.attach(model);

    await expect(send(publisher, 'a')).rejects.toThrow(PublishError);
    // The nacking channel is closed and a new one opened after a short pause.
    await waitFor(() => channels.length === 2, 2000, 'a second confirm channel');
    expect(channels[0]!.closed).toBe(true);
    await expect(send(publisher, 'b')).resolves.toBeUndefined();
    await expect(send(publisher, 'c')).resolves.toBeUndefined();
    expect(channels[1]!.published).toBe(2);
    expect(publisher.channelsOpenedCount).toBe(2);
  });

  it('opens a new channel when the broker closes the channel and the connection stays up', async () => {
    const publisher = newPublisher();
    const { model, channels } = fakeModel(['ack']);
    await publisher.attach(model);
    await send(publisher, 'a');

    channels[0]!.brokerClose();
    // Before the fix the publisher waited for a channel that nothing would open, until its timeout.
    await expect(send(publisher, 'b')).resolves.toBeUndefined();
    expect(channels).toHaveLength(2);
  });

  it('leaves a channel closed with its connection to the reconnect: no replacement, no warning', async () => {
    const lines: string[] = [];
    const captured = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const publisher = new Publisher(connection, { maxInFlight: 64, publishTimeoutMs: 2000, log: captured });
    publishers.push(publisher);
    const { model, channels } = fakeModel(['ack']);
    await publisher.attach(model);
    void channels[0]!.close(); // 'close' without 'error': the connection went away; 'disconnect' follows
    publisher.detach();
    await new Promise((r) => setTimeout(r, 300));
    expect(channels).toHaveLength(1);
    expect(lines.join('')).not.toContain('new confirm channel');
  });

  it('keeps trying with a growing pause while new channels still nack, and recovers when one works', async () => {
    const publisher = newPublisher();
    const { model, channels } = fakeModel(['nack', 'nack', 'nack', 'ack']);
    await publisher.attach(model);
    for (let i = 0; channels.length < 4 && i < 50; i++) {
      await send(publisher, `n${i}`).catch(() => undefined);
    }
    expect(channels).toHaveLength(4);
    await expect(send(publisher, 'ok')).resolves.toBeUndefined();
    expect(channels.slice(0, 3).every((c) => c.closed)).toBe(true);
  });

  it('opens no channel on a connection that is gone: the next connect attaches one', async () => {
    const publisher = newPublisher();
    const first = fakeModel(['nack']);
    await publisher.attach(first.model);
    await expect(send(publisher, 'a')).rejects.toThrow(PublishError);
    publisher.detach(); // the connection is lost before the pause ends
    await new Promise((r) => setTimeout(r, 300));
    expect(first.channels).toHaveLength(1);

    const second = fakeModel(['ack']);
    await publisher.attach(second.model);
    await expect(send(publisher, 'b')).resolves.toBeUndefined();
    expect(first.channels).toHaveLength(1);
  });

  it('lets an open publish breaker close again once a trial publish goes out on the new channel', async () => {
    const guard = createGuard({ stage: 'publish', volumeThreshold: 2, resetTimeoutMs: 300, log });
    const publisher = newPublisher(guard);
    const { model } = fakeModel(['nack', 'ack']);
    await publisher.attach(model);
    // Two publishes in flight on the nacking channel: both fail, which opens the breaker.
    await Promise.allSettled([send(publisher, 'a'), send(publisher, 'b')]);
    await expect(send(publisher, 'c')).rejects.toThrow(/circuit breaker is open/);

    // The symptom of the failed node-loss runs: the breaker half-opened every few seconds and its
    // trial publish failed again on the same nacking channel. Now the trial goes out on a new one.
    await waitFor(
      async () => {
        try {
          await send(publisher, `trial-${Date.now()}`);
          return true;
        } catch {
          return false;
        }
      },
      5000,
      'a publish confirmed through the breaker',
    );
  });
});
