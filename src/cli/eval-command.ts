/**
 * `pipeline eval` (and `npm run eval`): honest evaluation of the shipped (or a given) model against
 * baselines on the same bars and costs.
 *   pipeline eval [--model models/agents] [--data data/market/5m] [--symbols BTCUSDT,ETHUSDT]
 *                   [--fee 0.0004] [--maker-fee 0.0001] [--half-spread 0.0002] [--samples 500]
 *                   [--synthetic-bars 8640] [--out reports/eval] [--json]
 *
 * - Real bars: walk-forward. Each symbol's first two thirds are the model's training part (checked
 *   against the model's recorded provenance: exit 2 if it saw any test bar); the last third is the
 *   test, evaluated whole and in consecutive 7-day windows. The strategic view is the analyzer over
 *   the 30m bars of the same series, causal (no look-ahead).
 * - Held-out synthetic families (seeds 201-203, never trained on): strong trends, weak trends,
 *   mixed regimes, no trend.
 * - Baselines: FLAT, buy-and-hold, EMA-26 trend with hysteresis (at full size, and sized by the
 *   policy's risk budget), MACD crossover with the policy's sizing, regime rule. Costs: taker fee + half spread on MARKET, maker fee on LIMIT fills.
 * - Metrics with 95 % block-bootstrap intervals; writes `<out>/summary.json` and `<out>/report.html`
 *   and prints the summary's headline. Seeded: the same inputs give the same numbers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StartupError } from '../errors';
import type { ModelMetrics } from '../learning/registry';
import { DEFAULT_COSTS, type TradingCosts } from '../learning/trading-env';
import type { MarketEvaluation, RuleName } from '../learning/walk-forward';
import { agentsRuntime, readRealBars, REAL_DATA_DIR, SHIPPED_MODEL_DIR, SYNTHETIC_TEST_SEEDS, TRAIN_FRACTION } from './agents-data';
import { ExitCode, decimal, defineCommand, integer, type CommandContext, type ParsedCommandLine } from './common';
import { renderReport, type ReportInput } from './eval-report-html';

const WINDOW_BARS = 7 * 288;

const HELP = `Evaluates the promoted version of a model registry against baselines (FLAT, buy-and-hold, EMA-26
trend at full size and sized by the risk budget, MACD crossover, regime rule) on the same bars and
costs, with 95 % block-bootstrap intervals: walk-forward on the last third of every real symbol
(the model must not have trained on it), and held-out synthetic families (seeds
${SYNTHETIC_TEST_SEEDS.join(', ')}). Writes <out>/summary.json and <out>/report.html and prints the
targets and findings. Seeded: same inputs, same numbers. Takes
minutes on 2 cores. Needs no broker. See docs/agents.md.

Exit status: 0 written; 1 failed; 2 no promoted model, a model without training provenance, a model
that trained on test bars, or no bars in --data (the line says which); 64 bad arguments.`;

function fail(setting: string, message: string): never {
  throw new StartupError(setting, message);
}

/** How `pipeline models train` made a version (its `metrics.offline`). */
interface OfflineProvenance {
  trainFraction?: number;
  real?: Record<string, { lastTrainTs: string }>;
  command?: string;
}

function offlineProvenance(metrics: ModelMetrics | null): OfflineProvenance | null {
  const offline: unknown = metrics?.offline;
  return typeof offline === 'object' && offline !== null ? offline : null;
}

/** Drops the equity paths (large) for the JSON summary. */
function compact(m: MarketEvaluation): Omit<MarketEvaluation, 'equity'> {
  const { equity: _equity, ...rest } = m;
  return rest;
}

const OPTIONS = {
  model: { type: 'string', value: 'registry', default: SHIPPED_MODEL_DIR, description: 'registry whose promoted version is evaluated' },
  data: { type: 'string', value: 'dir', default: REAL_DATA_DIR, description: 'directory of <SYMBOL>_5m.csv files' },
  symbols: { type: 'string', value: 'A,B', description: 'only these real symbols (default: all in --data)' },
  fee: { type: 'string', value: 'f', parse: decimal(0, 0.1), default: DEFAULT_COSTS.takerFee, description: 'taker fee per unit traded' },
  'maker-fee': { type: 'string', value: 'f', parse: decimal(0, 0.1), default: DEFAULT_COSTS.makerFee, description: 'maker fee on LIMIT fills' },
  'half-spread': {
    type: 'string', value: 'f', parse: decimal(0, 0.1), default: DEFAULT_COSTS.halfSpread,
    description: 'half the bid-ask spread (the project\'s one set of default costs: "pipeline report" charges the same taker fee + half spread, in bp, on every change of position)',
  },
  samples: { type: 'string', value: 'N', parse: integer(50, 100_000), default: 500, description: 'bootstrap samples (50..100000)' },
  'synthetic-bars': { type: 'string', value: 'N', parse: integer(1000, 100_000), default: 8640, description: 'bars per synthetic market (1000..100000)' },
  out: { type: 'string', value: 'dir', default: 'reports/eval', description: 'where summary.json and report.html go' },
  json: { type: 'boolean', description: 'print the summary as one JSON object' },
} as const;

async function run({ values }: ParsedCommandLine<typeof OPTIONS>, ctx: CommandContext): Promise<number> {
  const started = Date.now();
  const log = (s: string): void => void ctx.err.write(s + '\n');
  const modelDir = values.model;
  const { data: dataDir, out: outDir, samples, 'synthetic-bars': synBars } = values;
  const symbols = values.symbols?.split(',').filter((s) => s !== '');
  const costs: TradingCosts = { ...DEFAULT_COSTS, takerFee: values.fee, makerFee: values['maker-fee'], halfSpread: values['half-spread'] };
  const bootstrap = { samples, block: 48, seed: 1 };
  const { TacticalPolicy, WARMUP_BARS, BASELINES, evaluateMarket, rulesFor, SYNTHETIC_FAMILIES, syntheticMarket, walkForwardSplit, withStrategicView, openModelRegistry } =
    agentsRuntime();

  const registry = openModelRegistry(modelDir, { keepVersions: 0 });
  const version = await registry.latestPromoted();
  if (version === null) fail('--model', `no promoted model in ${modelDir}: run pipeline models train (or pass --model <registry dir>)`);
  const meta = await registry.meta(version);
  const offline = offlineProvenance(meta.metrics);
  if (offline === null || offline.trainFraction !== TRAIN_FRACTION || !offline.real) {
    fail('--model', `${modelDir} ${version} has no offline provenance with trainFraction ${TRAIN_FRACTION}: evaluate only models made by pipeline models train`);
  }
  const policy = await TacticalPolicy.load(registry, version, costs);
  const rules = rulesFor(policy);
  log(`model ${modelDir} ${version} (${offline.command ?? 'unknown command'}); costs ${JSON.stringify(costs)}`);

  // Real bars, walk-forward.
  const real: MarketEvaluation[] = [];
  const rolling: ReportInput['rolling'] = [];
  for (const [symbol, bars] of readRealBars(dataDir, symbols)) {
    const { testFrom, testTo } = walkForwardSplit(bars.length, TRAIN_FRACTION);
    const trained = offline.real[symbol];
    const testStart = (bars[testFrom] as { ts: number }).ts;
    if (trained && Date.parse(trained.lastTrainTs) >= testStart) fail('--model', `the model trained on ${symbol} up to ${trained.lastTrainTs}, after the test start: retrain`);
    const t0 = Date.now();
    const series = withStrategicView(symbol, bars);
    const m = evaluateMarket(symbol, series, rules, testFrom, testTo, costs, bootstrap, WINDOW_BARS);
    real.push(m);
    const ws = m.windows;
    const best = (w: (typeof ws)[number]): number => Math.max(...BASELINES.map((b) => w.sharpe[b]));
    rolling.push({
      symbol,
      windows: ws.length,
      policyPositive: ws.filter((w) => w.netReturn.policy > 0).length,
      policyBeatsBuyAndHold: ws.filter((w) => w.sharpe.policy > w.sharpe.buyAndHold).length,
      policyBeatsBest: ws.filter((w) => w.sharpe.policy > best(w)).length,
    });
    log(`${symbol}: ${m.bars} test bars${trained ? '' : ' (symbol not in the model’s training data)'}, policy Sharpe ${m.metrics.policy.sharpe.estimate.toFixed(2)}, buy-and-hold ${m.metrics.buyAndHold.sharpe.estimate.toFixed(2)} (${Date.now() - t0} ms)`);
  }

  // Held-out synthetic families.
  const synthetic: ReportInput['synthetic'] = [];
  for (const family of SYNTHETIC_FAMILIES) {
    const markets = SYNTHETIC_TEST_SEEDS.map((seed) => {
      const series = syntheticMarket(family, seed, synBars);
      return evaluateMarket(`${family.name} seed ${seed}`, series, rules, WARMUP_BARS, series.bars.length - 1, costs, bootstrap);
    });
    synthetic.push({ family: family.name, description: family.description, markets });
    log(`${family.name}: policy Sharpe ${markets.map((m) => m.metrics.policy.sharpe.estimate.toFixed(1)).join(', ')}; EMA ${markets.map((m) => m.metrics.emaTrend.sharpe.estimate.toFixed(1)).join(', ')}; EMA under the risk budget ${markets.map((m) => m.metrics.emaTrendBudget.sharpe.estimate.toFixed(1)).join(', ')}`);
  }

  // Position size by confidence, pooled over the real test thirds.
  const pooled = (['LOW', 'MEDIUM', 'HIGH', 'none'] as const).map((level) => {
    let n = 0;
    let total = 0;
    for (const m of real) {
      const s = m.sizeByConfidence[level];
      if (s.mean !== null) {
        n += s.decisions;
        total += s.mean * s.decisions;
      }
    }
    return { label: level === 'none' ? 'no context' : level, value: n === 0 ? null : total / n, n };
  });

  // Targets and findings, from the numbers only.
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const targets: ReportInput['targets'] = [];
  for (const f of synthetic.filter((f) => SYNTHETIC_FAMILIES.find((x) => x.name === f.family)?.persistentTrends)) {
    const p = mean(f.markets.map((m) => m.metrics.policy.sharpe.estimate));
    const e = mean(f.markets.map((m) => m.metrics.emaTrend.sharpe.estimate));
    const eb = mean(f.markets.map((m) => m.metrics.emaTrendBudget.sharpe.estimate));
    targets.push({
      name: `${f.family}: out-of-sample Sharpe above the EMA trend rule`,
      met: p > e,
      detail: `policy ${p.toFixed(2)} vs EMA ${e.toFixed(2)} (mean of seeds ${SYNTHETIC_TEST_SEEDS.join(', ')}; the EMA rule sized by the policy's risk budget: ${eb.toFixed(2)})`,
    });
  }
  const ddWorse = real.filter((m) => m.metrics.policy.maxDrawdown.estimate > m.metrics.buyAndHold.maxDrawdown.estimate);
  targets.push({
    name: 'real bars: max drawdown no worse than buy-and-hold on every symbol',
    met: ddWorse.length === 0,
    detail: ddWorse.length === 0 ? `on all ${real.length}` : `worse on ${ddWorse.map((m) => `${m.name} (${(m.metrics.policy.maxDrawdown.estimate * 100).toFixed(1)}% vs ${(m.metrics.buyAndHold.maxDrawdown.estimate * 100).toFixed(1)}%)`).join(', ')}`,
  });
  const low = pooled.find((p) => p.label === 'LOW')?.value ?? null;
  const high = pooled.find((p) => p.label === 'HIGH')?.value ?? null;
  targets.push({
    name: 'real bars: mean position size clearly smaller at LOW confidence than at HIGH (LOW ≤ 0.75 × HIGH)',
    met: low !== null && high !== null && high > 0 && low <= 0.75 * high,
    detail: `LOW ${low === null ? 'n/a' : low.toFixed(3)}, HIGH ${high === null ? 'n/a' : high.toFixed(3)}`,
  });
  const findings: string[] = [];
  for (const m of [...real, ...synthetic.flatMap((f) => f.markets)]) {
    const ranked = BASELINES.map((b) => ({ b, s: m.metrics[b].sharpe.estimate })).sort((x, y) => y.s - x.s);
    const bestBaseline = (ranked[0] as { b: (typeof BASELINES)[number] }).b;
    const g = m.policyGain[bestBaseline];
    const edge = g.lo > 0;
    if (m.metrics.policy.turnover.estimate === 0) {
      findings.push(`${m.name}: NO EDGE — the policy does not trade at all (stays FLAT); the best baseline here is ${bestBaseline} (Sharpe ${m.metrics[bestBaseline].sharpe.estimate.toFixed(2)}).`);
      continue;
    }
    findings.push(
      edge
        ? `${m.name}: the policy beats the best baseline (${bestBaseline}) — Sharpe gain ${g.estimate.toFixed(2)} [${g.lo.toFixed(2)}, ${g.hi.toFixed(2)}].`
        : `${m.name}: NO EDGE over the best baseline (${bestBaseline}) — Sharpe gain ${g.estimate.toFixed(2)} [${g.lo.toFixed(2)}, ${g.hi.toFixed(2)}] includes or is below 0.`,
    );
  }

  const summary = {
    model: { dir: modelDir, version, offline },
    costs,
    bootstrap,
    trainFraction: TRAIN_FRACTION,
    targets,
    findings,
    sizeByConfidence: pooled,
    real: real.map(compact),
    rolling,
    synthetic: synthetic.map((f) => ({ family: f.family, description: f.description, markets: f.markets.map(compact) })),
    elapsedMs: Date.now() - started,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'summary.json'), JSON.stringify(summary, null, 1));
  writeFileSync(
    join(outDir, 'report.html'),
    renderReport({
      title: 'Trading agents: honest evaluation',
      generated: new Date().toISOString(),
      model: `${modelDir} ${version}`,
      costs: { takerFee: costs.takerFee, makerFee: costs.makerFee, halfSpread: costs.halfSpread },
      findings,
      targets,
      real,
      rolling,
      synthetic,
      sizeByConfidence: pooled,
    }),
  );
  if (values.json === true) ctx.out.write(JSON.stringify(summary) + '\n');
  else {
    for (const t of targets) ctx.out.write(`${t.met ? 'MET   ' : 'MISSED'} ${t.name}: ${t.detail}\n`);
    for (const f of findings) ctx.out.write(`${f}\n`);
    const table = (m: MarketEvaluation): string =>
      (Object.keys(m.metrics) as RuleName[])
        .map((k) => {
          const x = m.metrics[k];
          return `  ${k.padEnd(17)} net ${(x.netReturn.estimate * 100).toFixed(1).padStart(6)}% [${(x.netReturn.lo * 100).toFixed(1)}, ${(x.netReturn.hi * 100).toFixed(1)}]  Sharpe ${x.sharpe.estimate.toFixed(2).padStart(7)} [${x.sharpe.lo.toFixed(2)}, ${x.sharpe.hi.toFixed(2)}]  maxDD ${(x.maxDrawdown.estimate * 100).toFixed(1).padStart(5)}%  turnover ${x.turnover.estimate.toFixed(0).padStart(5)}  in market ${(x.timeInMarket.estimate * 100).toFixed(0)}%`;
        })
        .join('\n');
    for (const m of real) ctx.out.write(`${m.name} (test third, ${m.bars} bars)\n${table(m)}\n`);
    ctx.out.write(`wrote ${join(outDir, 'summary.json')} and ${join(outDir, 'report.html')} (${Date.now() - started} ms)\n`);
  }
  return ExitCode.Ok;
}

/** `pipeline eval`. */
export const evalCommand = defineCommand({ options: OPTIONS, help: HELP, run, offline: true });
