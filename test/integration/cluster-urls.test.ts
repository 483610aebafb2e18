/**
 * Several broker addresses in AMQP_URL, on the local broker alone: a node that is down (a port where
 * nothing listens) is skipped by the start-up check, by the CLI's connection and by a worker's
 * connection, which moves on to the next address; a vhost the broker refuses still fails at once.
 * The three-node cluster itself is tested by `npm run test:cluster`.
 */
import { BrokerConnection } from '../../src/broker/broker-connection';
import { brokerPreflight } from '../../src/broker/preflight';
import { QUEUE_RESULTS } from '../../src/broker/topology';
import { StartupError } from '../../src/errors';
import { componentLogger } from '../../src/observability/logger';
import { createVhost, type TestVhost } from '../fixtures/broker';
import { freePort } from '../fixtures/processes';

jest.setTimeout(60_000);

let vhost: TestVhost;
let deadUrl: string;

beforeAll(async () => {
  vhost = await createVhost('urls');
  const path = new URL(vhost.url).pathname;
  deadUrl = `amqp://guest:guest@127.0.0.1:${await freePort()}${path}`;
});

afterAll(async () => {
  await vhost.dispose();
});

describe('AMQP_URL with several addresses', () => {
  it('the start-up check passes through the first address that answers', async () => {
    await expect(brokerPreflight({ url: `${deadUrl},${vhost.url}`, waitMs: 0 })).resolves.toBeUndefined();
  });

  it('the start-up check still fails at once, naming AMQP_URL, on a vhost the broker refuses', async () => {
    const missing = vhost.url.replace(/\/[^/]*$/, '/no-such-vhost-urls');
    const started = Date.now();
    const err = await brokerPreflight({ url: `${deadUrl.replace(/\/[^/]*$/, '/no-such-vhost-urls')},${missing}`, waitMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(/^AMQP_URL: .*vhost "no-such-vhost-urls"/);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('a worker connection moves past a node that is down and declares the topology on the next', async () => {
    const connection = new BrokerConnection({
      url: `${deadUrl},${vhost.url}`,
      connectionName: 'test-cluster-urls',
      queueType: 'quorum',
      maxAttempts: 10,
      log: componentLogger('test'),
    });
    let fatal: Error | null = null;
    connection.onFatal = (err) => (fatal = err);
    const attached: string[] = [];
    connection.attach({
      attach: async (model) => {
        const channel = await model.createChannel();
        attached.push(String((await channel.checkQueue(QUEUE_RESULTS)).queue));
        await channel.close();
      },
      detach: () => undefined,
    });
    try {
      await connection.start();
      const deadline = Date.now() + 20_000;
      while (attached.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(attached).toEqual([QUEUE_RESULTS]);
      expect(fatal).toBeNull();
    } finally {
      await connection.stop();
    }
  });
});
