import { execFile } from 'node:child_process';
import { deflateRawSync } from 'node:zlib';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as amqp from 'amqplib';
import pino from 'pino';
import { DeadLetterHeadersSchema } from '../../schemas/dead-letter.schema';
import { EXPERIENCE_BATCH_CONTENT_TYPE } from '../../schemas/experience.schema';
import { encodeExperienceFrame, EXPERIENCE_FRAME_CONTENT_TYPE } from '../../schemas/experience-frame';
import { ModelUpdateSchema } from '../../schemas/model-update.schema';
import { BrokerConnection } from '../../src/broker/broker-connection';
import { Publisher } from '../../src/broker/publisher';
import { EXCHANGE_INTERNAL, QUEUE_DEAD_LETTERS, QUEUE_EXPERIENCE, routingKeys } from '../../src/broker/topology';
import { ModelUpdateSubscriber } from '../../src/consumers/model-update-subscriber';
import { TrainerConsumer } from '../../src/consumers/trainer-consumer';
import type { ExperienceTransition } from '../../src/flows/agent-stage';
import { TrainerFlow } from '../../src/flows/trainer-flow';
import { MappoTrainer } from '../../src/learning';
import { announcePromotion } from '../../src/broker/model-announcement';
import { createVhost, QueueCollector, waitFor, type TestVhost } from '../fixtures/broker';
import { experience } from '../fixtures/experience';
import { openModelRegistry } from '../../src/state/model-files';

const run = promisify(execFile);
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const BATCH = 64;

async function publish(url: string, messages: { routingKey: string; messageId: string; body: string }[]): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    for (const m of messages) {
      channel.publish(EXCHANGE_INTERNAL, m.routingKey, Buffer.from(m.body), { persistent: true, contentType: 'application/json', messageId: m.messageId });
    }
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** Ready and unacknowledged messages of a queue, as the broker counts them. */
async function depth(vhost: string, queue: string): Promise<{ ready: number; unacked: number }> {
  const { stdout } = await run('rabbitmqctl', ['list_queues', '-q', '-p', vhost, '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged']);
  const row = stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[0] === queue);
  if (!row) throw new Error(`queue ${queue} not found`);
  return { ready: Number(row[1]), unacked: Number(row[2]) };
}

describe('online training', () => {
  let vhost: TestVhost;
  let dir: string;
  let connection: BrokerConnection;
  let publisher: Publisher;
  let consumer: TrainerConsumer;
  let subscriber: ModelUpdateSubscriber;
  let dlq: QueueCollector;

  beforeEach(async () => {
    vhost = await createVhost('training');
    dir = await mkdtemp(join(tmpdir(), 'training-'));
  });

  afterEach(async () => {
    await consumer?.stop(2000);
    await subscriber?.stop();
    await publisher?.stop(2000);
    await connection?.stop();
    await dlq?.stop();
    await vhost.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  /** Connection, publisher, trainer consumer and model-update subscriber, as the trainer worker wires them. */
  async function wire(flow: TrainerFlow, onUpdate: (version: string) => void): Promise<void> {
    connection = new BrokerConnection({ url: vhost.url, connectionName: 'test-trainer', queueType: 'quorum', maxAttempts: 3, log });
    publisher = new Publisher(connection, { maxInFlight: 100, publishTimeoutMs: 5000, log });
    consumer = new TrainerConsumer(connection, publisher, flow, {
      queue: QUEUE_EXPERIENCE,
      stage: 'trainer',
      prefetchCount: flow.batchSize,
      maxAttempts: 3,
      retryDelayMs: 100,
      log,
    });
    subscriber = new ModelUpdateSubscriber(connection, { onUpdate, log });
    await connection.start();
  }

  /**
   * The candidate's held-out run made clearly better than its parent's, so that the promotion (and
   * announcement) path runs: a 64-transition batch holds out too few bars to earn it for real.
   */
  function promoteCandidates(flow: TrainerFlow): void {
    const real = flow.run.bind(flow);
    jest.spyOn(flow, 'run').mockImplementation((policy, w) => {
      const out = real(policy, w);
      const noise = out.run.returns.map((_, i) => (i % 2 ? 0.001 : -0.001));
      const returns = policy.version === 'candidate' ? noise.map((r) => r + 0.003) : noise;
      return { ...out, run: { returns, turnover: 2, dominantActionShare: 0.5 } };
    });
  }

  const message = (t: ExperienceTransition) => ({ routingKey: routingKeys.experience(t.symbol), messageId: `${t.symbol}:experience:${t.ts}`, body: JSON.stringify(t) });

  it('dead-letters invalid experience, trains a batch, acks it only after the version is saved and announces the promotion', async () => {
    const registry = openModelRegistry(dir);
    const flow = await TrainerFlow.create({ registry, batchSize: BATCH, seed: 1, promotion: { minHeldOutBars: 0 }, log });
    promoteCandidates(flow);
    let unackedWhenTrained: number | null = null;
    const train = flow.train.bind(flow);
    jest.spyOn(flow, 'train').mockImplementation(async (batch) => {
      const out = await train(batch);
      unackedWhenTrained = consumer.inFlight;
      return out;
    });
    const updates: string[] = [];
    await wire(flow, (v) => void updates.push(v));
    dlq = new QueueCollector(vhost.url, QUEUE_DEAD_LETTERS);
    await dlq.start();
    // A second listener on pipeline.models sees the announcement's body.
    const announcements: string[] = [];
    const watch = await amqp.connect(vhost.url);
    try {
      const ch = await watch.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, EXCHANGE_INTERNAL, routingKeys.model());
      await ch.consume(queue, (m) => m && announcements.push(m.content.toString()), { noAck: true });

      const all = experience(['AAA', 'BBB'], BATCH / 2, 11);
      expect(all).toHaveLength(BATCH);
      const bad = { ...all[0]!, ts: all[0]!.ts + 1, observations: { ...all[0]!.observations, tactical: [1, 2, 3] } };
      await publish(vhost.url, [...all.slice(0, BATCH - 1).map(message), message(bad)]);

      await waitFor(() => dlq.messages.length === 1 && consumer.buffered === BATCH - 1, 15_000, 'the bad message dead-lettered and 63 buffered');
      const headers = DeadLetterHeadersSchema.parse(dlq.messages[0]!.headers);
      expect(headers['x-rejected-by']).toBe('trainer');
      expect(headers['x-rejection-reason']).toMatch(/observations\.tactical must have exactly 23 values/);
      // Buffered, not acknowledged: nothing trained yet. (The broker's queue statistics lag by up to
      // its collection interval, 5 s by default, hence the wait.)
      await waitFor(async () => JSON.stringify(await depth(vhost.name, QUEUE_EXPERIENCE)) === JSON.stringify({ ready: 0, unacked: BATCH - 1 }), 12_000, '63 unacked on the broker');
      expect(await registry.list()).toEqual([]);
      expect(consumer.inFlight).toBe(BATCH - 1);

      await publish(vhost.url, [message(all[BATCH - 1]!)]);
      await waitFor(async () => (await registry.latestPromoted()) !== null && updates.length === 1, 30_000, 'a promoted version announced');
      const version = (await registry.list())[0]!;
      expect(await registry.latestPromoted()).toBe(version);
      expect(updates).toEqual([version]);
      expect((await registry.meta(version)).parent).toBeNull();
      // The batch was still unacknowledged when training had saved the version.
      expect(unackedWhenTrained).toBe(BATCH);
      await waitFor(() => consumer.inFlight === 0, 10_000, 'the batch acked');
      await waitFor(async () => JSON.stringify(await depth(vhost.name, QUEUE_EXPERIENCE)) === JSON.stringify({ ready: 0, unacked: 0 }), 12_000, 'the queue empty on the broker');
      await waitFor(() => announcements.length === 1, 5000, 'the announcement');
      const update = ModelUpdateSchema.parse(JSON.parse(announcements[0]!));
      expect(update).toMatchObject({ v: 1, version, parent: null });
      expect(update.metrics?.window).toMatch(/^AAA:\d+-\d+,BBB:\d+-\d+$/);
      expect(dlq.messages).toHaveLength(1);
    } finally {
      await watch.close();
    }
  }, 40_000);

  it('trains from experience frames as the tactical workers send them and from JSON batches, acking each message once its transitions are trained', async () => {
    const registry = openModelRegistry(dir);
    const flow = await TrainerFlow.create({ registry, batchSize: BATCH, seed: 1, promotion: { minHeldOutBars: 0 }, log });
    promoteCandidates(flow);
    const trained: ExperienceTransition[][] = [];
    const train = flow.train.bind(flow);
    jest.spyOn(flow, 'train').mockImplementation(async (batch) => {
      trained.push([...batch]);
      return train(batch);
    });
    await wire(flow, () => undefined);
    dlq = new QueueCollector(vhost.url, QUEUE_DEAD_LETTERS);
    await dlq.start();
    const all = experience(['EEE', 'FFF'], BATCH / 2, 13);
    const connection = await amqp.connect(vhost.url);
    try {
      const channel = await connection.createConfirmChannel();
      const send = (transitions: ExperienceTransition[], id: string, format: 'frame' | 'json' | 'deflate') => {
        const json = Buffer.from(JSON.stringify({ v: 1, transitions }));
        const frame = format === 'frame';
        channel.publish(EXCHANGE_INTERNAL, routingKeys.experience('batch'), frame ? encodeExperienceFrame(transitions) : format === 'deflate' ? deflateRawSync(json) : json, {
          persistent: true,
          contentType: frame ? EXPERIENCE_FRAME_CONTENT_TYPE : EXPERIENCE_BATCH_CONTENT_TYPE,
          ...(format === 'deflate' ? { contentEncoding: 'deflate' } : {}),
          messageId: id,
        });
      };
      // A frame as the tactical workers send it, a frame of a version this trainer does not read
      // (dead-lettered with the reason), and a compressed JSON batch as older workers send it:
      // 40 + 24 transitions fill one training batch; then a plain JSON batch repeats 8 already
      // trained (a re-send after a crash) and is acked without training them again.
      send(all.slice(0, 40), 'b1', 'frame');
      const future = encodeExperienceFrame(all.slice(40, 41));
      future[3] = 9;
      channel.publish(EXCHANGE_INTERNAL, routingKeys.experience('batch'), future, { persistent: true, contentType: EXPERIENCE_FRAME_CONTENT_TYPE, messageId: 'b-future' });
      send(all.slice(40, BATCH), 'b2', 'deflate');
      await channel.waitForConfirms();
      await waitFor(async () => (await registry.list()).length === 1 && consumer.inFlight === 0, 30_000, 'one version trained from two batch messages');
      send(all.slice(BATCH - 8, BATCH), 'b3', 'json');
      await channel.waitForConfirms();
      await waitFor(async () => JSON.stringify(await depth(vhost.name, QUEUE_EXPERIENCE)) === JSON.stringify({ ready: 0, unacked: 0 }), 12_000, 'every batch acked');
      expect(trained.map((b) => b.length)).toEqual([BATCH]);
      // What the frame carried is what the JSON path gives (global state rebuilt from the observations).
      expect(trained[0]!.slice(0, 40)).toStrictEqual(JSON.parse(JSON.stringify(all.slice(0, 40))));
      expect(consumer.buffered).toBe(0);
      await waitFor(() => dlq.messages.length === 1, 10_000, 'the unknown frame version dead-lettered');
      const headers = DeadLetterHeadersSchema.parse(dlq.messages[0]!.headers);
      expect(headers['x-rejection-reason']).toMatch(/experience frame version 9 is not supported: this trainer reads version 1/);
    } finally {
      await connection.close();
    }
  }, 40_000);

  it('announces a promotion made from the CLI to running workers', async () => {
    const registry = openModelRegistry(dir);
    const saver = new MappoTrainer({ seed: 3 });
    const v1 = await registry.save(saver, { parent: null, metrics: { sharpe: 1.5, window: 'AAA:1-2' } });
    saver.dispose();
    const flow = await TrainerFlow.create({ registry, batchSize: BATCH, seed: 1, log });
    const updates: string[] = [];
    await wire(flow, (v) => void updates.push(v));
    await waitFor(() => subscriber.subscribed, 10_000, 'the worker subscribed');
    await registry.promote(v1);
    await announcePromotion(vhost.url, registry, v1);
    await waitFor(() => updates.length === 1, 10_000, 'the worker told of the CLI promotion');
    expect(updates).toEqual([v1]);
  }, 30_000);

  it('returns a partial batch to the queue at once when the trainer stops', async () => {
    const registry = openModelRegistry(dir);
    const flow = await TrainerFlow.create({ registry, batchSize: BATCH, seed: 1, log });
    await wire(flow, () => undefined);
    await publish(vhost.url, experience(['CCC'], 10, 11).map(message));
    await waitFor(() => consumer.buffered === 10, 10_000, '10 buffered');
    const started = Date.now();
    await consumer.stop(10_000);
    expect(Date.now() - started).toBeLessThan(2000); // not held until closeTimeoutMs
    await waitFor(async () => (await depth(vhost.name, QUEUE_EXPERIENCE)).ready === 10, 12_000, '10 ready again on the broker');
    expect(await registry.list()).toEqual([]);
  }, 30_000);
});
