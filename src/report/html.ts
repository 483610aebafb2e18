/**
 * The replay report: one self-contained HTML page (inline CSS and SVG, no script, no external file)
 * built from integrated results alone. Pure: the caller reads and writes the files.
 */
import type { IntegratedResult } from '../../schemas/integrated-result.schema';
import {
  DEFAULT_COSTS,
  DEFAULT_OUTCOME_RULE,
  REGIMES,
  accumulate,
  equityCurves,
  histogram,
  reliability,
  type CostModel,
  type EquityCurves,
  type OutcomeRule,
  type ReportData,
  type SymbolSeries,
} from './analysis';
import {
  CHART_CSS,
  REGIME_COLOURS,
  downsample,
  esc,
  fmtTime,
  frame,
  linear,
  pathD,
  svgOpen,
  timeAxis,
  yAxis,
} from './svg';

export interface ReportOptions {
  /** Shown as the page title. @defaultValue 'Replay report' */
  title?: string;
  /** Where the results came from (file names, command), shown under the title. */
  source?: string;
  costs?: CostModel;
  rule?: OutcomeRule;
  /** Messages in `pipeline.dead_letters` after the run; null when unknown (a results file alone). */
  deadLetters?: number | null;
  /** Bars published, when the report is written by the replay itself. */
  barsPublished?: number | null;
  /** Time of writing (epoch ms), shown in the footer. @defaultValue Date.now() */
  generatedAt?: number;
}

const WIDTH = 960;
const MAX_MARKERS = 300;

const pct = (v: number | null, digits = 1): string =>
  v === null || !Number.isFinite(v) ? 'n/a' : `${(v * 100).toFixed(digits)} %`;
const num = (v: number | null, digits = 1): string =>
  v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);

/**
 * The whole report page, of results in memory or of the compact data a {@link ReportAccumulator}
 * gathered from a results file of any length.
 */
export function buildReportHtml(
  input: readonly IntegratedResult[] | ReportData,
  options: ReportOptions = {},
): string {
  const costs = options.costs ?? DEFAULT_COSTS;
  const rule = options.rule ?? DEFAULT_OUTCOME_RULE;
  const data = Array.isArray(input) ? accumulate(input as readonly IntegratedResult[]) : (input as ReportData);
  const groups = data.groups;
  const c = data.counts;
  const rel = reliability(groups, rule);
  const lat = histogram(data.latencies);
  const title = options.title ?? 'Replay report';
  const generatedAt = options.generatedAt ?? Date.now();

  const symbolSections = [...groups.entries()]
    .map(([symbol, series]) => symbolSection(symbol, series, costs))
    .join('\n');
  const dead =
    options.deadLetters === undefined || options.deadLetters === null
      ? '<td>not known: a results file does not record them (the replay command counts <code>pipeline.dead_letters</code> after its run)</td>'
      : `<td>${options.deadLetters}</td>`;
  const degradedRows =
    c.degraded.size === 0
      ? '<tr><td>degraded stages</td><td>none</td></tr>'
      : [...c.degraded.entries()]
          .sort((a, b) => b[1] - a[1])
          .map(
            ([stage, n]) => `<tr><td>degraded: <code>${esc(stage)}</code></td><td>${n}</td></tr>`,
          )
          .join('');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;margin:24px auto;max-width:1000px;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}h3{font-size:15px;margin:18px 0 4px}
.muted{color:#666}${CHART_CSS}
.price{fill:none;stroke:#1f3b73;stroke-width:1.2}.pos{fill:none;stroke:#444;stroke-width:1}
.eq-agents{fill:none;stroke:#1565c0;stroke-width:1.5}.eq-bh{fill:none;stroke:#ef6c00;stroke-width:1.2}.eq-flat{fill:none;stroke:#888;stroke-width:1;stroke-dasharray:4 3}
.bar{fill:#5c7cba}.diag{stroke:#999;stroke-dasharray:4 3;fill:none}.rel{fill:none;stroke:#1565c0;stroke-width:1.5}.dot{fill:#1565c0}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f5f5f5}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px;border:1px solid #bbb}
code{background:#f3f3f3;padding:0 3px}
</style></head><body>
<h1>${esc(title)}</h1>
<p class="muted">${options.source !== undefined ? `${esc(options.source)} · ` : ''}${c.results} results of ${c.symbols} symbol${c.symbols === 1 ? '' : 's'}${
    c.firstTs !== null && c.lastTs !== null
      ? `, bars from ${fmtTime(c.firstTs)} to ${fmtTime(c.lastTs)} UTC`
      : ''
  }${options.barsPublished !== undefined && options.barsPublished !== null ? ` · ${options.barsPublished} bars published` : ''}</p>
<p class="legend">${REGIMES.map((r) => `<span><i class="sw" style="background:${REGIME_COLOURS[r]}"></i>${r}</span>`).join('')}<span>▲ LONG ▼ SHORT ● FLAT: a change of the tactical action</span></p>
<p>Costs used below: fee <b>${costs.feeBps} bp</b> + half-spread <b>${costs.halfSpreadBps} bp</b> = ${costs.feeBps + costs.halfSpreadBps} bp of the notional traded, charged on every change of position (options <code>--fee-bps</code>, <code>--half-spread-bps</code>).
The agents' curve holds each result's <code>target_position</code> (−1..1; a missing one counts as 0) from its bar's close to the next bar's close and pays the costs on every change, the first one included.
Buy-and-hold buys 1 unit at the first close (paying the costs once) and holds. FLAT holds nothing and stays at 1.</p>
${symbolSections}
<h2>Reliability of the regime confidence</h2>
${reliabilitySection(rel, rule)}
<h2>Latency</h2>
${latencySection(lat, data.latencies.length)}
<h2>Counts</h2>
<table>
<tr><td>results (one per symbol and bar)</td><td>${c.results}</td></tr>
${c.repeats > 0 ? `<tr><td>repeated deliveries in the file (dropped above)</td><td>${c.repeats}</td></tr>` : ''}
<tr><td>stale contexts (<code>strategic.stale</code>)</td><td>${c.stale}</td></tr>
<tr><td>results with at least one degraded stage</td><td>${c.degradedResults}</td></tr>
${degradedRows}
<tr><td>dead letters</td>${dead}</tr>
<tr><td>results without a regime (strategic warm-up)</td><td>${c.noRegime}</td></tr>
${[...c.modelVersions.entries()].map(([v, n]) => `<tr><td>model version <code>${esc(v)}</code></td><td>${n}</td></tr>`).join('')}
</table>
<p class="muted">Written ${fmtTime(generatedAt)} UTC from the integrated results alone (src/report).</p>
</body></html>
`;
}

function symbolSection(symbol: string, series: SymbolSeries, costs: CostModel): string {
  const eq = equityCurves(series, costs);
  const last = (a: number[]): number | null => (a.length > 0 ? (a[a.length - 1] as number) : null);
  return `<section class="symbol" data-symbol="${esc(symbol)}">
<h2>${esc(symbol)}</h2>
<h3>Price, regime bands and decisions</h3>
${priceChart(symbol, series)}
${positionChart(symbol, series)}
<h3>Equity after costs</h3>
${equityChart(symbol, eq)}
<table><tr><th></th><th>final equity</th><th>max drawdown</th><th>turnover</th></tr>
<tr><td><span class="sw" style="background:#1565c0"></span>agents</td><td>${num(last(eq.agents), 4)}</td><td>${pct(eq.agentsMaxDrawdown)}</td><td>${num(eq.turnover, 1)} × notional${eq.nullPositions > 0 ? ` (${eq.nullPositions} results without a position, held as 0)` : ''}</td></tr>
<tr><td><span class="sw" style="background:#ef6c00"></span>buy and hold</td><td>${num(last(eq.buyHold), 4)}</td><td>${pct(eq.buyHoldMaxDrawdown)}</td><td>1 × notional</td></tr>
<tr><td><span class="sw" style="background:#888"></span>FLAT</td><td>1.0000</td><td>0.0 %</td><td>0</td></tr></table>
</section>`;
}

function priceChart(symbol: string, series: SymbolSeries): string {
  const fr = frame(WIDTH, 250);
  const n = series.length;
  if (n === 0) return '';
  const t0 = series.closeTs(0);
  const t1 = series.closeTs(n - 1);
  const closeTs = new Float64Array(n);
  const closes = new Float64Array(n);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    closeTs[i] = series.closeTs(i);
    const c = series.close(i);
    closes[i] = c;
    if (c < lo) lo = c;
    if (c > hi) hi = c;
  }
  const pad = (hi - lo) * 0.05 || hi * 0.01;
  lo -= pad;
  hi += pad;
  const x = linear(t0, t1, fr.left, fr.right);
  const y = linear(lo, hi, fr.bottom, fr.top);

  // Regime bands: one colour per pixel column (the regime of the column's last result), merged.
  const cols: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    const c = Math.min(fr.right - fr.left - 1, Math.max(0, Math.floor(x(closeTs[i] as number) - fr.left)));
    cols[c] = series.regime(i);
  }
  let current: string | null = null;
  const bands: string[] = [];
  let start = 0;
  const width = fr.right - fr.left;
  for (let c = 0; c <= width; c++) {
    const v: string | null =
      c < width ? (cols[c] !== undefined ? (cols[c] as string | null) : current) : '__end__';
    if (v !== current) {
      if (current !== null && current !== '__end__' && c > start) {
        bands.push(
          `<rect class="band" data-regime="${current}" x="${fr.left + start}" y="${fr.top}" width="${c - start}" height="${fr.bottom - fr.top}" fill="${REGIME_COLOURS[current] ?? '#fff'}"/>`,
        );
      }
      current = v;
      start = c;
    }
  }

  const line = pathD(
    downsample(closeTs, closes, x).map(([px, v]) => [px, y(v)] as [number, number]),
  );
  const changes: { i: number; action: string }[] = [];
  let prev: string | null = null;
  let changeCount = 0;
  for (let i = 0; i < n; i++) {
    const a = series.action(i);
    if (a !== null && a !== prev) {
      changeCount++;
      // Only as many as can be drawn are kept: a year of bars can change action every other bar.
      if (changes.length <= MAX_MARKERS) changes.push({ i, action: a });
    }
    prev = a;
  }
  let markers = '';
  let note = '';
  if (changeCount <= MAX_MARKERS) {
    markers = changes
      .map(({ i, action }) => {
        const t = series.closeTs(i);
        const px = x(t).toFixed(1);
        const py = y(series.close(i));
        if (action === 'LONG')
          return `<path class="mk" d="M${px} ${(py + 4).toFixed(1)}l-4 8h8z" fill="#2e7d32"><title>${fmtTime(t)} LONG</title></path>`;
        if (action === 'SHORT')
          return `<path class="mk" d="M${px} ${(py - 4).toFixed(1)}l-4 -8h8z" fill="#c62828"><title>${fmtTime(t)} SHORT</title></path>`;
        return `<circle class="mk" cx="${px}" cy="${py.toFixed(1)}" r="2.5" fill="#777"><title>${fmtTime(t)} FLAT</title></circle>`;
      })
      .join('');
  } else {
    note = `<p class="muted">${changeCount} changes of the tactical action, too many to mark; the strip below shows the position.</p>`;
  }
  return `${svgOpen(fr, `${symbol} close price with regime bands`, 'price-chart')}
${bands.join('')}${yAxis(fr, lo, hi, y)}${timeAxis(fr, t0, t1, x)}
<path class="price" d="${line}"/>${markers}</svg>${note}`;
}

function positionChart(symbol: string, series: SymbolSeries): string {
  const fr = frame(WIDTH, 100, { left: 64, right: 12, top: 10, bottom: 10 });
  const n = series.length;
  if (n === 0) return '';
  const t0 = series.closeTs(0);
  const t1 = series.closeTs(n - 1);
  const x = linear(t0, t1, fr.left, fr.right);
  const y = linear(-1, 1, fr.bottom, fr.top);
  // A step line: the position holds until the next result.
  const xs: number[] = [];
  const ys: number[] = [];
  let prev: number | null = null;
  for (let i = 0; i < n; i++) {
    const t = series.closeTs(i);
    const p = series.position(i) ?? 0;
    if (prev !== null) {
      xs.push(t);
      ys.push(prev);
    }
    xs.push(t);
    ys.push(p);
    prev = p;
  }
  return `${svgOpen(fr, `${symbol} target position`, 'position-chart')}
${[-1, 0, 1].map((v) => `<line class="grid" x1="${fr.left}" x2="${fr.right}" y1="${y(v)}" y2="${y(v)}"/><text class="tick" x="${fr.left - 4}" y="${y(v)}" text-anchor="end" dominant-baseline="middle">${v === 1 ? 'long 1' : v === -1 ? 'short 1' : '0'}</text>`).join('')}
<path class="pos" d="${pathD(downsample(xs, ys, x).map(([px, v]) => [px, y(v)] as [number, number]))}"/><text class="tick" x="${fr.right - 4}" y="${fr.top + 10}" text-anchor="end">target_position</text></svg>`;
}

function equityChart(symbol: string, eq: EquityCurves): string {
  const fr = frame(WIDTH, 220);
  if (eq.ts.length === 0) return '';
  let lo = 1;
  let hi = 1;
  for (const curve of [eq.agents, eq.buyHold])
    for (const v of curve) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  const pad = (hi - lo) * 0.05 || 0.01;
  lo -= pad;
  hi += pad;
  const t0 = eq.ts[0] as number;
  const t1 = eq.ts[eq.ts.length - 1] as number;
  const x = linear(t0, t1, fr.left, fr.right);
  const y = linear(lo, hi, fr.bottom, fr.top);
  const line = (ys: number[], cls: string): string =>
    `<path class="${cls}" d="${pathD(downsample(eq.ts, ys, x).map(([px, v]) => [px, y(v)] as [number, number]))}"/>`;
  return `${svgOpen(fr, `${symbol} equity: agents, buy and hold, flat`, 'equity-chart')}
${yAxis(fr, lo, hi, y)}${timeAxis(fr, t0, t1, x)}
${line(eq.flat, 'eq-flat')}${line(eq.buyHold, 'eq-bh')}${line(eq.agents, 'eq-agents')}</svg>`;
}

function reliabilitySection(rel: ReturnType<typeof reliability>, rule: OutcomeRule): string {
  const fr = frame(420, 360, { left: 50, right: 16, top: 12, bottom: 40 });
  const x = linear(0, 1, fr.left, fr.right);
  const y = linear(0, 1, fr.bottom, fr.top);
  const maxN = Math.max(1, ...rel.bins.map((b) => b.n));
  const filled = rel.bins.filter((b) => b.n > 0);
  const curve = pathD(filled.map((b) => [x(b.meanP as number), y(b.observed as number)]));
  const dots = filled
    .map(
      (b) =>
        `<circle class="dot" cx="${x(b.meanP as number).toFixed(1)}" cy="${y(b.observed as number).toFixed(1)}" r="${(2 + 6 * Math.sqrt(b.n / maxN)).toFixed(1)}"><title>p ${b.lo.toFixed(1)}–${b.hi.toFixed(1)}: ${b.n} calls, mean p ${num(b.meanP, 3)}, borne out ${pct(b.observed)}</title></circle>`,
    )
    .join('');
  const countBars = rel.bins
    .map((b) => {
      const h = (b.n / maxN) * 40;
      return `<rect class="bar" opacity="0.35" x="${(x(b.lo) + 1).toFixed(1)}" y="${(fr.bottom - h).toFixed(1)}" width="${(x(b.hi) - x(b.lo) - 2).toFixed(1)}" height="${h.toFixed(1)}"/>`;
    })
    .join('');
  const axisTicks = [0, 0.2, 0.4, 0.6, 0.8, 1]
    .map(
      (v) =>
        `<text class="tick" x="${x(v).toFixed(1)}" y="${fr.bottom + 14}" text-anchor="middle">${v}</text><line class="grid" x1="${fr.left}" x2="${fr.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/><text class="tick" x="${fr.left - 4}" y="${y(v).toFixed(1)}" text-anchor="end" dominant-baseline="middle">${v}</text>`,
    )
    .join('');
  const chart =
    rel.n === 0
      ? `<p><b>No reliability diagram:</b> no result has both a regime and ${rule.horizonBars} following bars without a gap.</p>`
      : `${svgOpen(fr, 'reliability diagram of the regime probability', 'reliability-chart')}
${axisTicks}${countBars}<path class="diag" d="M${x(0)} ${y(0)}L${x(1)} ${y(1)}"/><path class="rel" d="${curve}"/>${dots}
<text class="tick" x="${(fr.left + fr.right) / 2}" y="${fr.height - 6}" text-anchor="middle">reported probability of the called regime</text>
<text class="tick" transform="translate(12 ${(fr.top + fr.bottom) / 2}) rotate(-90)" text-anchor="middle">share borne out</text></svg>`;
  const h = rule.horizonBars;
  return `<p>Each result with a regime calls one regime with a probability p = <code>regime_probabilities[regime]</code>.
A call is <b>borne out</b> when a plain rule, applied afterwards to the next ${h} bars of the same symbol (${(h * 5) / 60} hours), assigns the same regime.
The rule: R = close ${h} bars later / close − 1; σ = standard deviation of those ${h} five-minute log returns; m<sub>R</sub> and m<sub>σ</sub> their medians over the whole file for that symbol.
VOLATILE if σ &gt; ${rule.volatileMultiple}·m<sub>σ</sub>; otherwise BULL if R &gt; ${rule.trendMultiple}·m<sub>R</sub>, BEAR if R &lt; −${rule.trendMultiple}·m<sub>R</sub>, else SIDEWAYS.
This is a check of the pipeline's confidence against simple price behaviour, not against its own definition of a regime (which uses 30m features, docs/regime.md): a perfectly calibrated model of its own labels can still score low here.
Bars whose ${h} following bars run past the file or over a gap are left out. Neighbouring calls share context and overlap in their horizons, so the ${rel.n} calls are far from independent.</p>
${chart}
<table><tr><th>calls</th><th>borne out</th><th>expected calibration error</th>${REGIMES.map((r) => `<th>rule says ${r}</th>`).join('')}</tr>
<tr><td>${rel.n}</td><td>${pct(rel.hitRate)}</td><td>${rel.ece === null ? 'n/a' : rel.ece.toFixed(3)}</td>${REGIMES.map((r) => `<td>${pct(rel.baseRates[r])}</td>`).join('')}</tr></table>
${
  rel.byConfidence.length === 0
    ? ''
    : `<table><tr><th>reported confidence</th><th>calls</th><th>borne out</th></tr>
${rel.byConfidence.map((c) => `<tr><td>${esc(c.level)}</td><td>${c.n}</td><td>${pct(c.hitRate)}</td></tr>`).join('')}</table>`
}`;
}

function latencySection(h: ReturnType<typeof histogram>, n: number): string {
  if (n === 0) return '<p>No results.</p>';
  const fr = frame(WIDTH, 220, { left: 64, right: 12, top: 10, bottom: 40 });
  const top = h.edges[h.edges.length - 1] as number;
  const x = linear(0, top, fr.left, fr.right);
  const maxC = Math.max(1, ...h.counts);
  const y = linear(0, maxC, fr.bottom, fr.top);
  const bars = h.counts
    .map((count, i) => {
      const x0 = x(h.edges[i] as number);
      const x1 = x(h.edges[i + 1] as number);
      return `<rect class="bar" x="${(x0 + 0.5).toFixed(1)}" y="${y(count).toFixed(1)}" width="${Math.max(0.5, x1 - x0 - 1).toFixed(1)}" height="${(fr.bottom - y(count)).toFixed(1)}"><title>${(h.edges[i] as number).toFixed(1)}–${(h.edges[i + 1] as number).toFixed(1)} ms: ${count}</title></rect>`;
    })
    .join('');
  // An outline of the bars as one path, so the chart is also drawn when every bar is thin.
  const outline = pathD(
    h.counts.flatMap(
      (count, i) =>
        [
          [x(h.edges[i] as number), y(count)],
          [x(h.edges[i + 1] as number), y(count)],
        ] as [number, number][],
    ),
  );
  const xt = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (q) =>
        // The last label ends at the axis's end, or the SVG would cut it.
        `<text class="tick" x="${x(q * top).toFixed(1)}" y="${fr.bottom + 14}" text-anchor="${q === 1 ? 'end' : 'middle'}">${(q * top).toFixed(1)} ms</text>`,
    )
    .join('');
  return `<p><code>latency_ms</code> of every result: the pipeline's own measure, from the tactical worker's receipt of the bar to the moment the result is handed to the publisher (it includes the wait behind earlier bars of the symbol and for the strategic context, not the time the bar waited in the queue before the worker took it).
p50 ${num(h.p50)} ms, p95 ${num(h.p95)} ms, p99 ${num(h.p99)} ms, max ${num(h.max)} ms${h.overflow > 0 ? `; ${h.overflow} results above ${top.toFixed(1)} ms (the 99.5th percentile) are not drawn` : ''}.</p>
${svgOpen(fr, 'latency histogram', 'latency-chart')}
${yAxis(fr, 0, maxC, y)}<line class="axis" x1="${fr.left}" x2="${fr.right}" y1="${fr.bottom}" y2="${fr.bottom}"/>${xt}
${bars}<path class="pos" d="${outline}"/>
<text class="tick" x="${(fr.left + fr.right) / 2}" y="${fr.height - 4}" text-anchor="middle">latency_ms (results per bin)</text></svg>`;
}
