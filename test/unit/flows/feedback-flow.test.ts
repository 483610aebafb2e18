import type { Feedback } from '../../../schemas/feedback.schema';
import { AnalyticsStage } from '../../../src/flows/analytics-stage';
import { feedbackStep, type FeedbackWindowState } from '../../../src/flows/feedback-flow';
import { FEEDBACK_WINDOWS_PER_REGIME, StrategicFlow, applyFeedback, feedbackFor, type RegimeFeedbackState, type StrategicState } from '../../../src/flows/strategic-flow';
import { TimeKeyedBufferFlow } from '../../../src/flows/context-buffer-flow';
import type Redis from 'ioredis';
import type { Bar30m } from '../../../schemas/bar.schema';
import { initialAgentState, type AgentState } from '../../../src/learning/trading-env';
import { componentLogger } from '../../../src/observability/logger';
import { generateSyntheticMarket } from '../../../src/producers/synthetic-market';
import { resampleTo30m } from '../../../src/strategic/resample';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeHashRedis } from '../../fixtures/consumers';

const T0 = Date.UTC(2024, 0, 1);
const M5 = 300_000;

function env(close: number, call: 'LONG' | 'SHORT' | 'FLAT', equity: number): AgentState {
  return {
    ...initialAgentState(),
    lastClose: close,
    equity,
    lastDecision: { tactical: call, risk: call === 'FLAT' ? 0 : 1, execution: 'MARKET', target_position: call === 'LONG' ? 1 : call === 'SHORT' ? -1 : 0 },
  };
}

function run(slots: number[], closes: number[], calls: ('LONG' | 'SHORT' | 'FLAT')[]): Feedback[] {
  let window: FeedbackWindowState | null = null;
  const out: Feedback[] = [];
  let before: AgentState | null = null;
  slots.forEach((slot, i) => {
    const after = env(closes[i]!, calls[i]!, 1 + i * 0.001);
    const step = feedbackStep(window, { symbol: 'X', ts: T0 + slot * M5, close: closes[i]!, before, after, regime: 'BULL', confidence: 'HIGH', modelVersion: 'v1' });
    window = step.window;
    out.push(...step.emitted);
    before = after;
  });
  return out;
}

describe('six-bar feedback (tactical side)', () => {
  it('emits one window per 30m period, on its last bar, with the direction hit rate', () => {
    // calls made on bars 0..4 are realised on bars 1..5: up, up, down, up, down moves
    const closes = [100, 101, 102, 101, 102, 101];
    const calls = ['LONG', 'LONG', 'LONG', 'SHORT', 'FLAT', 'LONG'] as const;
    const out = run([0, 1, 2, 3, 4, 5], closes, [...calls]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ window_close_ts: T0 + 1_800_000, bars: 6, directional: 4, hits: 2, hit_rate: 0.5, regime: 'BULL', model_version: 'v1' });
    expect(out[0]!.realised_return).toBeCloseTo(Math.log(1.005 / 1), 12);
  });
  it('emits a window whose last bar is missing when the next period starts', () => {
    const out = run([0, 1, 2, 7], [100, 101, 102, 103], ['LONG', 'LONG', 'LONG', 'LONG']);
    expect(out.map((f) => [f.window_close_ts, f.bars])).toEqual([[T0 + 1_800_000, 3]]);
  });
  it('says null hit rate when no decision was directional', () => {
    const out = run([0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6], ['FLAT', 'FLAT', 'FLAT', 'FLAT', 'FLAT', 'FLAT']);
    expect(out[0]!.hit_rate).toBeNull();
  });
});

describe('feedback memory (strategic side)', () => {
  const window = (close: number, hits: number, regime: 'BULL' | 'BEAR' = 'BULL'): Feedback => ({
    v: 1, symbol: 'X', window_close_ts: close, bars: 6, directional: 6, hits, hit_rate: hits / 6, realised_return: hits >= 3 ? 0.01 : -0.01, slippage_bps: 6, regime, confidence: 'HIGH', model_version: null,
  });
  it('applies each window once and keeps it under its regime', () => {
    let s: RegimeFeedbackState = { applied: null, byRegime: {} };
    s = applyFeedback(s, window(1, 6));
    s = applyFeedback(s, window(1, 6));
    s = applyFeedback(s, window(2, 0, 'BEAR'));
    expect(feedbackFor(s, 'BULL')).toEqual({ hitRate: 1, realisedReturn: 0.01, windows: 1, directional: 6 });
    expect(feedbackFor(s, 'BEAR')).toEqual({ hitRate: 0, realisedReturn: -0.01, windows: 1, directional: 6 });
    expect(feedbackFor(s, 'SIDEWAYS')).toBeNull();
  });

  it('lowers confidence after poor tactical outcomes and never lowers it after good ones', async () => {
    const bars = resampleTo30m(generateSyntheticMarket({ seed: 31, bars: 6 * 160, regimeSequence: ['BULL'], segmentBars: [6000, 6000] }).bars);
    const log = componentLogger('test');
    const runWith = async (hits: number | null) => {
      const stage = new AnalyticsStage({ dir: mkdtempSync(join(tmpdir(), 'fb-')), log, saveEveryBars: 1000 });
      let state: unknown = null;
      let memory: RegimeFeedbackState = { applied: null, byRegime: {} };
      const uncertainties: number[] = [];
      for (const [i, bar] of bars.entries()) {
        if (hits !== null) memory = applyFeedback(memory, window(i + 1, hits));
        const m = memory;
        const out = await stage.step(state, { ...bar, timeframe: '30m' }, (regime) => feedbackFor(m, regime));
        state = out.state;
        if (out.analysis.uncertainty !== null) uncertainties.push(out.analysis.uncertainty);
      }
      return uncertainties;
    };
    const none = await runWith(null);
    const poor = await runWith(0);
    const good = await runWith(6);
    expect(none.length).toBeGreaterThan(50);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(poor)).toBeGreaterThan(mean(none) + 0.01);
    expect(mean(good)).toBeLessThanOrEqual(mean(none));
    for (let i = 0; i < none.length; i++) {
      expect(poor[i]!).toBeGreaterThanOrEqual(none[i]!);
      expect(good[i]!).toBeLessThanOrEqual(none[i]!);
    }
  });
});

describe('strategic flow applies feedback windows (issue 10)', () => {
  const fb = (close: number): Feedback => ({
    v: 1, symbol: 'X', window_close_ts: close, bars: 6, directional: 6, hits: 1, hit_rate: 1 / 6, realised_return: -0.01, slippage_bps: 6, regime: 'BULL', confidence: 'HIGH', model_version: null,
  });

  it('applies the window lag bars back once lag + 1 bars exist, and keeps the feedback hash in Redis bounded', async () => {
    const redis = new FakeHashRedis();
    const keep = 64;
    const buffer = new TimeKeyedBufferFlow<Feedback>({
      redis: redis as unknown as Redis,
      prefix: 'p:',
      contextWaitMs: 1,
      keepPerSymbol: keep,
      name: 'fb',
      keyOf: (f) => f.window_close_ts,
      symbolOf: (f) => f.symbol,
    });
    const lag = 4;
    const flow = new StrategicFlow(null, buffer, lag);
    let state: StrategicState | null = null;
    const applied: (number | null)[] = [];
    const bars = 400;
    for (let i = 0; i < bars; i++) {
      const ts = T0 + i * 1_800_000;
      // The tactical side publishes the window of this period (closing at ts + 30m).
      await buffer.put(fb(ts + 1_800_000));
      const out: { state: StrategicState } = await flow.step({ symbol: 'X', timeframe: '30m', ts, open: 1, high: 1, low: 1, close: 1, volume: 1 }, state);
      state = out.state;
      applied.push(state.feedback?.applied ?? null);
      expect(state.recentCloses!.length).toBeLessThanOrEqual(lag);
    }
    // Bar n (0-based) applies the window that closed lag bars before its own close.
    expect(applied.slice(0, lag)).toEqual([null, null, null, null]);
    expect(applied[lag]).toBe(T0 + 1_800_000);
    expect(applied[bars - 1]).toBe(T0 + (bars - lag) * 1_800_000);
    expect(feedbackFor(state!.feedback!, 'BULL')?.windows).toBe(FEEDBACK_WINDOWS_PER_REGIME);
    // One field per 30m bar was written; old ones are trimmed.
    const fields = redis.hashes.get('p:fb:X')!.size;
    expect(fields).toBeLessThanOrEqual(keep + lag + 32);
    expect(fields).toBeLessThan(bars);
  });
});

describe('confidence follows tactical feedback through the strategic flow (issue 10)', () => {
  it('drops for a regime while the agents are systematically wrong in it, and recovers when they are right again', async () => {
    // A steady BULL market: 30m returns of drift 1 σ per bar.
    let seed = 7;
    const gauss = (): number => {
      // Box–Muller on a small LCG: the test needs its own seeded numbers, not quality.
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const u = (seed + 1) / 2147483649;
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const v = (seed + 1) / 2147483649;
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    };
    const bars: Bar30m[] = [];
    let price = 100;
    for (let i = 0; i < 700; i++) {
      const open = price;
      price = open * Math.exp(0.004 + 0.004 * gauss());
      bars.push({ symbol: 'X', timeframe: '30m', ts: T0 + i * 1_800_000, open, high: Math.max(open, price), low: Math.min(open, price), close: price, volume: 1 });
    }
    const WRONG_FROM = 350;
    const RIGHT_FROM = 450;
    const hitsOf = (i: number): number => (i >= WRONG_FROM && i < RIGHT_FROM ? 0 : 5);
    const run = async (withFeedback: boolean): Promise<{ regime: string | null; uncertainty: number | null }[]> => {
      const redis = new FakeHashRedis();
      const buffer = new TimeKeyedBufferFlow<Feedback>({ redis: redis as unknown as Redis, prefix: 'p:', contextWaitMs: 1, name: 'fb', keyOf: (f) => f.window_close_ts, symbolOf: (f) => f.symbol });
      const stage = new AnalyticsStage({ dir: mkdtempSync(join(tmpdir(), 'fbflow-')), log: componentLogger('test'), saveEveryBars: 1000 });
      const flow = new StrategicFlow(stage, withFeedback ? buffer : null, 4);
      let state: StrategicState | null = null;
      const out: { regime: string | null; uncertainty: number | null }[] = [];
      for (const [i, bar] of bars.entries()) {
        const close = bar.ts + 1_800_000;
        await buffer.put({ v: 1, symbol: 'X', window_close_ts: close, bars: 6, directional: 6, hits: hitsOf(i), hit_rate: hitsOf(i) / 6, realised_return: hitsOf(i) >= 3 ? 0.001 : -0.001, slippage_bps: 5, regime: 'BULL', confidence: null, model_version: null });
        const step: { context: { regime: string | null; uncertainty: number | null }; state: StrategicState } = await flow.step(bar, state);
        state = step.state;
        out.push({ regime: step.context.regime, uncertainty: step.context.uncertainty });
      }
      return out;
    };
    const none = await run(false);
    const fed = await run(true);
    const meanU = (xs: typeof none, from: number, to: number): number => {
      const us = xs.slice(from, to).map((x) => x.uncertainty!);
      return us.reduce((a, b) => a + b, 0) / us.length;
    };
    expect(none.slice(200).every((x) => x.regime === 'BULL')).toBe(true);
    // Before: good feedback never changes anything.
    expect(fed.slice(0, WRONG_FROM).map((x) => x.uncertainty)).toEqual(none.slice(0, WRONG_FROM).map((x) => x.uncertainty));
    // While wrong (after the lag of 4 bars and a few windows): clearly less confident. 0 hits in 48
    // directional calls is z = 6.9, far beyond what chance gives agents trading a right call (the
    // penalty acts beyond z = 3, docs/regime.md).
    expect(meanU(fed, WRONG_FROM + 12, RIGHT_FROM)).toBeGreaterThan(meanU(none, WRONG_FROM + 12, RIGHT_FROM) + 0.2);
    for (let i = WRONG_FROM + 12; i < RIGHT_FROM; i++) expect(fed[i]!.uncertainty!).toBeGreaterThan(none[i]!.uncertainty!);
    // Recovered once the last 8 remembered BULL windows are good again.
    expect(fed.slice(RIGHT_FROM + 4 + 8).map((x) => x.uncertainty)).toEqual(none.slice(RIGHT_FROM + 4 + 8).map((x) => x.uncertainty));
  });
});

