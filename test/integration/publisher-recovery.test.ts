/**
 * The publisher's confirm channel on the real broker: publishes resume after the broker closes the
 * channel while the connection stays (a channel error), and after rabbitmqctl closes the connection.
 * The node-loss case that made the channel useless (nacks forever on RabbitMQ 3.10.8) needs a
 * cluster: test/cluster/node-loss.test.ts.
 */
import pino from 'pino';
import { BrokerConnection } from '../../src/broker/broker-connection';
import { Publisher } from '../../src/broker/publisher';
import { EXCHANGE_INTERNAL, EXCHANGE_RESULTS, routingKeys } from '../../src/broker/topology';
import { closeAllConnections, createVhost, QueueCollector, waitFor, type TestVhost } from '../fixtures/broker';

jest.setTimeout(60_000);

const log = pino({ level: 'silent' });
let vhost: TestVhost;
let connection: BrokerConnection;
let publisher: Publisher;

beforeEach(async () => {
  vhost = await createVhost('publisher');
  connection = new BrokerConnection({ url: vhost.url, connectionName: 'publisher-recovery', queueType: 'quorum', maxAttempts: 5, log });
  publisher = new Publisher(connection, { maxInFlight: 64, publishTimeoutMs: 5000, log });
  await connection.start();
  await waitFor(() => publisher.channelsOpenedCount === 1, 10_000, 'the publisher channel');
});

afterEach(async () => {
  await publisher.stop(1000);
  await connection.stop();
  await vhost.dispose();
});

const result = (id: string): Promise<void> =>
  publisher.publish(EXCHANGE_RESULTS, routingKeys.result('PUB'), Buffer.from('{}'), { messageId: id, mandatory: true });

describe('Publisher on the real broker', () => {
  it('publishes again after the broker closes its channel (a channel error) while the connection stays', async () => {
    await result('before');
    // Publishing to an exchange that does not exist makes the broker close the channel (404).
    await expect(publisher.publish('no-such-exchange', 'x', Buffer.from('{}'), { messageId: 'bad' })).rejects.toThrow();
    // Before the fix nothing opened a new channel: this waited for one until its timeout.
    await expect(result('after')).resolves.toBeUndefined();
    expect(publisher.channelsOpenedCount).toBe(2);
  });

  it('publishes again after rabbitmqctl close_all_connections on its vhost', async () => {
    const collector = new QueueCollector(vhost.url, 'integrated_results');
    await collector.start();
    try {
      await result('r1');
      await closeAllConnections(vhost.name);
      // Publishes wait for the reconnect (or fail and are tried again, as the workers do).
      await waitFor(
        async () => {
          try {
            await result('r2');
            return true;
          } catch {
            return false;
          }
        },
        30_000,
        'a confirmed publish after the connection was closed',
      );
      await waitFor(() => collector.messages.some((m) => m.messageId === 'r2'), 10_000, 'r2 in integrated_results');
      // The connection really was closed: r2 went out on the channel of the new connection.
      expect(publisher.channelsOpenedCount).toBe(2);
      expect(collector.messages.map((m) => m.messageId)).toEqual(expect.arrayContaining(['r1', 'r2']));
    } finally {
      await collector.stop();
    }
  });

  it('books a return to the publish it belongs to when publishes of one messageId are in flight together', async () => {
    // The same messageId twice on the wire at once (a re-send before the first confirm): the first
    // is unroutable (no queue bound to the key), the second is routable. The broker returns the
    // first just before confirming it. Tracked by messageId alone, the return was booked to the
    // second publish: the unroutable one resolved and the delivered one was refused.
    const unroutable = publisher.publish(EXCHANGE_INTERNAL, 'nowhere.bound', Buffer.from('{}'), { messageId: 'same', mandatory: true });
    const routable = result('same');
    const outcomes = await Promise.allSettled([unroutable, routable]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'fulfilled']);
    expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(/unroutable/);
  });
});
