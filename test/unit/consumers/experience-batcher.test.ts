import { inflateRawSync } from 'node:zlib';
import type { Options } from 'amqplib';
import { decodeExperienceFrame, EXPERIENCE_FRAME_CONTENT_TYPE } from '../../../schemas/experience-frame';
import { EXPERIENCE_BATCH_CONTENT_TYPE } from '../../../schemas/experience.schema';
import type { Publisher } from '../../../src/broker/publisher';
import { ExperienceBatcher } from '../../../src/consumers/experience-batcher';
import type { ExperienceTransition } from '../../../src/flows/agent-stage';
import { experience } from '../../fixtures/experience';

interface Sent {
  transitions: ExperienceTransition[];
  options: Options.Publish;
  confirm: () => void;
}

/** A publisher whose confirms the test gives by hand. */
function fakePublisher(): { publisher: Publisher; sent: Sent[] } {
  const sent: Sent[] = [];
  const publisher = {
    publish: (_exchange: string, _key: string, content: Buffer, options: Options.Publish) =>
      new Promise<void>((resolve) => {
        const transitions =
          options.contentType === EXPERIENCE_FRAME_CONTENT_TYPE
            ? decodeExperienceFrame(content)
            : (JSON.parse(inflateRawSync(content).toString('utf8')) as { transitions: ExperienceTransition[] }).transitions;
        sent.push({ transitions, options, confirm: resolve });
      }),
  } as unknown as Publisher;
  return { publisher, sent };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!check()) throw new Error('condition not reached');
}

/**
 * The batcher sat on every transition for its 10 ms timer, so each bar's ack (which waits for its
 * transition's confirm) waited 10 ms at low load. It now sends at once when idle and gathers with
 * the timer only under load.
 */
describe('ExperienceBatcher sends without a timer at low load and gathers under load', () => {
  const transitions = experience(['AAA'], 8, 5);

  it('sends a lone transition at once, not after maxDelayMs', async () => {
    const { publisher, sent } = fakePublisher();
    const batcher = new ExperienceBatcher(publisher, { maxDelayMs: 60_000 });
    let confirmed = false;
    void batcher.add(transitions[0]!).then(() => (confirmed = true));
    await until(() => sent.length === 1);
    expect(sent[0]!.transitions.map((t) => t.ts)).toEqual([transitions[0]!.ts]);
    expect(confirmed).toBe(false); // resolves on the confirm, not before
    sent[0]!.confirm();
    await until(() => confirmed);
  });

  it('gathers what comes within maxDelayMs of a send into one batch (few messages under load)', async () => {
    const { publisher, sent } = fakePublisher();
    const batcher = new ExperienceBatcher(publisher, { maxDelayMs: 60 });
    const done = [batcher.add(transitions[0]!)];
    await until(() => sent.length === 1);
    sent[0]!.confirm();
    for (const t of transitions.slice(1, 5)) done.push(batcher.add(t));
    await new Promise((r) => setTimeout(r, 15));
    expect(sent).toHaveLength(1); // not idle: the four wait for the timer, together
    await until(() => sent.length === 2);
    expect(sent[1]!.transitions.map((t) => t.ts)).toEqual(transitions.slice(1, 5).map((t) => t.ts));
    sent[1]!.confirm();
    await Promise.all(done);
  });

  it('sends after maxDelayMs when a confirm is slow, and at once when maxBatch are waiting', async () => {
    const { publisher, sent } = fakePublisher();
    const batcher = new ExperienceBatcher(publisher, { maxDelayMs: 30, maxBatch: 3 });
    void batcher.add(transitions[0]!);
    await until(() => sent.length === 1);
    void batcher.add(transitions[1]!);
    await until(() => sent.length === 2); // the first is never confirmed: the timer sends the second
    for (const t of transitions.slice(2, 5)) void batcher.add(t);
    await until(() => sent.length === 3);
    expect(sent[2]!.transitions).toHaveLength(3);
  });
});

describe('ExperienceBatcher wire format', () => {
  const transitions = experience(['AAA', 'BBB'], 3, 9);

  it('sends a binary experience frame by default, uncompressed, the transitions as the JSON path gives them', async () => {
    const { publisher, sent } = fakePublisher();
    const batcher = new ExperienceBatcher(publisher, { maxBatch: transitions.length });
    const done = transitions.map((t) => batcher.add(t));
    await until(() => sent.length === 1);
    expect(sent[0]!.options.contentType).toBe(EXPERIENCE_FRAME_CONTENT_TYPE);
    expect(sent[0]!.options.contentEncoding).toBeUndefined();
    expect(sent[0]!.options.messageId).toBe(`experience-batch:AAA:${transitions[0]!.ts}:${transitions.length}`);
    expect(sent[0]!.transitions).toStrictEqual(JSON.parse(JSON.stringify(transitions)));
    sent[0]!.confirm();
    await Promise.all(done);
  });

  it("takes a replay run's transitions in one add, in frames of at most maxBatch, resolving once all are confirmed", async () => {
    const { publisher, sent } = fakePublisher();
    const batcher = new ExperienceBatcher(publisher, { maxBatch: 3, maxDelayMs: 5 });
    const run = experience(['AAA'], 7, 5);
    let confirmed = false;
    void batcher.add(...run).then(() => (confirmed = true));
    await until(() => sent.length === 3);
    expect(sent.map((s) => s.transitions.map((t) => t.ts))).toEqual([0, 3, 6].map((i) => run.slice(i, i + 3).map((t) => t.ts)));
    sent[0]!.confirm();
    sent[2]!.confirm();
    await new Promise((r) => setTimeout(r, 10));
    expect(confirmed).toBe(false); // the second frame is not confirmed yet
    sent[1]!.confirm();
    await until(() => confirmed);
  });

  it("still sends the DEFLATE-compressed JSON batch with format 'json'", async () => {
    const { publisher, sent } = fakePublisher();
    const batcher = new ExperienceBatcher(publisher, { maxBatch: 2, format: 'json' });
    const done = transitions.slice(0, 2).map((t) => batcher.add(t));
    await until(() => sent.length === 1);
    expect(sent[0]!.options).toMatchObject({ contentType: EXPERIENCE_BATCH_CONTENT_TYPE, contentEncoding: 'deflate' });
    expect(sent[0]!.transitions.map((t) => t.ts)).toEqual(transitions.slice(0, 2).map((t) => t.ts));
    sent[0]!.confirm();
    await Promise.all(done);
  });

  it('rejects the adds of a batch the frame cannot hold (a bad observation length), sending nothing', async () => {
    const { publisher, sent } = fakePublisher();
    const batcher = new ExperienceBatcher(publisher, { maxBatch: 1 });
    const bad = { ...transitions[0]!, observations: { ...transitions[0]!.observations, risk: [1, 2] } };
    await expect(batcher.add(bad)).rejects.toThrow(/observations must have 23, 10 and 10 values, got 23, 2 and 10/);
    expect(sent).toHaveLength(0);
  });
});
