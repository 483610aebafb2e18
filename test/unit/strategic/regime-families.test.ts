import type { Bar } from '../../../schemas/bar.schema';
import {
  MARKET_FAMILIES,
  generateFamilyMarket,
  hasAccuracyTarget,
} from '../../../src/producers/regime-families';
import {
  EMBEDDING_DIM,
  PatternStore,
  RegimeDetector,
  StrategicAnalyzer,
} from '../../../src/strategic';
import {
  figures,
  scoreFamily,
  scoredForTargets,
  type ScoredBar,
} from '../../../src/strategic/regime-eval';
import { SeededRandom } from '../../../src/util/random';
import { viaJson } from '../../fixtures/json';

/**
 * The regime targets of issue 10 on seeds the model was not fitted on (fitting uses 101–108 and
 * 201–224, the report 5001–5006; these are 7001–7003), smaller than the report's run to stay fast.
 * The pattern store is skipped: its weight in the confidence is 0 (see docs/regime.md), so the
 * outputs are the same without it.
 */
const SEEDS = [7001, 7002, 7003];
const BARS = 3000;

const scored = new Map<string, ScoredBar[]>();
beforeAll(() => {
  for (const f of MARKET_FAMILIES)
    scored.set(f.name, scoreFamily(f, { seeds: SEEDS, bars: BARS, patterns: false }));
});

const mean = (rows: ScoredBar[]): number => rows.reduce((a, r) => a + r.pCorrect, 0) / rows.length;

describe('regime model on market families', () => {
  it.each(MARKET_FAMILIES.map((f) => [f.name, f] as const))(
    '%s: at most 1 point below the plain rule on settled bars',
    (_, family) => {
      const f = figures(scoredForTargets(scored.get(family.name)!));
      expect(f.bars).toBeGreaterThan(3000);
      expect(f.accuracy).toBeGreaterThanOrEqual(f.plainRuleAccuracy - 0.01);
      // Held-out families with an accuracy target must also reach 92% (the others: no floor).
      expect(f.accuracy).toBeGreaterThanOrEqual(family.heldOut && hasAccuracyTarget(family) ? 0.92 : 0);
    },
  );

  it.each(MARKET_FAMILIES.filter((f) => f.heldOut).map((f) => [f.name, f] as const))(
    'held-out %s: HIGH right at least 95%%, MEDIUM at least 75%%',
    (_, family) => {
      const f = figures(scoredForTargets(scored.get(family.name)!));
      expect(f.levelShare.HIGH).toBeGreaterThan(0);
      expect(f.highAccuracy!).toBeGreaterThanOrEqual(0.95);
      expect(f.mediumAccuracy!).toBeGreaterThanOrEqual(0.75);
      // Settled bars: ECE near 0.05 (report: 0.046–0.061), bounded here loosely; the weak family
      // included since the confidence model reads the symbol's ambiguity (report: 0.050, was 0.112).
      expect(f.ece).toBeLessThanOrEqual(0.075);
      // With an accuracy target, on all bars after warm-up (switches included) the error is smaller
      // (report: 0.017–0.023); without one, no bound beyond the settled one above.
      expect(figures(scored.get(family.name)!).ece).toBeLessThanOrEqual(hasAccuracyTarget(family) ? 0.05 : 1);
    },
  );

  it('reports a lower probability where evidence is thin: first windows, after a switch, a jump, weak trends', () => {
    const held = MARKET_FAMILIES.filter((f) => f.heldOut).flatMap((f) => scored.get(f.name)!);
    const later = held.filter((r) => r.evidence.baselineSamples >= 4);
    const settled = later.filter((r) => r.settled);
    expect(mean(held.filter((r) => r.evidence.baselineSamples < 4))).toBeLessThan(
      mean(later) - 0.1,
    );
    expect(mean(later.filter((r) => r.sinceSwitch < 12))).toBeLessThan(mean(settled) - 0.1);
    expect(mean(settled.filter((r) => r.evidence.jumpInWindow))).toBeLessThan(
      mean(settled.filter((r) => !r.evidence.jumpInWindow)),
    );
    const trend = (name: string): ScoredBar[] =>
      scored.get(name)!.filter((r) => r.settled && r.truth < 2);
    expect(mean(trend('weak-garch-jumps'))).toBeLessThan(mean(trend('garch-clustered')) - 0.1);
  });
});

describe('a day with a 10% rise at ordinary volatility', () => {
  it('is not called SIDEWAYS with HIGH confidence', () => {
    // 30 calm days, then one day (48 bars) whose drift adds up to +10% with the same volatility.
    const rng = new SeededRandom(11);
    const sigma = 0.006;
    const bars: Bar[] = [];
    let price = 100;
    for (let i = 0; i < 30 * 48 + 48; i++) {
      const drift = i >= 30 * 48 ? Math.log(1.1) / 48 : 0;
      const open = price;
      price = open * Math.exp(drift + sigma * rng.normal());
      bars.push({
        symbol: 'DAY',
        timeframe: '30m',
        ts: Date.UTC(2024, 0, 1) + i * 1_800_000,
        open,
        high: Math.max(open, price),
        low: Math.min(open, price),
        close: price,
        volume: 1,
      });
    }
    expect(bars[bars.length - 1]!.close / bars[bars.length - 49]!.close).toBeGreaterThan(1.08);
    const analyzer = new StrategicAnalyzer({ store: new PatternStore({ dim: EMBEDDING_DIM }) });
    const outs = bars.map((b) => analyzer.onBar(b));
    const last = outs[outs.length - 1]!;
    expect(last.regime === 'SIDEWAYS' && last.confidence === 'HIGH').toBe(false);
    // The window's drift t-statistic is about 2.3: BULL is likely but not certain.
    expect(last.regime_probabilities!.BULL).toBeGreaterThan(0.3);
    // If it is called SIDEWAYS at all, then only with LOW confidence.
    expect(last.regime === 'SIDEWAYS' ? last.confidence : 'LOW').toBe('LOW');
  });
});

describe('RegimeDetector state', () => {
  it('continues bit for bit after toJSON/fromJSON', () => {
    const market = generateFamilyMarket(MARKET_FAMILIES[4]!, 3, 400);
    const a = new RegimeDetector();
    let b: RegimeDetector | null = null;
    const x = new Float64Array(11);
    const y = new Float64Array(11);
    // What the restored detector showed, and what the original showed, at each step after the split.
    const restored: unknown[] = [];
    const original: unknown[] = [];
    for (let i = 1; i < market.bars.length; i++) {
      const r = Math.log(market.bars[i]!.close / market.bars[i - 1]!.close);
      a.update(r);
      if (i === 200) b = RegimeDetector.fromJSON(viaJson(a.toJSON()));
      else b?.update(r);
      if (b !== null && a.inputs(x)) {
        const ready = b.inputs(y);
        restored.push({ i, ready, inputs: Array.from(y), jump: b.jumpInWindow, ambiguity: b.ambiguity });
        original.push({ i, ready: true, inputs: Array.from(x), jump: a.jumpInWindow, ambiguity: a.ambiguity });
      }
    }
    expect(restored.length).toBeGreaterThan(100);
    expect(restored).toEqual(original);
  });

  it('restores an analyzer state saved before the detector existed, continuing with the same calls', () => {
    const market = generateFamilyMarket(MARKET_FAMILIES[0]!, 5, 700);
    const a = new StrategicAnalyzer({ store: new PatternStore({ dim: EMBEDDING_DIM }) });
    market.bars.slice(0, 600).forEach((bar) => a.onBar(bar));
    const state = a.toJSON(market.bars[0]!.symbol)!;
    delete state.detector;
    const b = StrategicAnalyzer.fromJSON([state], {
      store: new PatternStore({ dim: EMBEDDING_DIM }),
    });
    let same = 0;
    for (const bar of market.bars.slice(600))
      if (a.onBar(bar).regime === b.onBar(bar).regime) same++;
    // The rebuilt detector has no clipping history, so a few calls may differ at first.
    expect(same).toBeGreaterThanOrEqual(95);
  });
});
