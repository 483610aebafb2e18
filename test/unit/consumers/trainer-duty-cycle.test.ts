import type { ConsumeMessage } from 'amqplib';
import pino from 'pino';
import { EXPERIENCE_BATCH_CONTENT_TYPE } from '../../../schemas/experience.schema';
import type { HandleResult } from '../../../src/broker/base-consumer';
import type { Publisher } from '../../../src/broker/publisher';
import { TrainerConsumer } from '../../../src/consumers/trainer-consumer';
import type { TrainerFlow, TrainOutcome } from '../../../src/flows/trainer-flow';
import { experience } from '../../fixtures/experience';
import { detachedConnection } from '../../fixtures/consumers';

/**
 * Training on a 2-core machine took a whole core whenever one was idle (nice 19 does not bound
 * that), slowing the live path by ~23%. With a CPU share, after a batch that took C ms of CPU the
 * trainer rests C × (1 / share − 1) ms before the next batch, and acks the batch before resting.
 */
describe('TrainerConsumer duty cycle', () => {
  jest.setTimeout(60_000);
  const BATCH = 20;
  const PER_MESSAGE = 10;
  const BUSY_MS = 60;

  /** CPU burnt in the event loop between two batches (as parsing the next messages does). */
  const burn = (ms: number): void => {
    const cpu0 = process.cpuUsage();
    for (;;) {
      const d = process.cpuUsage(cpu0);
      if ((d.user + d.system) / 1000 >= ms) return;
    }
  };

  async function run(cpuShare: number, batches = 2, betweenMs = 0): Promise<{ gapMs: number; lastGapMs: number; ackedBeforeSecond: boolean }> {
    const transitions = experience(['AAA'], 10 * batches * 2, 9);
    const starts: number[] = [];
    const ends: number[] = [];
    const flow = {
      batchSize: BATCH,
      train: (): Promise<TrainOutcome> => {
        starts.push(performance.now());
        const cpu0 = process.cpuUsage();
        const cpuMs = (): number => {
          const d = process.cpuUsage(cpu0);
          return (d.user + d.system) / 1000;
        };
        while (cpuMs() < BUSY_MS); // BUSY_MS of CPU, as training takes
        ends.push(performance.now());
        if (betweenMs > 0) setTimeout(() => burn(betweenMs), 5);
        return Promise.resolve({ promoted: false, version: `v${starts.length}` } as TrainOutcome);
      },
    } as unknown as TrainerFlow;
    const consumer = new TrainerConsumer(
      detachedConnection(),
      {} as Publisher,
      flow,
      {
        queue: 'q',
        stage: 'trainer',
        prefetchCount: 1000,
        maxAttempts: 3,
        retryDelayMs: 10,
        log: pino({ level: 'silent' }),
        cpuShare,
      },
    );
    const handle = (msg: ConsumeMessage): Promise<HandleResult> =>
      (consumer as unknown as { handle(m: ConsumeMessage): Promise<HandleResult> }).handle(msg);
    const message = (i: number): ConsumeMessage =>
      ({
        content: Buffer.from(
          JSON.stringify({
            v: 1,
            transitions: transitions.slice(
              i * PER_MESSAGE,
              (i + 1) * PER_MESSAGE,
            ),
          }),
        ),
        properties: { contentType: EXPERIENCE_BATCH_CONTENT_TYPE, messageId: `m${i}` },
        fields: { redelivered: false, routingKey: 'experience.batch', deliveryTag: i + 1 },
      }) as unknown as ConsumeMessage;
    const results: HandleResult[] = [];
    for (let i = 0; i < 2 * batches; i++) results.push(await handle(message(i)));
    const first = results[1]!;
    let acked = false;
    if (first.kind === 'commit') void first.committed.then(() => (acked = true));
    await new Promise((r) => setTimeout(r, 5));
    const ackedBeforeSecond = acked && starts.length === 1;
    const last = results[2 * batches - 1]!;
    if (last.kind === 'commit') await last.committed;
    return { gapMs: starts[1]! - ends[0]!, lastGapMs: starts[batches - 1]! - ends[batches - 2]!, ackedBeforeSecond };
  }

  it('rests three times the batch CPU at a 25% share, acking the batch first', async () => {
    const { gapMs, ackedBeforeSecond } = await run(0.25);
    expect(gapMs).toBeGreaterThanOrEqual(3 * BUSY_MS * 0.95);
    expect(ackedBeforeSecond).toBe(true);
  });

  it('counts the CPU spent between batches (parsing experience) in the next rest', async () => {
    // Batch 2 took BUSY_MS, and BUSY_MS more went by in the event loop after batch 1: rest 3 × both.
    const { lastGapMs } = await run(0.25, 3, BUSY_MS);
    expect(lastGapMs).toBeGreaterThanOrEqual(3 * 2 * BUSY_MS * 0.95);
  });

  it('does not rest at a 100% share', async () => {
    const { gapMs } = await run(1);
    expect(gapMs).toBeLessThan(BUSY_MS);
    // (the 25% case rests >= 171 ms after the same batch)
  });
});
