/**
 * The tactical worker's 30m look-ahead: from the bars it holds (a batch), it publishes the 30m bars
 * they complete ahead of the bar that completes each, up to `lookaheadPeriods` periods past the bar
 * it processes; those are exactly the 30m bars the lane builds, each published once; a redelivered
 * batch is not looked ahead from.
 */
import type { ConsumeMessage } from 'amqplib';
import type Redis from 'ioredis';
import { BAR_BATCH_CONTENT_TYPE } from '../../../schemas/bar-batch.schema';
import type { Bar, Bar30m } from '../../../schemas/bar.schema';
import type { StrategicContext } from '../../../schemas/strategic-context.schema';
import type { HandleResult } from '../../../src/broker/base-consumer';
import type { Publisher } from '../../../src/broker/publisher';
import { TacticalConsumer } from '../../../src/consumers/tactical-consumer';
import { ContextBufferFlow } from '../../../src/flows/context-buffer-flow';
import { resampleStep, type ResampleState } from '../../../src/flows/resample-flow';
import { TacticalFlow, type TacticalState } from '../../../src/flows/tactical-flow';
import { acceptingStore, detachedConnection, FakeHashRedis, stageOptions } from '../../fixtures/consumers';


const T0 = Date.UTC(2025, 0, 1);
const M5 = 300_000;
const M30 = 1_800_000;
const SYMBOL = 'AAA';

function bar(slot: number): Bar {
  const close = 100 + Math.sin(slot);
  return { symbol: SYMBOL, timeframe: '5m', ts: T0 + slot * M5, open: close, high: close + 1, low: close - 1, close, volume: slot + 1 };
}

interface Sent {
  routingKey: string;
  body: unknown;
}

function context(b: Bar30m): StrategicContext {
  return {
    v: 1, symbol: b.symbol, ts: b.ts, bar_close_ts: b.ts + M30, close: b.close,
    regime: null, regime_probabilities: null, confidence: null, uncertainty: null, similar_patterns: null, degraded: [],
  };
}

/**
 * A tactical consumer on fakes; the "strategic side" answers every 30m bar with its context. With
 * `failFirst30m`, the first publish of each 30m bar is refused (as a nack or an open publish
 * breaker would) and reaches no one.
 */
function setUp(
  lookaheadPeriods: number,
  { failFirst30m = false, contextWaitMs = 5000 } = {},
): { handle: (msg: ConsumeMessage) => Promise<HandleResult>; sent: Sent[] } {
  const sent: Sent[] = [];
  const refused = new Set<number>();
  const contexts = new ContextBufferFlow({ redis: new FakeHashRedis() as unknown as Redis, prefix: 't:', contextWaitMs });
  const publisher = {
    publish: (_exchange: string, routingKey: string, content: Buffer): Promise<void> => {
      const body = JSON.parse(content.toString('utf8')) as unknown;
      if (failFirst30m && routingKey.startsWith('bars.30m.') && !refused.has((body as Bar30m).ts)) {
        refused.add((body as Bar30m).ts);
        return Promise.reject(new Error('nacked by the broker'));
      }
      sent.push({ routingKey, body });
      if (routingKey.startsWith('bars.30m.')) setImmediate(() => void contexts.put(context(body as Bar30m)));
      return Promise.resolve();
    },
  } as unknown as Publisher;
  const consumer = new TacticalConsumer(detachedConnection(), publisher, acceptingStore<TacticalState>(), new TacticalFlow({}), contexts, {
    ...stageOptions({ queue: 'tactical_processing.0' }),
    contextQueue: 'tactical_context.0',
    lookaheadPeriods,
  });
  const handle = (msg: ConsumeMessage): Promise<HandleResult> =>
    (consumer as unknown as { handle(m: ConsumeMessage): Promise<HandleResult> }).handle(msg);
  return { handle, sent };
}

function batchMessage(bars: Bar[], redelivered = false): ConsumeMessage {
  return {
    content: Buffer.from(JSON.stringify({ v: 1, symbol: SYMBOL, bars })),
    properties: { contentType: BAR_BATCH_CONTENT_TYPE, headers: {} },
    fields: { redelivered, routingKey: `bars.5m.${SYMBOL}`, exchange: 'pipeline.internal', deliveryTag: 1 },
  } as unknown as ConsumeMessage;
}

async function run(lookaheadPeriods: number, bars: Bar[], redelivered = false, options: Parameters<typeof setUp>[1] = {}): Promise<Sent[]> {
  const { handle, sent } = setUp(lookaheadPeriods, options);
  const r = await handle(batchMessage(bars, redelivered));
  expect(r.kind).toBe('commit');
  if (r.kind === 'commit') await r.committed;
  return sent;
}

/** The 30m bars the bars build one by one. */
function built(bars: Bar[]): Bar30m[] {
  let s: ResampleState | null = null;
  const out: Bar30m[] = [];
  for (const b of bars) {
    const r = resampleStep(s, b);
    s = r.state;
    out.push(...r.emitted);
  }
  return out;
}

const thirtyMinute = (sent: Sent[]): Bar30m[] => sent.filter((s) => s.routingKey.startsWith('bars.30m.')).map((s) => s.body as Bar30m);
/** Where in the publish order the result of the 5m bar opening at `ts` is. */
const resultAt = (sent: Sent[], ts: number): number => sent.findIndex((s) => s.routingKey.startsWith('results.') && (s.body as { ts: number }).ts === ts);
const barAt = (sent: Sent[], ts: number): number => sent.findIndex((s) => s.routingKey.startsWith('bars.30m.') && (s.body as Bar30m).ts === ts);

describe('tactical 30m look-ahead', () => {
  // 60 bars, slot 20 and 33 missing (gaps: two partial periods).
  const bars = [...Array(60).keys()].filter((s) => s !== 20 && s !== 33).map(bar);

  it('publishes exactly the 30m bars the lane builds, each once, up to 3 periods ahead', async () => {
    const sent = await run(3, bars);
    expect(thirtyMinute(sent)).toEqual(built(bars));
    expect(sent.filter((s) => s.routingKey.startsWith('results.'))).toHaveLength(bars.length);
    // The 30m bar of period 3 (slots 18-23) left before the result of slot 5, the first bar
    // completing a period: three periods ahead of it, not when its own last bar came up.
    expect(barAt(sent, T0 + 3 * M30)).toBeLessThan(resultAt(sent, bar(5).ts));
    // Never further: period 4 leaves only after the bar completing period 1 (slot 11).
    expect(barAt(sent, T0 + 4 * M30)).toBeGreaterThan(resultAt(sent, bar(5).ts));
  });

  it('without look-ahead, or for a redelivered batch, a 30m bar leaves with the bar completing it', async () => {
    for (const sent of [await run(0, bars), await run(3, bars, true)]) {
      expect(thirtyMinute(sent)).toEqual(built(bars));
      expect(barAt(sent, T0 + M30)).toBeGreaterThan(resultAt(sent, bar(5).ts));
    }
  });

  it('sends a refused 30m bar again while its 5m bar waits, so that no bar is decided with a stale context', async () => {
    const someBars = bars.slice(0, 24);
    for (const lookahead of [0, 3]) {
      // A wait short enough for this test to end either way: without the re-send, each bar
      // completing a period would run it out and be published with `context_buffer` degraded.
      const sent = await run(lookahead, someBars, false, { failFirst30m: true, contextWaitMs: 1000 });
      expect(thirtyMinute(sent)).toEqual(built(someBars));
      const results = sent.filter((s) => s.routingKey.startsWith('results.')).map((s) => s.body as { degraded: string[] });
      expect(results).toHaveLength(someBars.length);
      expect(results.filter((r) => r.degraded.includes('context_buffer'))).toEqual([]);
    }
  });
});
