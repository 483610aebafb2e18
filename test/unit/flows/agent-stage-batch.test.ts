import pino from 'pino';
import type { Bar } from '../../../schemas/bar.schema';
import type { Indicators } from '../../../schemas/integrated-result.schema';
import { AgentStage, type AgentOutcome, type AgentStageState } from '../../../src/flows/agent-stage';
import { syntheticSeries } from '../../../src/learning/evaluation';
import { TacticalPolicy } from '../../../src/learning/policy';

const SYMBOLS = ['AAA', 'BBB', 'CCC', 'DDD', 'EEE'];
const log = pino({ level: 'silent' });

describe('AgentStage: decisions of one turn share the forward pass', () => {
  const series = syntheticSeries({ seeds: [11, 12, 13, 14, 15], bars: 80 });
  const barOf = (i: number, t: number): Bar => ({ ...series[i]!.bars[t]!, symbol: SYMBOLS[i]!, timeframe: '5m' });

  afterEach(() => jest.restoreAllMocks());

  it.each([false, true])('gives every symbol the outcome it gets alone, with one batched call per turn (explore %s)', async (explore) => {
    const policy = TacticalPolicy.initial(5);
    const batchSizes: number[] = [];
    const decideBatch = policy.decideBatch.bind(policy);
    jest.spyOn(policy, 'decideBatch').mockImplementation((requests) => {
      batchSizes.push(requests.length);
      return decideBatch(requests);
    });
    const together = new AgentStage(policy, log, explore);
    const aloneStage = new AgentStage(TacticalPolicy.initial(5), log, explore);
    const stateTogether = new Map<string, AgentStageState | null>(SYMBOLS.map((s) => [s, null]));
    const stateAlone = new Map<string, AgentStageState | null>(SYMBOLS.map((s) => [s, null]));
    const transitions: number[] = [];
    for (let t = 0; t < 80; t++) {
      // The symbols' bars of one turn, stepped concurrently.
      const got = await Promise.all(
        SYMBOLS.map((s, i) => together.step(stateTogether.get(s)!, barOf(i, t), series[i]!.indicators[t] as Indicators, null)),
      );
      const want: AgentOutcome[] = [];
      for (let i = 0; i < SYMBOLS.length; i++) {
        want.push(await aloneStage.step(stateAlone.get(SYMBOLS[i]!)!, barOf(i, t), series[i]!.indicators[t] as Indicators, null));
      }
      expect(got).toEqual(want);
      SYMBOLS.forEach((s, i) => {
        stateTogether.set(s, got[i]!.state);
        stateAlone.set(s, want[i]!.state);
        if (got[i]!.transition !== null) transitions.push(t);
      });
    }
    // One batch of all five symbols per turn, never a bar of a symbol twice in one.
    expect(batchSizes).toEqual(Array.from({ length: 80 }, () => SYMBOLS.length));
    expect(transitions.length > 0).toBe(explore);
  });

  it('decides at once (stepNow, a replay batch) exactly as step does, falling back alike when the model fails', async () => {
    const failAt = barOf(0, 30).ts;
    const nowPolicy = TacticalPolicy.initial(5);
    const decide = nowPolicy.decide.bind(nowPolicy);
    jest.spyOn(nowPolicy, 'decide').mockImplementation((input, options) => {
      if (input.bar.ts === failAt) throw new Error('model failed');
      return decide(input, options);
    });
    const stepPolicy = TacticalPolicy.initial(5);
    const decideBatch = stepPolicy.decideBatch.bind(stepPolicy);
    jest.spyOn(stepPolicy, 'decideBatch').mockImplementation((requests) =>
      decideBatch(requests).map((d, k) => (requests[k]!.input.bar.ts === failAt ? new Error('model failed') : d)),
    );
    const now = new AgentStage(nowPolicy, log, true);
    const stepped = new AgentStage(stepPolicy, log, true);
    let a: AgentStageState | null = null;
    let b: AgentStageState | null = null;
    const degraded: number[] = [];
    for (let t = 0; t < 60; t++) {
      const got = now.stepNow(a, barOf(0, t), series[0]!.indicators[t] as Indicators, null);
      const want = await stepped.step(b, barOf(0, t), series[0]!.indicators[t] as Indicators, null);
      expect(got).toEqual(want);
      if (got.degraded) degraded.push(t);
      a = got.state;
      b = want.state;
    }
    expect(degraded).toEqual([30]);
  });

  it('falls back for the symbol whose decision fails and decides the others of the batch', async () => {
    const policy = TacticalPolicy.initial(5);
    const decideBatch = policy.decideBatch.bind(policy);
    jest.spyOn(policy, 'decideBatch').mockImplementation((requests) =>
      decideBatch(requests).map((d, k) => ((requests[k]!.input as { symbol?: string }).symbol === 'CCC' ? new Error('model failed') : d)),
    );
    const stage = new AgentStage(policy, log);
    const out = await Promise.all(SYMBOLS.map((_, i) => stage.step(null, barOf(i, 40), series[i]!.indicators[40] as Indicators, null)));
    expect(out.map((o) => o.degraded)).toEqual([false, false, true, false, false]);
    expect(out[2]!.decision).toEqual({ tactical: 'FLAT', risk: 0, execution: 'WAIT', target_position: 0 });
    expect(out[2]!.modelVersion).toBeNull();
    expect(out[0]!.modelVersion).toBe(policy.version);
  });
});
