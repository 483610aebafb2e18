import pino from 'pino';
import type { Bar } from '../../../schemas/bar.schema';
import { IntegratedResultSchema } from '../../../schemas/integrated-result.schema';
import { AgentStage } from '../../../src/flows/agent-stage';
import { TacticalFlow, type TacticalState } from '../../../src/flows/tactical-flow';
import { syntheticSeries } from '../../../src/learning/evaluation';
import { TacticalPolicy } from '../../../src/learning/policy';

const log = pino({ level: 'silent' });

describe('the exploring marker of a result', () => {
  const series = syntheticSeries({ seeds: [21], bars: 40 })[0]!;
  const bars: Bar[] = series.bars.map((b) => ({ ...b, symbol: 'XPL', timeframe: '5m' }));

  async function results(explore: boolean): Promise<Record<string, unknown>[]> {
    const flow = new TacticalFlow({ agents: new AgentStage(TacticalPolicy.initial(3), log, explore) });
    let state: TacticalState | null = null;
    const out: Record<string, unknown>[] = [];
    for (const bar of bars) {
      const step = await flow.step(bar, state, null, { context: null, stale: false });
      state = step.state;
      // As published: JSON, validated by the contract's schema.
      const body = JSON.parse(JSON.stringify(step.result)) as Record<string, unknown>;
      IntegratedResultSchema.parse(body);
      out.push(body);
    }
    return out;
  }

  it('is absent from greedy decisions (training off) and true on every sampled one (training on)', async () => {
    const greedy = await results(false);
    expect(greedy.filter((r) => 'exploring' in r)).toEqual([]);
    const sampled = await results(true);
    expect(sampled.map((r) => r.exploring)).toEqual(bars.map(() => true));
  });

  it('is absent when the agents fell back (nothing was sampled)', async () => {
    const policy = TacticalPolicy.initial(3);
    jest.spyOn(policy, 'decideBatch').mockImplementation((requests) => requests.map(() => new Error('model failed')));
    const flow = new TacticalFlow({ agents: new AgentStage(policy, log, true) });
    const step = await flow.step(bars[0]!, null, null, { context: null, stale: false });
    expect(step.result.degraded).toContain('agents');
    expect('exploring' in step.result).toBe(false);
  });
});
