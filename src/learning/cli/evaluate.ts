/**
 * Trains the three trading agents on synthetic regime markets with persistent trends and evaluates
 * the greedy policy walk-forward on unseen seeds against FLAT, buy-and-hold and MACD crossover.
 *   npm run eval -- [--json] [--iterations 25] [--seed 1] [--csv bars.csv ...]
 * Training seeds 101–104, validation seed 150 (checkpoint selection), test seeds 201–203.
 * `--csv <file>` (repeatable) also reports the same table on real bars (not a target).
 * The last line is one JSON object with every number.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { selectBackend } from '../backend';
import {
  compare,
  greedyRule,
  meanMetrics,
  parseBarsCsv,
  syntheticSeries,
  trainOnSeries,
  type ComparisonRow,
  type PerformanceMetrics,
} from '../evaluation';
import { prepareSeries } from '../trading-agents';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const RULES = ['policy', 'flat', 'buyAndHold', 'macdCrossover'] as const;

function summarise(rows: ComparisonRow[]): Record<(typeof RULES)[number], PerformanceMetrics> {
  const out = {} as Record<(typeof RULES)[number], PerformanceMetrics>;
  for (const k of RULES) out[k] = meanMetrics(rows.map((r) => r[k]));
  return out;
}

function table(title: string, s: Record<string, PerformanceMetrics>): string {
  const lines = [`${title}`, 'rule            sharpe   maxDD    turnover  netReturn'];
  for (const [k, m] of Object.entries(s)) {
    lines.push(`${k.padEnd(14)} ${m.sharpe.toFixed(2).padStart(7)} ${(m.maxDrawdown * 100).toFixed(1).padStart(6)}% ${m.turnover.toFixed(1).padStart(9)} ${(m.netReturn * 100).toFixed(1).padStart(8)}%`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const iterations = Number(arg('iterations') ?? 25);
  const seed = Number(arg('seed') ?? 1);
  const log = (s: string): void => {
    process.stderr.write(s + '\n');
  };
  const started = Date.now();
  const backend = await selectBackend();
  const train = syntheticSeries({ seeds: [101, 102, 103, 104] });
  const [validation] = syntheticSeries({ seeds: [150] });
  const test = syntheticSeries({ seeds: [201, 202, 203] });
  let chosen = 0;
  let bestSharpe = -Infinity;
  const mappo = await trainOnSeries(train, {
    seed,
    iterations,
    validation,
    onIteration: (it, i) => log(`iteration ${it}: mean reward ${i.meanReward.toFixed(4)} (collect ${i.collectMs} ms, update ${i.updateMs} ms)`),
    onValidation: (it, sharpe) => {
      log(`  validation Sharpe ${sharpe.toFixed(2)}`);
      if (sharpe > bestSharpe) {
        bestSharpe = sharpe;
        chosen = it;
      }
    },
  });
  const policy = greedyRule(mappo);
  const synthetic = summarise(test.map((s) => compare(s, policy)));
  const beatsAll = synthetic.policy.sharpe > Math.max(synthetic.flat.sharpe, synthetic.buyAndHold.sharpe, synthetic.macdCrossover.sharpe);
  const real: Record<string, Record<string, PerformanceMetrics>> = {};
  process.argv.forEach((a, i) => {
    if (a !== '--csv') return;
    const file = process.argv[i + 1];
    if (!file) throw new RangeError('--csv needs a file');
    real[basename(file)] = summarise([compare(prepareSeries(parseBarsCsv(readFileSync(file, 'utf8'))), policy)]);
  });
  const result = {
    backend,
    iterations,
    chosenIteration: chosen,
    validationSharpe: bestSharpe,
    trainSeeds: [101, 102, 103, 104],
    testSeeds: [201, 202, 203],
    synthetic,
    beatsAllBaselines: beatsAll,
    real,
    elapsedMs: Date.now() - started,
  };
  if (!json) {
    process.stdout.write(table('out-of-sample synthetic (mean of seeds 201-203)', synthetic) + '\n');
    for (const [name, s] of Object.entries(real)) process.stdout.write(table(name, s) + '\n');
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  mappo.dispose();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
