import {
  bySymbol,
  counts,
  equityCurves,
  histogram,
  maxDrawdown,
  outcomes,
  parseResultsJsonl,
  reliability,
  ResultsParseError,
} from '../../../src/report';
import { randomResults, result } from './fixtures';

describe('equityCurves', () => {
  const closes = [100, 110, 99, 99];
  it('holds each target position from its close to the next close and pays fee + half-spread on every change', () => {
    const series = [
      result('X', 0, closes[0] as number, { target_position: 1 }),
      result('X', 1, closes[1] as number, { target_position: -0.5 }),
      result('X', 2, closes[2] as number, { target_position: -0.5 }),
      result('X', 3, closes[3] as number, { target_position: null }),
    ];
    const c = 0.0011; // 10 bp + 1 bp (not the defaults: any costs)
    const eq = equityCurves(series, { feeBps: 10, halfSpreadBps: 1 });
    let e = 1 - 1 * c; // buy 1 at the first close
    expect(eq.agents[0]).toBeCloseTo(e, 12);
    e = e * (1 + 0.1) * (1 - 1.5 * c); // +10 % long, then 1 -> -0.5
    expect(eq.agents[1]).toBeCloseTo(e, 12);
    e = e * (1 - 0.5 * (99 / 110 - 1)); // short half while it falls 10 %
    expect(eq.agents[2]).toBeCloseTo(e, 12);
    e = e * 1 * (1 - 0.5 * c); // flat price, null position = 0: close the half
    expect(eq.agents[3]).toBeCloseTo(e, 12);
    expect(eq.turnover).toBeCloseTo(3, 12);
    expect(eq.nullPositions).toBe(1);
    expect(eq.buyHold[3]).toBeCloseTo((1 - c) * 0.99, 12);
    expect(eq.flat).toEqual([1, 1, 1, 1]);
  });

  it('with zero costs and always long equals buy-and-hold without its entry cost', () => {
    const series = closes.map((cl, i) => result('X', i, cl, { target_position: 1 }));
    const eq = equityCurves(series, { feeBps: 0, halfSpreadBps: 0 });
    expect(eq.agents).toEqual(eq.buyHold);
  });
});

describe('maxDrawdown', () => {
  it('is the largest fall from a running peak', () => {
    expect(maxDrawdown([1, 2, 1, 1.5, 0.5, 3])).toBeCloseTo(0.75, 12);
    expect(maxDrawdown([1, 1.1, 1.2])).toBe(0);
  });
});

describe('outcomes', () => {
  it('labels a steady rise BULL, a fall BEAR and a wild stretch VOLATILE against the symbol medians', () => {
    const closes: number[] = [];
    let p = 100;
    // 30 quiet bars, 30 rising, 30 falling, 30 wild.
    for (let i = 0; i < 30; i++) closes.push((p *= i % 2 === 0 ? 1.0001 : 0.9999));
    for (let i = 0; i < 30; i++) closes.push((p *= 1.002));
    for (let i = 0; i < 30; i++) closes.push((p *= 0.998));
    for (let i = 0; i < 30; i++) closes.push((p *= i % 2 === 0 ? 1.03 : 1 / 1.03));
    const series = closes.map((c, i) => result('X', i, c));
    const rule = { horizonBars: 6, volatileMultiple: 1.5, trendMultiple: 1 };
    const byIndex = new Map(outcomes(series, rule).map((o) => [o.index, o.actual]));
    expect(byIndex.get(35)).toBe('BULL');
    expect(byIndex.get(65)).toBe('BEAR');
    expect(byIndex.get(100)).toBe('VOLATILE');
    expect(byIndex.get(10)).toBe('SIDEWAYS');
    expect(byIndex.has(114)).toBe(false); // horizon runs past the data
  });

  it('skips a horizon that spans a gap', () => {
    const series = Array.from({ length: 40 }, (_, i) => result('X', i < 20 ? i : i + 5, 100 + i));
    const idx = outcomes(series, { horizonBars: 6, volatileMultiple: 1.5, trendMultiple: 1 }).map(
      (o) => o.index,
    );
    expect(idx).not.toContain(15);
    expect(idx).toContain(13);
    expect(idx).toContain(20);
  });
});

describe('reliability', () => {
  it('puts each call in the bin of its probability and counts whether the rule bore it out', () => {
    const closes = Array.from({ length: 60 }, (_, i) => 100 * 1.001 ** i); // always rising
    const probs = (p: number) => ({
      BULL: p,
      BEAR: (1 - p) / 3,
      SIDEWAYS: (1 - p) / 3,
      VOLATILE: (1 - p) / 3,
    });
    const series = closes.map((c, i) =>
      result('X', i, c, {
        strategic: {
          bar_close_ts: null,
          regime: i % 2 === 0 ? 'BULL' : 'BEAR',
          regime_probabilities:
            i % 2 === 0 ? probs(0.85) : { ...probs(0.05), BEAR: 0.65, BULL: 0.05 },
          confidence: i % 2 === 0 ? 'HIGH' : 'MEDIUM',
          uncertainty: 0.2,
          similar_patterns: null,
          stale: false,
        },
      }),
    );
    // A constant rise: |R| equals its median, so the strict rule says SIDEWAYS; make BULL reachable.
    const rel = reliability(bySymbol(series), {
      horizonBars: 6,
      volatileMultiple: 1.5,
      trendMultiple: 0.5,
    });
    expect(rel.n).toBe(54);
    const b8 = rel.bins[8];
    const b6 = rel.bins[6];
    expect(b8?.n).toBe(27);
    expect(b8?.observed).toBe(1);
    expect(b6?.n).toBe(27);
    expect(b6?.observed).toBe(0);
    expect(rel.hitRate).toBeCloseTo(0.5, 12);
    expect(rel.ece).toBeCloseTo(0.5 * 0.15 + 0.5 * 0.65, 12);
    expect(rel.byConfidence).toEqual([
      { level: 'MEDIUM', n: 27, hitRate: 0 },
      { level: 'HIGH', n: 27, hitRate: 1 },
    ]);
    expect(rel.baseRates.BULL).toBe(1);
  });
});

describe('histogram', () => {
  it('bins up to the 99.5th percentile and counts the rest as overflow', () => {
    const values = Array.from({ length: 1000 }, (_, i) => i + 1);
    const h = histogram(values, 10);
    expect(h.edges[10]).toBeCloseTo(995.005, 9);
    expect(h.overflow).toBe(5);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(995);
    expect(h.p50).toBe(500.5); // linear interpolation between ranks (src/util/quantile.ts)
    expect(h.p99).toBeCloseTo(990.01, 9);
  });
});

describe('counts and parsing', () => {
  it('counts stale, degraded, warm-up and repeated results', () => {
    const rs = randomResults(['A', 'B'], 200, 7);
    const withRepeat = [...rs, rs[10]!];
    const c = counts(withRepeat);
    expect(c.results).toBe(400);
    expect(c.repeats).toBe(1);
    expect(c.noRegime).toBe(100);
    expect(c.stale).toBe(rs.filter((r) => r.strategic.stale).length);
    expect(c.degraded.get('context_buffer')).toBe(rs.filter((r) => r.degraded.length > 0).length);
  });

  it('parses JSON lines, skips the replay summary line and names the first bad line', () => {
    const rs = randomResults(['A'], 3, 1);
    const text = `${rs.map((r) => JSON.stringify(r)).join('\n')}\n\n{"bars":3,"results":3,"seconds":0.1}\n`;
    expect(parseResultsJsonl(text)).toEqual(rs);
    expect(() => parseResultsJsonl(`${JSON.stringify(rs[0])}\n{"v":1}`)).toThrow(ResultsParseError);
    expect(() => parseResultsJsonl(`${JSON.stringify(rs[0])}\n{"v":1}`)).toThrow(/line 2/);
    expect(() => parseResultsJsonl('nope')).toThrow(/line 1: not JSON/);
  });
});
