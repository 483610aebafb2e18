/**
 * `pipeline models train` (and `npm run train:agents`): trains the three trading agents offline,
 * with the strategic view, and saves the team as a model version (the shipped model is made with
 * exactly the defaults):
 *   pipeline models train [--out models/agents] [--iterations 40] [--seed 1] [--data data/market/5m]
 *
 * Training data, never touching any evaluation bar: the first two thirds of every real symbol in
 * `--data` (minus its last 10 %, kept for checkpoint selection) and synthetic markets of every
 * family with seeds 101–103. Every 5 iterations the greedy policy is backtested on the validation
 * parts and the best iterate is saved. Seeded: the same command gives the same weights.
 * The registry in `--out` gets one new version, promoted; `meta.json` records how it was made.
 */
import { DEFAULT_COSTS } from '../learning/trading-env';
import type { MarketSeries } from '../learning/trading-agents';
import { agentsRuntime, numberOption, readRealBars, REAL_DATA_DIR, SHIPPED_MODEL_DIR, SYNTHETIC_TRAIN_SEEDS, TRAIN_FRACTION } from './agents-data';
import { ExitCode, type CommandContext } from './common';

const VALIDATION_FRACTION = 0.1;

/** The options of `pipeline models train`, in the table shape of {@link parseCommandLine}. */
export const TRAIN_OPTIONS = {
  out: { type: 'string' },
  iterations: { type: 'string' },
  seed: { type: 'string' },
  data: { type: 'string' },
} as const;

/** Trains and saves a promoted version; prints one JSON line (version, dir, chosen iteration). */
export async function trainAgents(
  values: { out?: string; iterations?: string; seed?: string; data?: string },
  ctx: CommandContext,
): Promise<number> {
  const out = values.out ?? SHIPPED_MODEL_DIR;
  const iterations = numberOption('iterations', values.iterations, 40, 1, 10_000);
  const seed = numberOption('seed', values.seed, 1, 0, 2 ** 31);
  const dataDir = values.data ?? REAL_DATA_DIR;
  const log = (s: string): void => void ctx.err.write(s + '\n');
  const { selectBackend, trainOnSeries, MappoTrainer, SYNTHETIC_FAMILIES, syntheticMarket, walkForwardSplit, withStrategicView, openModelRegistry } =
    agentsRuntime();
  const started = Date.now();
  const backend = await selectBackend();
  const real = readRealBars(dataDir);
  const train: MarketSeries[] = [];
  const validation: { series: MarketSeries; from: number; to: number }[] = [];
  const provenance: Record<string, { trainBars: number; validationFrom: string; lastTrainTs: string }> = {};
  for (const [symbol, bars] of real) {
    const { trainEnd } = walkForwardSplit(bars.length, TRAIN_FRACTION);
    const valFrom = Math.floor(trainEnd * (1 - VALIDATION_FRACTION));
    // One series of the training part: the strategic view is computed on it alone (no later bar).
    const series = withStrategicView(symbol, bars.slice(0, trainEnd));
    train.push({ bars: series.bars.slice(0, valFrom), indicators: series.indicators.slice(0, valFrom), strategic: series.strategic.slice(0, valFrom) });
    validation.push({ series, from: valFrom, to: trainEnd - 1 });
    provenance[symbol] = {
      trainBars: valFrom,
      validationFrom: new Date((bars[valFrom] as { ts: number }).ts).toISOString(),
      lastTrainTs: new Date((bars[trainEnd - 1] as { ts: number }).ts).toISOString(),
    };
    log(`${symbol}: ${valFrom} training bars, ${trainEnd - valFrom} validation bars, test from ${new Date((bars[trainEnd] as { ts: number }).ts).toISOString()}`);
  }
  for (const family of SYNTHETIC_FAMILIES) for (const s of SYNTHETIC_TRAIN_SEEDS) train.push(syntheticMarket(family, s));
  log(`${train.length} training series (${real.size} real, ${train.length - real.size} synthetic); backend ${backend}`);
  let best = { it: 0, sharpe: -Infinity };
  const mappo = await trainOnSeries(train, {
    seed,
    iterations,
    validation,
    onIteration: (it, i) => log(`iteration ${it}: mean reward ${i.meanReward.toFixed(4)} (collect ${i.collectMs} ms, update ${i.updateMs} ms)`),
    onValidation: (it, sharpe) => {
      log(Number.isNaN(sharpe) ? '  validation: the policy does not trade (not eligible)' : `  validation Sharpe ${sharpe.toFixed(2)}`);
      if (sharpe > best.sharpe) best = { it, sharpe };
    },
  });
  const trainer = new MappoTrainer({ snapshot: mappo.snapshot() });
  mappo.dispose();
  const registry = openModelRegistry(out, { keepVersions: 0 });
  const parent = await registry.latestPromoted();
  const version = await registry.save(trainer, {
    parent,
    metrics: {
      sharpe: Number.isFinite(best.sharpe) ? best.sharpe : Number.NaN,
      window: 'offline validation: last 10% of each real symbol’s training part',
      offline: {
        command: `pipeline models train --iterations ${iterations} --seed ${seed}`,
        seed,
        iterations,
        chosenIteration: best.it,
        trainFraction: TRAIN_FRACTION,
        real: provenance,
        syntheticFamilies: SYNTHETIC_FAMILIES.map((f) => f.name),
        syntheticSeeds: [...SYNTHETIC_TRAIN_SEEDS],
        costs: DEFAULT_COSTS,
        backend,
        elapsedMs: Date.now() - started,
      },
    },
  });
  trainer.dispose();
  await registry.promote(version);
  ctx.out.write(`${JSON.stringify({ version, dir: out, chosenIteration: best.it, validationSharpe: best.sharpe, elapsedMs: Date.now() - started })}\n`);
  return ExitCode.Ok;
}
