import type { Interval } from '../learning/stats';
import type { MarketEvaluation, MetricsWithIntervals, RuleName } from '../learning/walk-forward';
import { CHART_CSS, downsample, esc, frame, linear, pathD, svgOpen, yAxis } from '../report/svg';

/**
 * The self-contained HTML report of `npm run eval`: inline SVG charts drawn with the report's kit
 * (src/report/svg.ts), no script, no network.
 */

const COLORS: Record<RuleName, string> = {
  policy: '#d62728',
  flat: '#7f7f7f',
  buyAndHold: '#1f77b4',
  emaTrend: '#2ca02c',
  emaTrendBudget: '#98df8a',
  macdPolicySizing: '#9467bd',
  regime: '#ff7f0e',
};
const LABELS: Record<RuleName, string> = {
  policy: 'policy (greedy)',
  flat: 'FLAT',
  buyAndHold: 'buy-and-hold',
  emaTrend: 'EMA-26 trend, hysteresis',
  emaTrendBudget: 'EMA-26 trend, sized by the risk budget',
  macdPolicySizing: 'MACD crossover, policy sizing',
  regime: 'regime rule (BULL long, BEAR short)',
};

const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');
const num = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '–');

function iv(i: Interval, f: (x: number) => string): string {
  return `${f(i.estimate)} <small>[${f(i.lo)}, ${f(i.hi)}]</small>`;
}

function drawdown(equity: readonly number[]): number[] {
  let peak = -Infinity;
  return equity.map((e) => {
    peak = Math.max(peak, e);
    return e / peak - 1;
  });
}

/** Curves of one value per bar, drawn with the report kit (bar index on x, at most ~2 points a pixel). */
function lineChart(title: string, lines: { name: RuleName; values: number[] }[], format: (x: number) => string): string {
  const fr = frame(560, 200, { left: 52, right: 8, top: 20, bottom: 18 });
  const all = lines.flatMap((l) => l.values).filter(Number.isFinite);
  if (all.length === 0) return '';
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const y = linear(lo, hi, fr.bottom, fr.top);
  const paths = lines
    .map((l) => {
      const x = linear(0, l.values.length - 1, fr.left, fr.right);
      const index = Array.from(l.values, (_, i) => i);
      const d = pathD(downsample(index, l.values, x).map(([px, v]) => [px, y(v)] as [number, number]));
      return `<path d="${d}" fill="none" stroke="${COLORS[l.name]}" stroke-width="${l.name === 'policy' ? 2 : 1.2}"/>`;
    })
    .join('');
  return `${svgOpen(fr, title, 'line-chart')}<text class="title" x="${fr.left}" y="13">${esc(title)}</text>${yAxis(fr, lo, hi, y, format)}${paths}</svg>`;
}

function barChart(title: string, bars: { label: string; value: number | null; n: number }[]): string {
  const fr = frame(360, 180, { left: 40, right: 10, top: 36, bottom: 30 });
  const y = linear(0, Math.max(0.05, ...bars.map((b) => b.value ?? 0)), fr.bottom, fr.top);
  const bw = (fr.right - fr.left) / bars.length;
  const body = bars
    .map((b, i) => {
      const top = y(b.value ?? 0);
      const x = fr.left + i * bw + 8;
      const mid = x + (bw - 16) / 2;
      return `<rect class="bar" x="${x}" y="${top}" width="${bw - 16}" height="${fr.bottom - top}"/><text class="tick" x="${mid}" y="${top - 3}" text-anchor="middle">${b.value === null ? 'n/a' : b.value.toFixed(3)}</text><text class="tick" x="${mid}" y="${fr.bottom + 13}" text-anchor="middle">${esc(b.label)}</text><text class="tick" x="${mid}" y="${fr.bottom + 25}" text-anchor="middle">n=${b.n}</text>`;
    })
    .join('');
  return `${svgOpen(fr, title, 'bar-chart')}<text class="title" x="${fr.left}" y="14">${esc(title)}</text><line class="axis" x1="${fr.left}" x2="${fr.right}" y1="${fr.bottom}" y2="${fr.bottom}"/>${body}</svg>`;
}

function metricsTable(m: MarketEvaluation): string {
  const rows = (Object.keys(m.metrics) as RuleName[])
    .map((k) => {
      const x: MetricsWithIntervals = m.metrics[k];
      const gain = k === 'policy' ? '' : iv(m.policyGain[k], (v) => num(v, 1));
      return `<tr><td><span style="color:${COLORS[k]}">■</span> ${esc(LABELS[k])}</td><td>${iv(x.netReturn, pct)}</td><td>${iv(x.sharpe, (v) => num(v, 2))}</td><td>${iv(x.maxDrawdown, pct)}</td><td>${iv(x.turnover, (v) => num(v, 1))}</td><td>${iv(x.timeInMarket, pct)}</td><td>${gain}</td></tr>`;
    })
    .join('');
  return `<table><tr><th>rule</th><th>net return</th><th>Sharpe (ann.)</th><th>max drawdown</th><th>turnover</th><th>time in market</th><th>policy Sharpe gain over it</th></tr>${rows}</table>`;
}

/** One market's section: table, equity and drawdown curves. */
function marketSection(m: MarketEvaluation): string {
  const names = Object.keys(m.equity) as RuleName[];
  const eq = names.map((n) => ({ name: n, values: m.equity[n] }));
  const dd = names.map((n) => ({ name: n, values: drawdown(m.equity[n]) }));
  const span = `${new Date(m.firstTs).toISOString().slice(0, 16)} – ${new Date(m.lastTs).toISOString().slice(0, 16)} UTC, ${m.bars} bars`;
  return `<section><h3>${esc(m.name)}</h3><p class="span">${esc(span)}</p>${metricsTable(m)}<div class="charts">${lineChart('equity', eq, (v) => num(v, 3))}${lineChart('drawdown', dd, pct)}</div></section>`;
}

export interface ReportInput {
  title: string;
  generated: string;
  model: string;
  costs: Record<string, number>;
  findings: string[];
  targets: { name: string; met: boolean; detail: string }[];
  real: MarketEvaluation[];
  rolling: { symbol: string; windows: number; policyBeatsBest: number; policyBeatsBuyAndHold: number; policyPositive: number }[];
  synthetic: { family: string; description: string; markets: MarketEvaluation[] }[];
  sizeByConfidence: { label: string; value: number | null; n: number }[];
}

export function renderReport(r: ReportInput): string {
  const legend = (Object.keys(COLORS) as RuleName[]).map((k) => `<span style="color:${COLORS[k]}">■</span> ${esc(LABELS[k])}`).join(' &nbsp; ');
  const targets = r.targets.map((t) => `<li class="${t.met ? 'met' : 'missed'}"><b>${t.met ? 'MET' : 'MISSED'}</b> ${esc(t.name)}: ${esc(t.detail)}</li>`).join('');
  const findings = r.findings.map((f) => `<li>${esc(f)}</li>`).join('');
  const rolling = r.rolling
    .map((x) => `<tr><td>${esc(x.symbol)}</td><td>${x.windows}</td><td>${x.policyPositive}</td><td>${x.policyBeatsBuyAndHold}</td><td>${x.policyBeatsBest}</td></tr>`)
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(r.title)}</title><style>
body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:6px 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}
small{color:#666}.charts{display:flex;flex-wrap:wrap;gap:8px}.span{color:#555;font-size:12px;margin:2px 0}
li.met b{color:#2ca02c}li.missed b{color:#d62728}section{border-top:1px solid #eee;margin-top:12px}
${CHART_CSS}.bar{fill:#d62728}.title{font-size:12px;font-weight:bold}
</style></head><body>
<h1>${esc(r.title)}</h1>
<p>Generated ${esc(r.generated)} · model ${esc(r.model)} · costs ${esc(JSON.stringify(r.costs))}. Intervals are 95 % moving-block bootstrap intervals (48-bar blocks); the Sharpe gain is paired (the same resampled bars for both rules).</p>
<h2>Targets</h2><ul>${targets}</ul>
<h2>Where the policy has and has no edge</h2><ul>${findings}</ul>
<p>${legend}</p>
<h2>Position size by strategic confidence (real bars, test thirds pooled)</h2>
${barChart('mean |target position| of the policy', r.sizeByConfidence)}
<h2>Real bars: walk-forward test (last third of each symbol)</h2>
${r.real.map(marketSection).join('')}
<h2>Rolling 7-day windows of the test thirds</h2>
<table><tr><th>symbol</th><th>windows</th><th>policy net return &gt; 0</th><th>policy Sharpe &gt; buy-and-hold</th><th>policy Sharpe &gt; best baseline</th></tr>${rolling}</table>
<h2>Held-out synthetic families (seeds never trained on)</h2>
${r.synthetic.map((f) => `<h2 style="font-size:1.1em">${esc(f.family)}: ${esc(f.description)}</h2>${f.markets.map(marketSection).join('')}`).join('')}
</body></html>
`;
}
