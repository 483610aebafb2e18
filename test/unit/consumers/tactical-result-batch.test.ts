/**
 * A replay batch that asks for its results batched (header x-results-to): the results of its bars
 * leave as one message, and when that publish fails the message is sent again once for the whole
 * batch, not once per bar (the bug: every bar of a 256-bar batch re-sent the 256-result message,
 * all under one messageId).
 */
import type { ConsumeMessage } from 'amqplib';
import type Redis from 'ioredis';
import { BAR_BATCH_CONTENT_TYPE } from '../../../schemas/bar-batch.schema';
import type { Bar } from '../../../schemas/bar.schema';
import { HEADER_RESULTS_TO, RESULT_BATCH_CONTENT_TYPE, type ResultBatch } from '../../../schemas/result-batch.schema';
import type { HandleResult } from '../../../src/broker/base-consumer';
import type { Publisher } from '../../../src/broker/publisher';
import { TacticalConsumer } from '../../../src/consumers/tactical-consumer';
import { ContextBufferFlow } from '../../../src/flows/context-buffer-flow';
import { TacticalFlow, type TacticalState } from '../../../src/flows/tactical-flow';
import { acceptingStore, detachedConnection, FakeHashRedis, stageOptions } from '../../fixtures/consumers';

const T0 = Date.UTC(2025, 0, 1);
const M5 = 300_000;
const SYMBOL = 'AAA';
const RESULTS_TO = 'replay.results.test';

function bar(slot: number): Bar {
  const close = 100 + Math.sin(slot);
  return { symbol: SYMBOL, timeframe: '5m', ts: T0 + slot * M5, open: close, high: close + 1, low: close - 1, close, volume: slot + 1 };
}

interface BatchPublish {
  messageId: string;
  body: ResultBatch;
}

/** A tactical consumer on fakes whose first `failures` result-batch publishes are refused. */
function setUp(failures: number): { handle: (msg: ConsumeMessage) => Promise<HandleResult>; batches: BatchPublish[] } {
  const batches: BatchPublish[] = [];
  let refused = 0;
  // No 30m bar completes in the batch below (slots 0-4), so no bar waits for a context.
  const contexts = new ContextBufferFlow({ redis: new FakeHashRedis() as unknown as Redis, prefix: 't:', contextWaitMs: 1000 });
  const publisher = {
    publish: (_exchange: string, routingKey: string, content: Buffer, options: { messageId: string; contentType?: string }): Promise<void> => {
      if (routingKey !== RESULTS_TO) return Promise.resolve();
      expect(options.contentType).toBe(RESULT_BATCH_CONTENT_TYPE);
      batches.push({ messageId: options.messageId, body: JSON.parse(content.toString('utf8')) as ResultBatch });
      if (refused < failures) {
        refused++;
        return Promise.reject(new Error('nacked by the broker'));
      }
      return Promise.resolve();
    },
  } as unknown as Publisher;
  const consumer = new TacticalConsumer(detachedConnection(), publisher, acceptingStore<TacticalState>(), new TacticalFlow({}), contexts, {
    ...stageOptions({ queue: 'tactical_processing.0' }),
    contextQueue: 'tactical_context.0',
  });
  const handle = (msg: ConsumeMessage): Promise<HandleResult> =>
    (consumer as unknown as { handle(m: ConsumeMessage): Promise<HandleResult> }).handle(msg);
  return { handle, batches };
}

function batchMessage(bars: Bar[]): ConsumeMessage {
  return {
    content: Buffer.from(JSON.stringify({ v: 1, symbol: SYMBOL, bars })),
    properties: { contentType: BAR_BATCH_CONTENT_TYPE, headers: { [HEADER_RESULTS_TO]: RESULTS_TO } },
    fields: { redelivered: false, routingKey: `bars.5m.${SYMBOL}`, exchange: 'pipeline.internal', deliveryTag: 1 },
  } as unknown as ConsumeMessage;
}

async function run(failures: number, bars: Bar[]): Promise<BatchPublish[]> {
  const { handle, batches } = setUp(failures);
  const r = await handle(batchMessage(bars));
  expect(r.kind).toBe('commit');
  if (r.kind === 'commit') await r.committed;
  return batches;
}

describe('tactical batched results', () => {
  const bars = [0, 1, 2, 3, 4].map(bar);

  it('sends the results of a batch as one message, once', async () => {
    const batches = await run(0, bars);
    expect(batches.length).toBe(1);
    expect(batches[0]?.body.results.map((r) => r.ts)).toEqual(bars.map((b) => b.ts));
  });

  it('re-sends a refused result batch once for the whole batch, not once per bar', async () => {
    const batches = await run(1, bars);
    expect(batches.length).toBe(2);
    expect(new Set(batches.map((b) => b.messageId)).size).toBe(1);
    expect(batches[1]?.body).toEqual(batches[0]?.body);
  });

  it('keeps re-sending once per failure until confirmed', async () => {
    const batches = await run(3, bars);
    expect(batches.length).toBe(4);
  });
});
