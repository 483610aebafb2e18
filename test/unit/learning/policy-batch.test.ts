import { syntheticSeries } from '../../../src/learning/evaluation';
import type { StrategicInput } from '../../../src/learning/features';
import { TacticalPolicy, type Decision, type DecisionInput, type DecideOptions } from '../../../src/learning/policy';
import { advance, initialAgentState, type AgentState } from '../../../src/learning/trading-env';
import type { Indicators } from '../../../schemas/integrated-result.schema';

const SYMBOLS = ['AAA', 'BBB', 'CCC', 'DDD', 'EEE', 'FFF'];

/** A strategic context that varies with the bar, so that the observations do too. */
function strategicAt(t: number): StrategicInput | null {
  if (t % 7 === 0) return null;
  const bull = (t % 5) / 10;
  return {
    regime_probabilities: { BULL: bull, BEAR: 0.5 - bull / 2, SIDEWAYS: 0.3 - bull / 2, VOLATILE: 0.2 },
    uncertainty: (t % 11) / 11,
    confidence: (['LOW', 'MEDIUM', 'HIGH'] as const)[t % 3]!,
    similar_patterns: { k: 10, mean_forward_return: ((t % 9) - 4) / 1000, up_fraction: (t % 10) / 10, mean_distance: 0.5 },
  };
}

describe('TacticalPolicy.decideBatch', () => {
  const series = syntheticSeries({ seeds: [1, 2, 3, 4, 5, 6], bars: 120 });

  it.each([false, true])('decides each symbol exactly as decide() does alone (explore %s), whatever the batch size', (explore) => {
    const policy = TacticalPolicy.initial(3);
    // Batch sizes 1..6 in turn: at bar t, the first 1 + t % 6 symbols are decided together, the
    // others one at a time; the reference decides every symbol alone.
    const batched = new Map<string, AgentState>(SYMBOLS.map((s) => [s, initialAgentState()]));
    const alone = new Map<string, AgentState>(SYMBOLS.map((s) => [s, initialAgentState()]));
    let compared = 0;
    const actions = new Set<string>();
    for (let t = 0; t < 120; t++) {
      const inputs = (states: Map<string, AgentState>): { input: DecisionInput; options: DecideOptions }[] =>
        SYMBOLS.map((symbol, i) => ({
          input: {
            indicators: series[i]!.indicators[t] as Indicators,
            strategic: strategicAt(t + i),
            bar: { ...series[i]!.bars[t]! },
            agentState: states.get(symbol)!,
          },
          options: explore ? { explore: { symbol, ts: series[i]!.bars[t]!.ts } } : {},
        }));
      const want = inputs(alone).map((r) => policy.decide(r.input, r.options));
      const requests = inputs(batched);
      const n = 1 + (t % SYMBOLS.length);
      const got = [...policy.decideBatch(requests.slice(0, n)), ...requests.slice(n).map((r) => policy.decide(r.input, r.options))];
      got.forEach((d, i) => {
        expect(d).toEqual(want[i]);
        compared++;
        actions.add(`${(d as Decision).tactical}/${(d as Decision).risk}/${(d as Decision).execution}`);
      });
      SYMBOLS.forEach((symbol, i) => {
        const bar = series[i]!.bars[t]!;
        alone.set(symbol, advance(alone.get(symbol)!, { ...bar }, want[i]!, policy.costs).state);
        batched.set(symbol, advance(batched.get(symbol)!, { ...bar }, got[i] as Decision, policy.costs).state);
      });
    }
    expect(compared).toBe(120 * SYMBOLS.length);
    // The comparison means something only if the decisions vary.
    expect(actions.size).toBeGreaterThan(1);
  });

  it('answers an input that fails with its error and decides the others', () => {
    const policy = TacticalPolicy.initial(3);
    const good = (i: number): DecisionInput => ({
      indicators: series[i]!.indicators[50] as Indicators,
      strategic: strategicAt(i),
      bar: { ...series[i]!.bars[50]! },
      agentState: initialAgentState(),
    });
    const bad = { ...good(1), indicators: undefined as unknown as Indicators };
    const out = policy.decideBatch([{ input: good(0) }, { input: bad }, { input: good(2) }]);
    expect(out[1]).toBeInstanceOf(Error);
    expect(out[0]).toEqual(policy.decide(good(0)));
    expect(out[2]).toEqual(policy.decide(good(2)));
  });
});
