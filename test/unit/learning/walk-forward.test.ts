import { annualisedSharpe, bootstrapInterval, maxDrawdown, netReturn, pairedSharpeGain } from '../../../src/learning/stats';
import { initialAgentState } from '../../../src/learning/trading-env';
import { validationScore } from '../../../src/learning/evaluation';
import { emaTrendBaseline, emaTrendBudgetBaseline, mirrorBars, regimeBaseline, rollingWindows, walkForwardSplit } from '../../../src/learning/walk-forward';
import { generateSyntheticMarket } from '../../../src/producers/synthetic-market';
import { SeededRandom } from '../../../src/util/random';
import type { Indicators } from '../../../schemas/integrated-result.schema';

const ind = (ema26: number | null, atr14: number | null): Indicators =>
  ({ sma20: null, ema12: null, ema26, rsi14: null, macd: null, macd_signal: null, macd_hist: null, bb_upper: null, bb_middle: null, bb_lower: null, atr14 });
const bar = (close: number) => ({ ts: 0, open: close, high: close, low: close, close, volume: 1 });
const obs = { tactical: [], risk: [], execution: [], global: [], riskBudget: 1, position: 0 };

describe('walk-forward pieces', () => {
  it('splits without overlap: training part first, test part after it', () => {
    expect(walkForwardSplit(25920)).toEqual({ trainEnd: 17280, testFrom: 17280, testTo: 25919 });
    expect(rollingWindows(100, 5000, 2016)).toEqual([
      [100, 2116],
      [2116, 4132],
    ]);
  });

  it('EMA trend rule: enters beyond the band, holds inside it (hysteresis)', () => {
    const rule = emaTrendBaseline(0.5);
    const at = (close: number, position: number) =>
      rule({ indicators: ind(100, 2), strategic: null, bar: bar(close), state: { ...initialAgentState(), position }, observations: obs }).target_position;
    expect(at(101.5, 0)).toBe(1);
    expect(at(98.5, 0)).toBe(-1);
    expect(at(100.5, 0)).toBe(0); // inside the band, flat stays flat
    expect(at(99.5, 1)).toBe(1); // inside the band, long stays long
    expect(at(100.5, -1)).toBe(-1);
    expect(rule({ indicators: ind(null, null), strategic: null, bar: bar(100), state: initialAgentState(), observations: obs }).target_position).toBe(0);
  });

  it('EMA trend rule under the risk budget: the same direction at the size of the budget, MARKET', () => {
    const rule = emaTrendBudgetBaseline(0.5);
    const at = (close: number, position: number, riskBudget: number) =>
      rule({ indicators: ind(100, 2), strategic: null, bar: bar(close), state: { ...initialAgentState(), position }, observations: { ...obs, riskBudget, position } });
    expect(at(101.5, 0, 0.1)).toEqual({ tactical: 'LONG', risk: 0.1, execution: 'MARKET', target_position: 0.1 });
    expect(at(98.5, 0.1, 0.5)).toEqual({ tactical: 'SHORT', risk: 0.5, execution: 'MARKET', target_position: -0.5 });
    expect(at(100.5, -0.5, 1).target_position).toBe(-1); // inside the band: the direction held, resized to the budget
    expect(at(100.5, 0, 1).target_position).toBe(0);
  });

  it('regime rule: long in BULL, short in BEAR, flat otherwise or without context', () => {
    const ctx = (BULL: number, BEAR: number, SIDEWAYS: number) => ({ regime_probabilities: { BULL, BEAR, SIDEWAYS, VOLATILE: 0 }, uncertainty: 0.2, confidence: 'HIGH' as const, similar_patterns: null });
    const at = (strategic: ReturnType<typeof ctx> | null) => regimeBaseline({ indicators: ind(1, 1), strategic, bar: bar(1), state: initialAgentState(), observations: obs }).target_position;
    expect(at(ctx(0.6, 0.2, 0.2))).toBe(1);
    expect(at(ctx(0.2, 0.6, 0.2))).toBe(-1);
    expect(at(ctx(0.2, 0.2, 0.6))).toBe(0);
    expect(at(null)).toBe(0);
  });

  it('metrics and bootstrap intervals: correct values, seeded, and intervals that bracket the estimate', () => {
    expect(netReturn([0.1, -0.1])).toBeCloseTo(-0.01, 12);
    expect(maxDrawdown([0.1, -0.5, 0.2])).toBeCloseTo(0.5, 12);
    expect(annualisedSharpe([0, 0, 0])).toBe(0);
    const rng = new SeededRandom(2);
    const r = Array.from({ length: 2000 }, () => 0.0005 + rng.normal() * 0.002);
    const a = bootstrapInterval(r, (x) => annualisedSharpe(x), { samples: 300 });
    expect(a).toEqual(bootstrapInterval(r, (x) => annualisedSharpe(x), { samples: 300 }));
    expect(a.lo).toBeLessThan(a.estimate);
    expect(a.hi).toBeGreaterThan(a.estimate);
    expect(a.lo).toBeGreaterThan(0); // a real positive drift is detected
    const same = pairedSharpeGain(r, r, { samples: 200 });
    expect([same.estimate, same.lo, same.hi]).toEqual([0, 0, 0]);
  });
  it('mirrors a series: log returns negated, first open kept, bars still valid, mirror of the mirror is the series', () => {
    const bars = generateSyntheticMarket({ seed: 7, bars: 600, regimeSequence: ['BULL', 'BEAR'], segmentBars: [120, 240] }).bars;
    const m = mirrorBars(bars);
    expect(m).toHaveLength(bars.length);
    expect(m[0]?.open).toBeCloseTo(bars[0]?.open as number, 9);
    for (let i = 0; i < bars.length; i++) {
      const b = bars[i]!;
      const x = m[i]!;
      expect([x.ts, x.volume]).toEqual([b.ts, b.volume]);
      expect(x.low).toBeLessThanOrEqual(Math.min(x.open, x.close));
      expect(x.high).toBeGreaterThanOrEqual(Math.max(x.open, x.close));
      expect(Math.log(x.close / x.open)).toBeCloseTo(-Math.log(b.close / b.open), 9);
      expect(Math.log(x.high / x.low)).toBeCloseTo(Math.log(b.high / b.low), 9);
    }
    // The BULL segment that rises becomes a fall of the same size.
    const last = bars.length - 1;
    expect(Math.log(m[last]!.close / m[0]!.open)).toBeCloseTo(-Math.log(bars[last]!.close / bars[0]!.open), 9);
    mirrorBars(m).forEach((b, i) => {
      expect(b.close).toBeCloseTo(bars[i]!.close, 9);
      expect(b.high).toBeCloseTo(bars[i]!.high, 9);
    });
    expect(mirrorBars([])).toEqual([]);
  });

  it('checkpoint score: mean minus one (stratified) standard error, so a steady iterate beats a lucky one', () => {
    expect(validationScore([2])).toBe(2);
    expect(validationScore([1, 3])).toBeCloseTo(1, 12); // mean 2, sd √2, s.e. 1
    const steady = validationScore([2, 2, 2, 2]);
    const lucky = validationScore([16, -2, -2, -2]); // a higher mean (2.5), carried by one symbol
    expect(steady).toBe(2);
    expect(lucky).toBeLessThan(steady);
    expect(validationScore([])).toBeNaN();
    // Strata: the gap between a strong-trend market and a real symbol is not noise; the spread inside each is.
    expect(validationScore([150, 2, 2, 2], ['trend', 'real', 'real', 'real'])).toBe(39);
    const s = validationScore([150, 160, 1, 3], ['trend', 'trend', 'real', 'real']);
    expect(s).toBeCloseTo(78.5 - Math.sqrt(0.25 * (50 / 2) + 0.25 * (2 / 2)), 12); // w = 1/2, s² = 50 and 2, n = 2
    expect(validationScore([150, 160, 1, 3])).toBeLessThan(s);
  });
});
