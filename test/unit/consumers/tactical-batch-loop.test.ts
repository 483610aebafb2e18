/**
 * The replay batch's loop and a single bar's fast path decide every bar as the lane's per-bar way does: the same bars, with real
 * indicators, agents and strategic contexts that the "strategic side" answers after varying delays
 * (so some are in memory when the loop comes to the bar that needs them and some arrive mid-batch,
 * splitting the batch into runs), give the same results, apart from latency_ms, as one bar per
 * message; so does a worker restarted mid-batch, whose redelivered batch drops the bars already
 * committed and decides the rest, and whose next batch goes on from the restored state; bars
 * already accepted that come again in a fresh batch are dropped.
 */
import type { ConsumeMessage } from 'amqplib';
import type Redis from 'ioredis';
import pino from 'pino';
import { BAR_BATCH_CONTENT_TYPE } from '../../../schemas/bar-batch.schema';
import type { Bar, Bar30m } from '../../../schemas/bar.schema';
import type { IntegratedResult } from '../../../schemas/integrated-result.schema';
import { HEADER_RESULTS_TO, type ResultBatch } from '../../../schemas/result-batch.schema';
import type { StrategicContext } from '../../../schemas/strategic-context.schema';
import type { HandleResult } from '../../../src/broker/base-consumer';
import type { Publisher } from '../../../src/broker/publisher';
import { TacticalConsumer } from '../../../src/consumers/tactical-consumer';
import { AgentStage } from '../../../src/flows/agent-stage';
import { ContextBufferFlow } from '../../../src/flows/context-buffer-flow';
import { StreamingIndicatorStage } from '../../../src/flows/indicator-stage';
import { TacticalFlow, type TacticalState } from '../../../src/flows/tactical-flow';
import { TacticalPolicy } from '../../../src/learning/policy';
import type { SymbolStateStore } from '../../../src/state/symbol-state-store';
import { detachedConnection, FakeHashRedis, stageOptions } from '../../fixtures/consumers';

const T0 = Date.UTC(2025, 0, 1);
const M5 = 300_000;
const M30 = 1_800_000;
const SYMBOL = 'AAA';
const RESULTS_TO = 'replay.results.test';
const log = pino({ level: 'silent' });

function bar(slot: number): Bar {
  const close = 100 + 5 * Math.sin(slot / 7) + Math.sin(slot * 1.3);
  return { symbol: SYMBOL, timeframe: '5m', ts: T0 + slot * M5, open: close - 0.2, high: close + 1, low: close - 1, close, volume: 10 + (slot % 13) };
}

/** The context the strategic side answers a 30m bar with: a function of the bar alone. */
function context(b: Bar30m): StrategicContext {
  const up = 0.5 + 0.45 * Math.sin(b.close);
  return {
    v: 1, symbol: b.symbol, ts: b.ts, bar_close_ts: b.ts + M30, close: b.close,
    regime: up > 0.5 ? 'BULL' : 'BEAR',
    regime_probabilities: { BULL: up * 0.8, BEAR: (1 - up) * 0.8, SIDEWAYS: 0.1, VOLATILE: 0.1 },
    confidence: up > 0.8 ? 'HIGH' : 'MEDIUM', uncertainty: 1 - up, similar_patterns: null, degraded: [],
  };
}

/** A state store in memory, as Redis would keep it; commits holding a bar at or after `diesAt` never end (the worker died). */
class MemoryStore {
  readonly states = new Map<string, TacticalState>();
  readonly marks = new Set<number>();
  diesAt = Infinity;
  load = (symbol: string): Promise<TacticalState | null> => Promise.resolve(structuredClone(this.states.get(symbol)) ?? null);
  commit = (symbol: string, state: TacticalState, bars: { ts: readonly number[] }): Promise<void> => {
    if (bars.ts.some((ts) => ts >= this.diesAt)) return new Promise(() => undefined);
    this.states.set(symbol, structuredClone(state));
    for (const ts of bars.ts) this.marks.add(ts);
    return Promise.resolve();
  };
  wasAccepted = (_symbol: string, _timeframeMs: number, ts: number): Promise<boolean> => Promise.resolve(this.marks.has(ts));
  discardPending = (): void => undefined;
  countAttempt = (): Promise<number> => Promise.resolve(1);
  clearAttempts = (): Promise<void> => Promise.resolve();
}

interface Worker {
  handle: (msg: ConsumeMessage) => Promise<HandleResult>;
  results: IntegratedResult[];
  /** Result-batch messages published. */
  batches: number;
  flow: TacticalFlow;
}

/**
 * A tactical worker on fakes; the strategic side answers the k-th 30m bar published after (k × 7) % 5 ms.
 * `laneOnly`: every bar goes the lane's per-bar way (no loop, no fast path), the reference.
 */
function worker(store: MemoryStore, redis: FakeHashRedis, laneOnly = false): Worker {
  const contexts = new ContextBufferFlow({ redis: redis as unknown as Redis, prefix: 't:', contextWaitMs: 0 });
  const w: Worker = {
    handle: () => Promise.reject(new Error('not set up')),
    results: [],
    batches: 0,
    flow: new TacticalFlow({ indicators: new StreamingIndicatorStage(), agents: new AgentStage(TacticalPolicy.initial(7), log) }),
  };
  let answered = 0;
  const publisher = {
    publish: (_exchange: string, routingKey: string, content: Buffer): Promise<void> => {
      const body = JSON.parse(content.toString('utf8')) as unknown;
      if (routingKey.startsWith('bars.30m.')) setTimeout(() => void contexts.put(context(body as Bar30m)), (answered++ * 7) % 5);
      else if (routingKey.startsWith('results.')) w.results.push(body as IntegratedResult);
      else if (routingKey === RESULTS_TO) {
        w.batches++;
        w.results.push(...(body as ResultBatch).results);
      }
      return Promise.resolve();
    },
  } as unknown as Publisher;
  const consumer = new TacticalConsumer(detachedConnection(), publisher, store as unknown as SymbolStateStore<TacticalState>, w.flow, contexts, {
    ...stageOptions({ queue: 'tactical_processing.0' }),
    contextQueue: 'tactical_context.0',
    lookaheadPeriods: 3,
  });
  if (laneOnly) (consumer as unknown as { processRun: () => undefined }).processRun = () => undefined;
  w.handle = (msg) => (consumer as unknown as { handle(m: ConsumeMessage): Promise<HandleResult> }).handle(msg);
  return w;
}

function message(body: unknown, batch: boolean, redelivered = false): ConsumeMessage {
  return {
    content: Buffer.from(JSON.stringify(body)),
    properties: batch ? { contentType: BAR_BATCH_CONTENT_TYPE, headers: { [HEADER_RESULTS_TO]: RESULTS_TO } } : { contentType: 'application/json', headers: {} },
    fields: { redelivered, routingKey: `bars.5m.${SYMBOL}`, exchange: batch ? 'pipeline.internal' : 'market.bars', deliveryTag: 1 },
  } as unknown as ConsumeMessage;
}

const batchOf = (bars: Bar[], redelivered = false): ConsumeMessage => message({ v: 1, symbol: SYMBOL, bars }, true, redelivered);

async function committed(r: Promise<HandleResult>): Promise<void> {
  const done = await r;
  if (done.kind === 'commit') await done.committed;
}

/** Results by bar open time, without latency_ms. */
function byTs(results: IntegratedResult[]): Map<number, unknown> {
  return new Map(results.map(({ latency_ms: _latency, ...r }) => [r.ts, r]));
}

describe('tactical replay batch loop', () => {
  // 160 bars with a gap (slots 40-44) and a partial period.
  const bars = [...Array(165).keys()].filter((s) => s < 40 || s > 44).map(bar);
  let reference: Map<number, unknown>;
  /** Bars the reference worker decided off its lane (must be none). */
  let referenceOffLane = -1;

  beforeAll(async () => {
    const alone = worker(new MemoryStore(), new FakeHashRedis(), true);
    const stepNow = jest.spyOn(alone.flow, 'stepNow');
    for (const b of bars) await committed(alone.handle(message(b, false)));
    referenceOffLane = stepNow.mock.calls.length;
    reference = byTs(alone.results);
  });

  it('one bar per message: a bar whose state and context are in memory is decided at once (the fast path), with the results of the lane', async () => {
    expect(referenceOffLane).toBe(0);
    const w = worker(new MemoryStore(), new FakeHashRedis());
    const stepNow = jest.spyOn(w.flow, 'stepNow');
    const step = jest.spyOn(w.flow, 'step');
    for (const b of bars) await committed(w.handle(message(b, false)));
    expect(byTs(w.results)).toEqual(reference);
    // The first bar (state not loaded yet) and the bars whose context was not in yet went the lane's way.
    expect(stepNow.mock.calls.length).toBeGreaterThan(bars.length / 2);
    expect(step.mock.calls.length).toBeGreaterThan(0);
    expect(stepNow.mock.calls.length + step.mock.calls.length).toBe(bars.length);
  });

  it('gives the results of one bar per message, computing runs at once and waiting at the bars whose context is not in yet', async () => {
    expect(reference.size).toBe(bars.length);
    // Decided with contexts, which the agents see.
    expect([...reference.values()].filter((r) => (r as IntegratedResult).strategic.regime !== null).length).toBeGreaterThan(130);
    const w = worker(new MemoryStore(), new FakeHashRedis());
    const stepNow = jest.spyOn(w.flow, 'stepNow');
    const step = jest.spyOn(w.flow, 'step');
    for (let i = 0; i < bars.length; i += 64) await committed(w.handle(batchOf(bars.slice(i, i + 64))));
    expect(w.batches).toBe(3);
    expect(byTs(w.results)).toEqual(reference);
    // Both ways were taken: the batch was split where a context had to be waited for.
    expect(stepNow.mock.calls.length).toBeGreaterThan(bars.length / 2);
    expect(step.mock.calls.length).toBeGreaterThan(3);
    expect(stepNow.mock.calls.length + step.mock.calls.length).toBe(bars.length);
  });

  it('after a restart mid-batch, drops the bars already committed and decides the others as before; drops a fresh batch of accepted bars', async () => {
    const store = new MemoryStore();
    const redis = new FakeHashRedis();
    const first = bars.slice(0, 100);
    // The worker dies before committing anything from slot 70 on.
    store.diesAt = bar(70).ts;
    const before = worker(store, redis);
    void before.handle(batchOf(first));
    for (let i = 0; i < 500 && before.batches === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(before.batches).toBe(1);
    const lastTs = store.states.get(SYMBOL)?.lastTs ?? 0;
    expect(lastTs).toBeGreaterThan(bar(20).ts);
    expect(lastTs).toBeLessThan(bar(70).ts);

    store.diesAt = Infinity;
    const after = worker(store, redis);
    const stepNow = jest.spyOn(after.flow, 'stepNow');
    await committed(after.handle(batchOf(first, true)));
    await committed(after.handle(batchOf(bars.slice(100))));
    const decided = bars.filter((b) => b.ts > lastTs).map((b) => b.ts);
    expect([...byTs(after.results).keys()]).toEqual(decided);
    expect(byTs(after.results)).toEqual(new Map(decided.map((ts) => [ts, reference.get(ts)])));
    // The fresh batch after the restart went through the loop.
    expect(stepNow.mock.calls.length).toBeGreaterThan(0);
    // Bars already accepted, sent again in a fresh batch (a replay started twice): acked, no output.
    await committed(after.handle(batchOf(bars.slice(90, 110))));
    expect(after.results).toHaveLength(decided.length);
  });
});
