import { generateSyntheticMarket } from '../../../src/producers/synthetic-market';
import { strategicInputs } from '../../../src/learning/strategic-series';
import { decodeActions, initialAgentState, RISK_SIZES, TACTICAL_ACTIONS, EXECUTION_ACTIONS } from '../../../src/learning/trading-env';
import { buildObservations, riskBudget, SimpleIndicators, type StrategicInput } from '../../../src/learning/features';
import { TacticalPolicy } from '../../../src/learning/policy';

const market = generateSyntheticMarket({ seed: 7, bars: 2400, regimeSequence: ['BULL', 'BEAR'], segmentBars: [576, 864] });
const bars = market.bars.map(({ ts, open, high, low, close, volume }) => ({ ts, open, high, low, close, volume }));

describe('strategic view of a 5m series', () => {
  const full = strategicInputs('SYN', bars);

  it('is null while the analyzer warms up, then present', () => {
    const first = full.findIndex((x) => x !== null);
    expect(first).toBeGreaterThan(200); // ~49 30m bars of warm-up
    expect(full.slice(first).every((x) => x !== null)).toBe(true);
    expect(full[full.length - 1]?.regime_probabilities).not.toBeNull();
  });

  it('uses no bar after the 5m bar it is given to (a truncated series gives the same prefix)', () => {
    for (const cut of [1000, 1003, 1006, 1500]) {
      const prefix = strategicInputs('SYN', bars.slice(0, cut));
      expect(prefix).toEqual(full.slice(0, cut));
    }
  });

  it('changes only on the 5m bar that closes a 30m bar (ts ≡ 25 min mod 30)', () => {
    const minutes: number[] = [];
    for (let i = 1; i < full.length; i++) if (full[i] !== full[i - 1]) minutes.push(((bars[i] as { ts: number }).ts % 1_800_000) / 60_000);
    expect(minutes.length).toBeGreaterThan(0);
    expect(new Set(minutes)).toEqual(new Set([25]));
  });
});

describe('coherent decisions', () => {
  it('a direction with risk size 0 is FLAT, and FLAT never carries a size', () => {
    for (let t = 0; t < TACTICAL_ACTIONS.length; t++)
      for (let r = 0; r < RISK_SIZES.length; r++)
        for (let e = 0; e < EXECUTION_ACTIONS.length; e++) {
          const d = decodeActions([t, r, e], { riskBudget: 1, position: 0 });
          expect(d.tactical === 'FLAT').toBe(d.risk === 0);
          expect(d.target_position === 0).toBe(d.tactical === 'FLAT');
          expect(Math.abs(d.target_position)).toBe(d.risk); // FLAT: both 0
        }
    expect(decodeActions([0, 0, 0], { riskBudget: 1, position: 0 }).tactical).toBe('FLAT');
    expect(decodeActions([2, 3, 1], { riskBudget: 1, position: 0 })).toEqual({ tactical: 'SHORT', risk: 1, execution: 'LIMIT', target_position: -1 });
  });

  it('WAIT defers only a resize in the direction held: a change of direction is traded as LIMIT', () => {
    const WAIT = EXECUTION_ACTIONS.indexOf('WAIT');
    const at = (tactical: 'LONG' | 'FLAT' | 'SHORT', risk: number, position: number) =>
      decodeActions([TACTICAL_ACTIONS.indexOf(tactical), RISK_SIZES.indexOf(risk as 0), WAIT], { riskBudget: 1, position });
    expect(at('LONG', 1, 0.25)).toEqual({ tactical: 'LONG', risk: 1, execution: 'WAIT', target_position: 1 }); // resize: deferred
    expect(at('FLAT', 0, 0).execution).toBe('WAIT'); // nothing held, nothing wanted
    expect(at('SHORT', 0.5, -1).execution).toBe('WAIT');
    expect(at('LONG', 0.5, 0).execution).toBe('LIMIT'); // opening
    expect(at('SHORT', 0.5, 1).execution).toBe('LIMIT'); // reversing
    expect(at('FLAT', 0, -0.5).execution).toBe('LIMIT'); // closing
    expect(at('LONG', 0, 0.5)).toEqual({ tactical: 'FLAT', risk: 0, execution: 'LIMIT', target_position: 0 }); // size 0 is FLAT: closing
    // MARKET and LIMIT are never changed.
    for (const position of [-1, 0, 0.5])
      for (const e of ['MARKET', 'LIMIT'] as const)
        expect(decodeActions([0, 3, EXECUTION_ACTIONS.indexOf(e)], { riskBudget: 1, position }).execution).toBe(e);
  });
});

describe('risk budget (a rule: size capped by the strategic confidence tier)', () => {
  const context = (confidence: 'LOW' | 'MEDIUM' | 'HIGH' | null): StrategicInput => ({ regime_probabilities: null, uncertainty: null, confidence, similar_patterns: null });

  it('caps the size at 1 / 0.5 / 0.1 for HIGH / MEDIUM / LOW and at 0.1 without context', () => {
    expect(riskBudget(context('HIGH'))).toBe(1);
    expect(riskBudget(context('MEDIUM'))).toBe(0.5);
    expect(riskBudget(context('LOW'))).toBe(0.1);
    expect(riskBudget(context(null))).toBe(0.1);
    expect(riskBudget(null)).toBe(0.1);
    expect(decodeActions([0, 3, 0], { riskBudget: 0.1, position: 0 })).toEqual({ tactical: 'LONG', risk: 0.1, execution: 'MARKET', target_position: 0.1 });
    expect(decodeActions([2, 2, 1], { riskBudget: 0.5, position: 0 })).toEqual({ tactical: 'SHORT', risk: 0.5, execution: 'LIMIT', target_position: -0.5 });
    expect(decodeActions([2, 1, 1], { riskBudget: 0.5, position: 0 }).target_position).toBe(-0.25); // below the cap: unchanged
    expect(decodeActions([0, 0, 0], { riskBudget: 0.1, position: 0 }).tactical).toBe('FLAT');
  });

  it('is applied in the observations, so live decisions and backtests take it alike', () => {
    const bar = { open: 100, high: 101, low: 99, close: 100, volume: 10 };
    const indicators = new SimpleIndicators().update(101, 99, 100);
    const state = { position: 0, entryPrice: null, equity: 1, peakEquity: 1, rangeEma: 0.01, volumeEma: 10, lastOrderUnfilled: false };
    expect(buildObservations(indicators, context('LOW'), bar, state).riskBudget).toBe(0.1);
    expect(buildObservations(indicators, context('HIGH'), bar, state).riskBudget).toBe(1);
    // A policy made to always choose LONG at full size (large output biases): capped by the tier.
    const weights = TacticalPolicy.initial(1).actorWeights();
    const bias = (actor: number, action: number): void => {
      const w = weights[actor]!;
      const outputs = w.sizes[w.sizes.length - 1]!;
      w.data[w.data.length - outputs + action] = 100;
    };
    bias(0, 0); // tactical: LONG
    bias(1, 3); // risk: size 1
    const policy = new TacticalPolicy('test', weights);
    const low = policy.decideObservations(buildObservations(indicators, context('LOW'), bar, state));
    expect(low).toMatchObject({ tactical: 'LONG', risk: 0.1, target_position: 0.1, actionIndices: { risk: 3 } });
    expect(policy.decideObservations(buildObservations(indicators, context('MEDIUM'), bar, state)).target_position).toBe(0.5);
    expect(policy.decideObservations(buildObservations(indicators, context('HIGH'), bar, state)).target_position).toBe(1);
    const live = policy.decide({ indicators, strategic: context('LOW'), bar, agentState: initialAgentState() });
    expect(live.target_position).toBe(0.1);
    // The held position travels in the observations too: a WAIT that would keep a long open while
    // tactical says SHORT is traded as LIMIT, in a backtest decision and a live one alike.
    bias(0, 2); // tactical: SHORT beats LONG now
    bias(2, 2); // execution: WAIT
    weights[0]!.data[weights[0]!.data.length - 3] = 0;
    const waiting = new TacticalPolicy('test', weights);
    const held = { ...state, position: 0.5, entryPrice: 100 };
    expect(buildObservations(indicators, context('HIGH'), bar, held).position).toBe(0.5);
    expect(waiting.decideObservations(buildObservations(indicators, context('HIGH'), bar, held))).toMatchObject({ tactical: 'SHORT', execution: 'LIMIT', actionIndices: { execution: 2 } });
    expect(waiting.decideObservations(buildObservations(indicators, context('HIGH'), bar, { ...state, position: -0.5, entryPrice: 100 })).execution).toBe('WAIT');
    const longState = { ...initialAgentState(), position: 0.5, entryPrice: 100, lastClose: 100, rangeEma: 0.01 };
    expect(waiting.decide({ indicators, strategic: context('HIGH'), bar, agentState: longState }).execution).toBe('LIMIT');
  });
});
