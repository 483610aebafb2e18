import type { ConsumeMessage } from 'amqplib';
import pino from 'pino';
import { encodeExperienceFrame, EXPERIENCE_FRAME_CONTENT_TYPE } from '../../../schemas/experience-frame';
import type { HandleResult } from '../../../src/broker/base-consumer';
import type { Publisher } from '../../../src/broker/publisher';
import { TrainerConsumer } from '../../../src/consumers/trainer-consumer';
import { ValidationError } from '../../../src/errors';
import type { ExperienceTransition } from '../../../src/flows/agent-stage';
import type { TrainerFlow, TrainOutcome } from '../../../src/flows/trainer-flow';
import { detachedConnection } from '../../fixtures/consumers';
import { experience } from '../../fixtures/experience';

describe('TrainerConsumer takes experience frames', () => {
  const transitions = experience(['AAA'], 3, 4);

  function setup(): { handle: (m: ConsumeMessage) => Promise<HandleResult>; trained: ExperienceTransition[][] } {
    const trained: ExperienceTransition[][] = [];
    const flow = {
      batchSize: 2,
      train: (batch: readonly ExperienceTransition[]): Promise<TrainOutcome> => {
        trained.push([...batch]);
        return Promise.resolve({ promoted: false, version: `v${trained.length}` } as TrainOutcome);
      },
    } as unknown as TrainerFlow;
    const consumer = new TrainerConsumer(detachedConnection(), {} as Publisher, flow, {
      queue: 'q',
      stage: 'trainer',
      prefetchCount: 10,
      maxAttempts: 3,
      retryDelayMs: 10,
      log: pino({ level: 'silent' }),
    });
    const handle = (msg: ConsumeMessage): Promise<HandleResult> => (consumer as unknown as { handle(m: ConsumeMessage): Promise<HandleResult> }).handle(msg);
    return { handle, trained };
  }

  const frame = (ts: ExperienceTransition[], id: string, body = encodeExperienceFrame(ts)): ConsumeMessage =>
    ({
      content: body,
      properties: { contentType: EXPERIENCE_FRAME_CONTENT_TYPE, messageId: id },
      fields: { redelivered: false, routingKey: 'experience.batch', deliveryTag: 1 },
    }) as unknown as ConsumeMessage;

  it('knows a transition of a one-transition frame by its own id: a re-send in a larger frame is not trained twice', async () => {
    const { handle, trained } = setup();
    const [t0, t1] = transitions as [ExperienceTransition, ExperienceTransition];
    const first = await handle(frame([t0], `experience-batch:AAA:${t0.ts}:1`));
    const second = await handle(frame([t1], `experience-batch:AAA:${t1.ts}:1`));
    expect(first.kind).toBe('commit');
    expect(second.kind).toBe('commit');
    if (second.kind === 'commit') await second.committed;
    expect(trained.map((b) => b.map((t) => t.ts))).toEqual([[t0.ts, t1.ts]]);
    expect(trained[0]![0]!.global_state).toEqual([...t0.observations.tactical, ...t0.observations.risk, ...t0.observations.execution]);
    // Both re-sent together after a crash: acked at once, nothing trained again.
    expect((await handle(frame([t0, t1], `experience-batch:AAA:${t0.ts}:2`))).kind).toBe('done');
    expect(trained).toHaveLength(1);
  });

  it('rejects a frame of an unknown version as a validation error naming the versions (dead-lettered)', async () => {
    const { handle } = setup();
    const body = encodeExperienceFrame(transitions.slice(0, 1));
    body[3] = 2;
    const result = handle(frame([], 'x', body));
    await expect(result).rejects.toBeInstanceOf(ValidationError);
    await expect(result).rejects.toThrow(/experience frame version 2 is not supported: this trainer reads version 1/);
  });
});
