/** The eval report draws with the report's chart kit (src/report/svg.ts), like the replay report. */
import { renderReport, type ReportInput } from '../../../src/cli/eval-report-html';
import type { Interval } from '../../../src/learning/stats';
import { BASELINES, type MarketEvaluation, type MetricsWithIntervals, type RuleName } from '../../../src/learning/walk-forward';
import { CHART_CSS } from '../../../src/report/svg';

const RULES: RuleName[] = ['policy', ...BASELINES];
const iv = (estimate: number): Interval => ({ estimate, lo: estimate - 0.1, hi: estimate + 0.1 });
const metrics = (): MetricsWithIntervals => ({ netReturn: iv(0.1), sharpe: iv(1), maxDrawdown: iv(-0.05), turnover: iv(3), timeInMarket: iv(0.5), bars: 5000 });

function market(name: string, bars: number): MarketEvaluation {
  const equity = Object.fromEntries(RULES.map((r, k) => [r, Array.from({ length: bars }, (_, i) => 1 + 0.1 * Math.sin(i / (50 + k)) + i * 1e-5)])) as Record<RuleName, number[]>;
  return {
    name,
    bars,
    firstTs: Date.UTC(2025, 0, 1),
    lastTs: Date.UTC(2025, 0, 1) + bars * 300_000,
    metrics: Object.fromEntries(RULES.map((r) => [r, metrics()])) as Record<RuleName, MetricsWithIntervals>,
    policyGain: Object.fromEntries(BASELINES.map((r) => [r, iv(0.2)])) as MarketEvaluation['policyGain'],
    sizeByConfidence: { HIGH: { mean: 0.5, decisions: 3 }, MEDIUM: { mean: 0.3, decisions: 2 }, LOW: { mean: null, decisions: 0 }, none: { mean: 0, decisions: 1 } },
    equity,
    windows: [],
  };
}

function input(): ReportInput {
  return {
    title: 'Eval <test>',
    generated: '2026-12-08',
    model: 'v1',
    costs: { fee: 0.001 },
    findings: ['a finding'],
    targets: [{ name: 'target', met: true, detail: 'detail' }],
    real: [market('BTCUSDT', 5000)],
    rolling: [],
    synthetic: [{ family: 'trend', description: 'up', markets: [market('trend seed 1', 300)] }],
    sizeByConfidence: [
      { label: 'HIGH', value: 0.5, n: 3 },
      { label: 'LOW', value: null, n: 0 },
    ],
  };
}

describe('renderReport (eval)', () => {
  const html = renderReport(input());
  const svgs = html.match(/<svg [^>]*>[\s\S]*?<\/svg>/g) ?? [];

  it('draws every chart with the kit: its svg tag, grid and tick classes, and its style', () => {
    // one bar chart, equity and drawdown per market (two markets)
    expect(svgs).toHaveLength(5);
    for (const svg of svgs) expect(svg).toMatch(/^<svg class="chart [a-z-]+" role="img" aria-label="[^"]+" viewBox="0 0 \d+ \d+"/);
    expect(svgs.filter((s) => s.includes('class="chart line-chart"'))).toHaveLength(4);
    for (const svg of svgs.filter((s) => s.includes('line-chart'))) expect(svg).toContain('<line class="grid"');
    expect(html).toContain(CHART_CSS);
    expect(html).not.toMatch(/NaN|undefined|Infinity/);
  });

  it('bounds a long curve to a few points per pixel column, within the plot area', () => {
    const equity = svgs[1]!;
    const paths = [...equity.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1]!);
    expect(paths).toHaveLength(RULES.length);
    for (const d of paths) {
      const points = [...d.matchAll(/[ML]([\d.-]+) ([\d.-]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
      expect(points.length).toBeGreaterThan(100);
      expect(points.length).toBeLessThan(4 * 560); // 5,000 bars, 500 px wide
      for (const [x, y] of points) {
        expect(x).toBeGreaterThanOrEqual(52);
        expect(x).toBeLessThanOrEqual(552);
        expect(y).toBeGreaterThanOrEqual(20);
        expect(y).toBeLessThanOrEqual(182);
      }
    }
  });

  it('escapes text and draws bars of non-negative height, n/a for a level without decisions', () => {
    expect(html).toContain('<title>Eval &lt;test&gt;</title>');
    const bars = svgs[0]!;
    for (const m of bars.matchAll(/height="([^"]+)"/g)) expect(Number(m[1])).toBeGreaterThanOrEqual(0);
    expect(bars).toContain('>n/a<');
  });
});
