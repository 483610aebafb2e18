import type { Interval } from '../learning/stats';
import type { MarketEvaluation, MetricsWithIntervals, RuleName } from '../learning/walk-forward';

/**
 * The self-contained HTML report of `npm run eval`: inline SVG charts, no script, no network.
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

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–');
const num = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '–');

function iv(i: Interval, f: (x: number) => string): string {
  return `${f(i.estimate)} <small>[${f(i.lo)}, ${f(i.hi)}]</small>`;
}

function downsample(xs: readonly number[], points = 360): number[] {
  if (xs.length <= points) return [...xs];
  const out: number[] = [];
  for (let i = 0; i < points; i++) out.push(xs[Math.round((i * (xs.length - 1)) / (points - 1))] as number);
  return out;
}

function drawdown(equity: readonly number[]): number[] {
  let peak = -Infinity;
  return equity.map((e) => {
    peak = Math.max(peak, e);
    return e / peak - 1;
  });
}

function lineChart(title: string, lines: { name: RuleName; values: number[] }[], format: (x: number) => string): string {
  const w = 560;
  const h = 200;
  const pad = { l: 52, r: 8, t: 20, b: 18 };
  const all = lines.flatMap((l) => l.values).filter(Number.isFinite);
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (!(hi > lo)) {
    hi = lo + 1e-9;
    lo -= 1e-9;
  }
  const x = (i: number, n: number): number => pad.l + (i / Math.max(1, n - 1)) * (w - pad.l - pad.r);
  const y = (v: number): number => pad.t + (1 - (v - lo) / (hi - lo)) * (h - pad.t - pad.b);
  const paths = lines
    .map((l) => {
      const d = l.values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i, l.values.length).toFixed(1)},${y(v).toFixed(1)}`).join('');
      return `<path d="${d}" fill="none" stroke="${COLORS[l.name]}" stroke-width="${l.name === 'policy' ? 2 : 1.2}"/>`;
    })
    .join('');
  const ticks = [lo, (lo + hi) / 2, hi]
    .map((v) => `<text x="${pad.l - 4}" y="${y(v) + 4}" text-anchor="end" font-size="10">${esc(format(v))}</text><line x1="${pad.l}" x2="${w - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`)
    .join('');
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" xmlns="http://www.w3.org/2000/svg"><text x="${pad.l}" y="13" font-size="12" font-weight="bold">${esc(title)}</text>${ticks}${paths}</svg>`;
}

function barChart(title: string, bars: { label: string; value: number | null; n: number }[]): string {
  const w = 360;
  const h = 180;
  const pad = { l: 40, b: 30, t: 36 };
  const max = Math.max(0.05, ...bars.map((b) => b.value ?? 0));
  const bw = (w - pad.l - 10) / bars.length;
  const body = bars
    .map((b, i) => {
      const v = b.value ?? 0;
      const bh = (v / max) * (h - pad.t - pad.b);
      const x = pad.l + i * bw + 8;
      const y = h - pad.b - bh;
      return `<rect x="${x}" y="${y}" width="${bw - 16}" height="${bh}" fill="#d62728"/><text x="${x + (bw - 16) / 2}" y="${y - 3}" font-size="10" text-anchor="middle">${b.value === null ? 'n/a' : b.value.toFixed(3)}</text><text x="${x + (bw - 16) / 2}" y="${h - pad.b + 13}" font-size="10" text-anchor="middle">${esc(b.label)}</text><text x="${x + (bw - 16) / 2}" y="${h - pad.b + 25}" font-size="9" text-anchor="middle" fill="#666">n=${b.n}</text>`;
    })
    .join('');
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" xmlns="http://www.w3.org/2000/svg"><text x="${pad.l}" y="14" font-size="12" font-weight="bold">${esc(title)}</text><line x1="${pad.l}" x2="${w - 10}" y1="${h - pad.b}" y2="${h - pad.b}" stroke="#333"/>${body}</svg>`;
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
  const eq = names.map((n) => ({ name: n, values: downsample(m.equity[n]) }));
  const dd = names.map((n) => ({ name: n, values: downsample(drawdown(m.equity[n])) }));
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
