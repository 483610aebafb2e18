import {
  applyIsotonic,
  fitIsotonic,
  fitLogisticNewton,
} from '../../../src/strategic/confidence-tradeoff';
import {
  selectOnFirstHalves,
  volatileRatio,
  volatileRuleCandidates,
  type VolatileRule,
  type VolatilityBar,
} from '../../../src/strategic/regime-eval';
import { SeededRandom } from '../../../src/util/random';

describe('fitLogisticNewton', () => {
  it('recovers the weights of a seeded logistic model, and sample weights shift the fit', () => {
    const rng = new SeededRandom(3);
    const xs: Float64Array[] = [];
    const ys: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const x = Float64Array.from([1, rng.normal(), rng.normal()]);
      xs.push(x);
      ys.push(rng.next() < 1 / (1 + Math.exp(-(0.5 + 1.5 * x[1]! - 2 * x[2]!))) ? 1 : 0);
    }
    const w = fitLogisticNewton(xs, ys, undefined, 0);
    expect(w[0]).toBeCloseTo(0.5, 1);
    expect(w[1]).toBeCloseTo(1.5, 1);
    expect(w[2]).toBeCloseTo(-2, 1);
    // Weighting the rows with y = 1 three times raises the intercept by about ln 3.
    const weighted = fitLogisticNewton(
      xs,
      ys,
      ys.map((y) => (y === 1 ? 3 : 1)),
      0,
    );
    expect(weighted[0]! - w[0]!).toBeCloseTo(Math.log(3), 1);
    expect(() => fitLogisticNewton([], [])).toThrow(RangeError);
  });
});

describe('fitIsotonic', () => {
  it('is monotone and pools violators', () => {
    const map = fitIsotonic([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1]);
    expect(map.values).toEqual([0, 0.5, 1]);
    expect(applyIsotonic(map, 0.05)).toBe(0);
    expect(applyIsotonic(map, 0.25)).toBe(0.5);
    expect(applyIsotonic(map, 0.9)).toBe(1);
  });
});

describe('VOLATILE definitions on halves', () => {
  const bar = (call: number, lv48: number, lv12: number, forwardVol: number): VolatilityBar => ({
    call,
    lv48,
    lv12,
    lv6: lv12,
    forwardVol,
  });

  it('compares only non-trend calls and skips bars without a forward window', () => {
    const bars = [bar(3, 1, 1, 2), bar(2, 0, 0, 1), bar(0, 2, 2, 100), bar(3, 1, 1, Number.NaN)];
    expect(volatileRatio(bars, volatileRuleCandidates()[0]!)).toBe(2);
    expect(volatileRatio([bar(2, 0, 0, 1)], volatileRuleCandidates()[0]!)).toBeNull();
  });

  it('chooses on the first halves only', () => {
    // First halves: rule B separates; second halves: only rule A does. The choice must be B.
    const a: VolatileRule = { name: 'A', volatile: (b) => b.lv48 > 0.5 };
    const b: VolatileRule = { name: 'B', volatile: (b) => b.lv12 > 0.5 };
    const half = (n: number, sep: 'A' | 'B'): VolatilityBar[] =>
      Array.from({ length: n }, (_, i) => {
        const hot = i % 2 === 0;
        return sep === 'A'
          ? bar(2, hot ? 1 : 0, hot ? 0 : 1, hot ? 3 : 1)
          : bar(2, hot ? 0 : 1, hot ? 1 : 0, hot ? 3 : 1);
      });
    const symbol = [...half(100, 'B'), ...half(100, 'A')];
    const chosen = selectOnFirstHalves([symbol, symbol], [a, b], 24);
    expect(chosen.rule.name).toBe('B');
    expect(chosen.first[0]).toBe(3);
    expect(chosen.second[0]).toBeCloseTo(1 / 3, 10);
  });
});
