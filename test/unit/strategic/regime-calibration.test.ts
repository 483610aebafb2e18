import type { ConfidenceLevel, RegimeName } from '../../../schemas/strategic-context.schema';
import { REGIME_NAMES, StrategicAnalyzer } from '../../../src/strategic';
import { labelled30mMarket } from '../../../src/strategic/synthetic-eval';

/**
 * Held-out evaluation of regime, probabilities and confidence. The seeds (9001–9006) and the
 * generator's default parameter ranges (drift 0.4–0.8 σ per 5m bar, volatility ratio 2.5–4) were
 * not used to fit anything: the model was fitted on seeds 101–124 with wider ranges.
 */
const HELD_OUT_SEEDS = [9001, 9002, 9003, 9004, 9005, 9006];
const LEVELS: ConfidenceLevel[] = ['HIGH', 'MEDIUM', 'LOW'];

interface Scored {
  ok: boolean;
  pmax: number;
  level: ConfidenceLevel;
  pure: boolean;
  truth: RegimeName;
  call: RegimeName;
}

function run(): Scored[] {
  const analyzer = new StrategicAnalyzer();
  const scored: Scored[] = [];
  for (const seed of HELD_OUT_SEEDS) {
    const market = labelled30mMarket({
      seed,
      symbol: `HELD${seed}`,
      bars: 24_000,
      segmentBars: [576, 1440],
      driftSigma: [0.4, 0.8],
      volatilityRatio: [2.5, 4],
      baseVolatility: 0.001 + 0.0005 * (seed % 5),
    });
    market.bars.forEach((bar, i) => {
      const out = analyzer.onBar(bar);
      if (out.regime === null || out.regime_probabilities === null || out.confidence === null) return;
      const probs = Object.values(out.regime_probabilities);
      expect(Math.abs(probs.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-9);
      scored.push({
        ok: out.regime === market.labels[i],
        pmax: Math.max(...probs),
        level: out.confidence,
        pure: market.pure[i] as boolean,
        truth: market.labels[i] as RegimeName,
        call: out.regime,
      });
    });
  }
  return scored;
}

function ece(rows: Scored[]): number {
  const conf = new Array<number>(10).fill(0);
  const acc = new Array<number>(10).fill(0);
  for (const r of rows) {
    const b = Math.min(9, Math.floor(r.pmax * 10));
    conf[b] = (conf[b] as number) + r.pmax;
    acc[b] = (acc[b] as number) + (r.ok ? 1 : 0);
  }
  return conf.reduce((sum, c, b) => sum + Math.abs(c - (acc[b] as number)), 0) / rows.length;
}

describe('regime detection and confidence on held-out synthetic markets', () => {
  let scored: Scored[];
  beforeAll(() => {
    scored = run();
  });

  it('calls the regime right on at least 95% of bars whose whole 48-bar window lies in one regime', () => {
    const pure = scored.filter((s) => s.pure);
    const matrix = REGIME_NAMES.map(() => REGIME_NAMES.map(() => 0));
    for (const s of pure) {
      const row = matrix[REGIME_NAMES.indexOf(s.truth)] as number[];
      row[REGIME_NAMES.indexOf(s.call)] = (row[REGIME_NAMES.indexOf(s.call)] as number) + 1;
    }
    const accuracy = pure.filter((s) => s.ok).length / pure.length;
    const table = ['truth \\ call', ...REGIME_NAMES].join('\t') + '\n' +
      matrix.map((row, i) => [REGIME_NAMES[i], ...row].join('\t')).join('\n');
    console.log(`confusion matrix (${pure.length} bars, accuracy ${accuracy.toFixed(4)})\n${table}`);
    expect(pure.length).toBeGreaterThan(10_000);
    expect(accuracy).toBeGreaterThanOrEqual(0.95);
    // Every regime is recognised, not just the majority one.
    matrix.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      expect((row[i] as number) / total).toBeGreaterThan(0.9);
    });
  });

  it('has calibrated regime probabilities on every bar after warm-up (ECE over 10 bins at most 0.05)', () => {
    const all = ece(scored);
    // On clean windows alone the model is slightly under-confident (it was fitted on all bars,
    // switches included); reported, and bounded loosely so a regression still shows.
    const pure = ece(scored.filter((s) => s.pure));
    console.log(`ECE all bars after warm-up ${all.toFixed(4)}, windows inside one regime ${pure.toFixed(4)}`);
    expect(all).toBeLessThanOrEqual(0.05);
    expect(pure).toBeLessThanOrEqual(0.07);
  });

  it('uses all three confidence levels, HIGH right at least 95% of the time, MEDIUM less, LOW least', () => {
    const accuracy = LEVELS.map((level) => {
      const rows = scored.filter((s) => s.level === level);
      return { level, n: rows.length, accuracy: rows.filter((s) => s.ok).length / rows.length };
    });
    console.log(`accuracy per confidence level (all bars after warm-up): ${JSON.stringify(accuracy)}`);
    for (const a of accuracy) expect(a.n).toBeGreaterThan(100);
    const [high, medium, low] = accuracy.map((a) => a.accuracy) as [number, number, number];
    expect(high).toBeGreaterThanOrEqual(0.95);
    expect(medium).toBeLessThan(high);
    expect(low).toBeLessThan(medium);
  });
});
