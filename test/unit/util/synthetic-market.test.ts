import { BarSchema } from '../../../schemas/bar.schema';
import { generateSyntheticMarket } from '../../../src/producers/synthetic-market';
import { SeededRandom } from '../../../src/util/random';
import { viaJson } from '../../fixtures/json';

describe('generateSyntheticMarket', () => {
  it('gives the same bars for the same seed and different bars for another', () => {
    const a = generateSyntheticMarket({ seed: 3, bars: 500 });
    const b = generateSyntheticMarket({ seed: 3, bars: 500 });
    const c = generateSyntheticMarket({ seed: 4, bars: 500 });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a.bars)).not.toBe(JSON.stringify(c.bars));
  });
  it('produces bars that pass the wire schema, with a label each', () => {
    const m = generateSyntheticMarket({ seed: 5, bars: 3000, gapProbability: 0.02 });
    expect(m.bars.length).toBe(m.labels.length);
    expect(m.bars.length).toBeLessThan(3000);
    for (const bar of m.bars) expect(BarSchema.safeParse(bar).success).toBe(true);
  });
  it('starts every segment after the first on a 30m boundary', () => {
    const m = generateSyntheticMarket({ seed: 6, bars: 5000, startTs: Date.UTC(2024, 0, 1, 0, 10) });
    for (const s of m.segments.slice(1)) expect(s.startTs % 1_800_000).toBe(0);
  });
  it('gives VOLATILE segments the requested volatility ratio', () => {
    const m = generateSyntheticMarket({ seed: 7, bars: 20000, volatilityRatio: 3, regimes: ['SIDEWAYS', 'VOLATILE'] });
    const std = (regime: string): number => {
      const r: number[] = [];
      m.bars.forEach((b, i) => { if (m.labels[i] === regime) r.push(Math.log(b.close / b.open)); });
      const mean = r.reduce((s, x) => s + x, 0) / r.length;
      return Math.sqrt(r.reduce((s, x) => s + (x - mean) ** 2, 0) / r.length);
    };
    expect(std('VOLATILE') / std('SIDEWAYS')).toBeGreaterThan(2.7);
    expect(std('VOLATILE') / std('SIDEWAYS')).toBeLessThan(3.3);
  });
});

describe('SeededRandom', () => {
  it('resumes exactly from its saved state', () => {
    const r = new SeededRandom(42);
    for (let i = 0; i < 11; i++) r.normal();
    const copy = SeededRandom.fromJSON(viaJson(r.toJSON()));
    for (let i = 0; i < 100; i++) expect(copy.normal()).toBe(r.normal());
  });
});
