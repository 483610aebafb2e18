/**
 * Proof of learning: trains MAPPO on the three-agent two-step game for several seeds and reports
 * how many reach the optimum (8) within the iteration budget.
 *   npm run mappo:check -- --seeds 5 [--iterations 100] [--episodes 64] [--json]
 * The last line is always one JSON object:
 *   {"optimum":8,"seeds":5,"reached":N,"iterations":[...]}
 */
import { selectBackend } from '../backend';
import { runTwoStepGame, TWO_STEP_OPTIMUM } from '../two-step-game';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new RangeError(`--${name} needs a number`);
  return v;
}

async function main(): Promise<void> {
  const seeds = arg('seeds', 5);
  const iterations = arg('iterations', 100);
  const episodes = arg('episodes', 64);
  const firstSeed = arg('first-seed', 1);
  const json = process.argv.includes('--json');
  const backend = await selectBackend();
  const results: (number | null)[] = [];
  const started = Date.now();
  for (let s = 0; s < seeds; s++) {
    const seed = firstSeed + s;
    const t = Date.now();
    const r = await runTwoStepGame({ seed, iterations, episodesPerIteration: episodes });
    results.push(r.iterationsToOptimum);
    if (!json || process.stderr.isTTY) {
      process.stderr.write(
        `seed ${seed}: ${r.iterationsToOptimum === null ? 'not reached' : `stable optimum at iteration ${r.iterationsToOptimum}`} ` +
          `(last sampled mean return ${r.meanSampledReturns.at(-1)?.toFixed(2)}, ${Date.now() - t} ms)\n`,
      );
    }
  }
  const reached = results.filter((r) => r !== null).length;
  if (!json) process.stdout.write(`backend ${backend}, ${reached}/${seeds} seeds reached ${TWO_STEP_OPTIMUM} in ${Date.now() - started} ms\n`);
  process.stdout.write(JSON.stringify({ optimum: TWO_STEP_OPTIMUM, seeds, reached, iterations: results }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
