/**
 * `pipeline models train` (and `npm run train:agents`): trains the three trading agents offline,
 * with the strategic view, and saves the team as a model version (the shipped model is made with
 * exactly the defaults):
 *   pipeline models train [--out models/agents] [--iterations 80] [--seed 1] [--data data/market/5m]
 *
 * Training data, never touching any evaluation bar: the first two thirds of every real symbol in
 * `--data` (minus its last 10 %, kept for checkpoint selection) and synthetic markets of every
 * family with seeds 101–103, each series also mirrored (`mirrorBars`: a rise becomes a fall).
 * Every 5 iterations the greedy policy is backtested on the validation parts (the real ones and
 * synthetic seed 151 of every family, each also mirrored) and the iterate with the best
 * `validationScore` (mean minus one stratified standard error) is saved. Seeded: the same command
 * gives the same weights.
 * The registry in `--out` gets one new version, promoted; `meta.json` records how it was made.
 */
import { DEFAULT_COSTS } from '../learning/trading-env';
import type { MarketSeries } from '../learning/trading-agents';
import {
  agentsRuntime,
  readRealBars,
  REAL_DATA_DIR,
  SHIPPED_MODEL_DIR,
  SYNTHETIC_TRAIN_SEEDS,
  SYNTHETIC_VALIDATION_SEEDS,
  TRAIN_FRACTION,
} from './agents-data';
import { ExitCode, integer, type CommandContext, type ParsedCommandLine } from './common';

const VALIDATION_FRACTION = 0.1;
/** Bars of each synthetic validation market (15 days: two to five trend segments). */
const SYNTHETIC_VALIDATION_BARS = 4320;

/** The options of `pipeline models train`. */
export const TRAIN_OPTIONS = {
  out: { type: 'string', value: 'registry', default: SHIPPED_MODEL_DIR, description: 'registry the new version is saved to' },
  iterations: { type: 'string', value: 'N', parse: integer(1, 10_000), default: 80, description: 'training iterations' },
  seed: { type: 'string', value: 'n', parse: integer(0, 2 ** 31), default: 1, description: 'seed' },
  data: { type: 'string', value: 'dir', default: REAL_DATA_DIR, description: 'directory of <SYMBOL>_5m.csv files' },
} as const;

/** Trains and saves a promoted version; prints one JSON line (version, dir, chosen iteration). */
export async function trainAgents(
  values: ParsedCommandLine<typeof TRAIN_OPTIONS>['values'],
  ctx: CommandContext,
): Promise<number> {
  const { out, iterations, seed, data: dataDir } = values;
  const log = (s: string): void => void ctx.err.write(s + '\n');
  const { trainOnSeries, MappoTrainer, SYNTHETIC_FAMILIES, syntheticMarket, walkForwardSplit, withStrategicView, mirrorBars, openModelRegistry, WARMUP_BARS } =
    agentsRuntime();
  const started = Date.now();
  // The training engine: WebAssembly SIMD kernels (the meta field keeps its name and value).
  const backend = 'wasm';
  const real = readRealBars(dataDir);
  const train: MarketSeries[] = [];
  const validation: { series: MarketSeries; from: number; to: number; stratum: string }[] = [];
  const provenance: Record<string, { trainBars: number; validationFrom: string; lastTrainTs: string }> = {};
  for (const [symbol, bars] of real) {
    const { trainEnd } = walkForwardSplit(bars.length, TRAIN_FRACTION);
    const valFrom = Math.floor(trainEnd * (1 - VALIDATION_FRACTION));
    // The training part and its mirror image (log prices negated: a rise becomes a fall), each with
    // its own indicators and strategic view computed on it alone (no later bar). Training on both
    // keeps the training period's drift from becoming a standing long or short bias.
    const part = bars.slice(0, trainEnd);
    for (const series of [withStrategicView(symbol, part), withStrategicView(`${symbol}-mirror`, mirrorBars(part))]) {
      train.push({ bars: series.bars.slice(0, valFrom), indicators: series.indicators.slice(0, valFrom), strategic: series.strategic.slice(0, valFrom) });
      validation.push({ series, from: valFrom, to: trainEnd - 1, stratum: 'real' });
    }
    provenance[symbol] = {
      trainBars: valFrom,
      validationFrom: new Date((bars[valFrom] as { ts: number }).ts).toISOString(),
      lastTrainTs: new Date((bars[trainEnd - 1] as { ts: number }).ts).toISOString(),
    };
    log(`${symbol}: ${valFrom} training bars, ${trainEnd - valFrom} validation bars (each also mirrored), test from ${new Date((bars[trainEnd] as { ts: number }).ts).toISOString()}`);
  }
  for (const family of SYNTHETIC_FAMILIES) {
    for (const s of SYNTHETIC_TRAIN_SEEDS) {
      const market = syntheticMarket(family, s);
      train.push(market, withStrategicView(`SYN${s}-mirror`, mirrorBars(market.bars)));
    }
    // Checkpoint selection also sees each family on a seed of its own (neither trained nor tested on).
    for (const s of SYNTHETIC_VALIDATION_SEEDS) {
      const market = syntheticMarket(family, s, SYNTHETIC_VALIDATION_BARS);
      for (const series of [market, withStrategicView(`SYN${s}-mirror`, mirrorBars(market.bars))]) {
        validation.push({ series, from: WARMUP_BARS, to: series.bars.length - 1, stratum: family.name });
      }
    }
  }
  log(`${train.length} training series (${2 * real.size} real and mirrored, ${train.length - 2 * real.size} synthetic and mirrored); backend ${backend}`);
  let best = { it: 0, sharpe: Number.NaN, score: -Infinity };
  const mappo = await trainOnSeries(train, {
    seed,
    iterations,
    validation,
    onIteration: (it, i) => log(`iteration ${it}: mean reward ${i.meanReward.toFixed(4)} (collect ${i.collectMs} ms, update ${i.updateMs} ms)`),
    onValidation: (it, sharpe, score, sharpes) => {
      const strata = [...new Set(validation.map((v) => v.stratum))];
      const byStratum = strata.map((g) => {
        const xs = sharpes.filter((_, i) => validation[i]?.stratum === g);
        return `${g} ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1)}`;
      });
      log(
        Number.isNaN(score)
          ? '  validation: the policy does not trade (not eligible)'
          : `  validation Sharpe mean ${sharpe.toFixed(2)}, score ${score.toFixed(2)} (mean − 1 stratified s.e. over ${validation.length} parts; ${byStratum.join(', ')})`,
      );
      if (score > best.score) best = { it, sharpe, score };
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
      window: `offline validation: last 10% of each real symbol’s training part and synthetic seed ${SYNTHETIC_VALIDATION_SEEDS.join(', ')} of each family, each also mirrored`,
      offline: {
        command: `pipeline models train --iterations ${iterations} --seed ${seed}`,
        seed,
        iterations,
        chosenIteration: best.it,
        selection: 'highest mean − 1 stratified standard error of the validation Sharpes (strata: real symbols, each synthetic family), every 5 iterations, among iterates that trade',
        syntheticValidationSeeds: [...SYNTHETIC_VALIDATION_SEEDS],
        validationScore: Number.isFinite(best.score) ? best.score : Number.NaN,
        mirrored: true,
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
  ctx.out.write(`${JSON.stringify({ version, dir: out, chosenIteration: best.it, validationSharpe: best.sharpe, validationScore: best.score, elapsedMs: Date.now() - started })}\n`);
  return ExitCode.Ok;
}
