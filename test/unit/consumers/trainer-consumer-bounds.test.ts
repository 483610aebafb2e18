import type { ConsumeMessage } from 'amqplib';
import pino from 'pino';
import { EXPERIENCE_BATCH_CONTENT_TYPE } from '../../../schemas/experience.schema';
import type { HandleResult } from '../../../src/broker/base-consumer';
import type { Publisher } from '../../../src/broker/publisher';
import { TrainerConsumer } from '../../../src/consumers/trainer-consumer';
import type { ExperienceTransition } from '../../../src/flows/agent-stage';
import type { TrainerFlow, TrainOutcome } from '../../../src/flows/trainer-flow';
import { experience } from '../../fixtures/experience';
import { detachedConnection } from '../../fixtures/consumers';

/**
 * The trainer's prefetch window counts messages, each up to 256 transitions: when training is
 * slower than the tactical workers, a consumer that parses every delivery at once queues batch
 * after batch in memory (the soak of issue 12 part 4: trainer RSS grew with the backlog). It must
 * hold at most two batches of parsed transitions, and take the rest in delivery order later.
 */
describe('TrainerConsumer holds at most two batches of parsed transitions', () => {
  const BATCH = 20;
  const PER_MESSAGE = 10;

  it('leaves deliveries unparsed while two batches are pending, then takes them in order', async () => {
    const transitions = experience(['AAA'], 100, 3);
    const trainCalls: ExperienceTransition[][] = [];
    const finishers: (() => void)[] = [];
    const flow = {
      batchSize: BATCH,
      train: (batch: readonly ExperienceTransition[]): Promise<TrainOutcome> => {
        trainCalls.push([...batch]);
        return new Promise<TrainOutcome>((resolve) => finishers.push(() => resolve({ promoted: false, version: `v${trainCalls.length}` } as TrainOutcome)));
      },
    } as unknown as TrainerFlow;
    const connection = detachedConnection();
    const consumer = new TrainerConsumer(connection, {} as Publisher, flow, {
      queue: 'q',
      stage: 'trainer',
      prefetchCount: 1000,
      maxAttempts: 3,
      retryDelayMs: 10,
      log: pino({ level: 'silent' }),
    });
    const handle = (msg: ConsumeMessage): Promise<HandleResult> => (consumer as unknown as { handle(m: ConsumeMessage): Promise<HandleResult> }).handle(msg);
    const message = (i: number): ConsumeMessage =>
      ({
        content: Buffer.from(JSON.stringify({ v: 1, transitions: transitions.slice(i * PER_MESSAGE, (i + 1) * PER_MESSAGE) })),
        properties: { contentType: EXPERIENCE_BATCH_CONTENT_TYPE, messageId: `m${i}` },
        fields: { redelivered: false, routingKey: 'experience.batch', deliveryTag: i + 1 },
      }) as unknown as ConsumeMessage;

    const results: Promise<HandleResult>[] = [];
    const parsedHeld = (): number => consumer.buffered + consumer.pendingBatchCount * BATCH;
    let maxHeld = 0;
    for (let i = 0; i < 10; i++) {
      results.push(handle(message(i)));
      await new Promise((r) => setImmediate(r));
      maxHeld = Math.max(maxHeld, parsedHeld());
    }
    // Messages 0-3 filled two batches (one training, one waiting); 4-9 are held unparsed.
    expect(consumer.pendingBatchCount).toBe(2);
    expect(consumer.buffered).toBe(0);
    expect(consumer.waitingMessages).toBe(6);
    expect(trainCalls).toHaveLength(1);

    // Each finished batch lets the next messages in, in delivery order, never more than two batches.
    while (finishers.length > 0) {
      finishers.shift()!();
      for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));
      maxHeld = Math.max(maxHeld, parsedHeld());
      expect(consumer.pendingBatchCount).toBeLessThanOrEqual(2);
    }
    expect(maxHeld).toBeLessThanOrEqual(2 * BATCH + PER_MESSAGE);
    expect(consumer.waitingMessages).toBe(0);
    expect(trainCalls.map((b) => b.length)).toEqual([20, 20, 20, 20, 20]);
    expect(trainCalls.flat().map((t) => t.ts)).toEqual(transitions.map((t) => t.ts));
    const settled = await Promise.all(results.map((p) => p.then((r) => (r.kind === 'commit' ? r.committed.then(() => 'acked') : r.kind))));
    expect(settled).toEqual(new Array(10).fill('acked'));
  });
});
