/**
 * `pipeline mappo-check` (and `npm run mappo:check`): proof of learning. Trains MAPPO on the
 * three-agent two-step game for several seeds and reports how many reach the optimum (8) within the
 * iteration budget. The last line is always one JSON object:
 *   {"optimum":8,"seeds":5,"reached":N,"iterations":[...]}
 */
import { agentsRuntime, numberOption } from './agents-data';
import { parseCommandLine } from './command-line';
import { ExitCode, type Command, type CommandContext } from './common';

const USAGE = `Usage:
  pipeline mappo-check [--seeds 5] [--first-seed 1] [--iterations 100] [--episodes 64] [--json]

Proof of learning: trains MAPPO on the three-agent two-step game once per seed and
reports how many seeds reach the optimum within the iteration budget. Prints a line per seed on
stderr, then one JSON object {"optimum","seeds","reached","iterations"} as the last line of stdout.

Options:
  --seeds <N>         number of seeds                              [default: 5]
  --first-seed <n>    first seed                                   [default: 1]
  --iterations <N>    iteration budget per seed                    [default: 100]
  --episodes <N>      episodes per iteration                       [default: 64]
  --json              only the JSON line on stdout
  -h, --help          this help (no other effect)`;

async function run(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseCommandLine({
    args,
    options: {
      seeds: { type: 'string' },
      'first-seed': { type: 'string' },
      iterations: { type: 'string' },
      episodes: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const seeds = numberOption('seeds', values.seeds, 5, 1, 1000);
  const iterations = numberOption('iterations', values.iterations, 100, 1, 100_000);
  const episodes = numberOption('episodes', values.episodes, 64, 1, 100_000);
  const firstSeed = numberOption('first-seed', values['first-seed'], 1, 0, 2 ** 31);
  const json = values.json === true;
  const { runTwoStepGame, TWO_STEP_OPTIMUM } = agentsRuntime();
  const results: (number | null)[] = [];
  const started = Date.now();
  for (let s = 0; s < seeds; s++) {
    const seed = firstSeed + s;
    const t = Date.now();
    const r = await runTwoStepGame({ seed, iterations, episodesPerIteration: episodes });
    results.push(r.iterationsToOptimum);
    ctx.err.write(
      `seed ${seed}: ${r.iterationsToOptimum === null ? 'not reached' : `stable optimum at iteration ${r.iterationsToOptimum}`} ` +
        `(last sampled mean return ${r.meanSampledReturns.at(-1)?.toFixed(2) ?? 'n/a'}, ${Date.now() - t} ms)\n`,
    );
  }
  const reached = results.filter((r) => r !== null).length;
  if (!json) ctx.out.write(`engine wasm, ${reached}/${seeds} seeds reached ${TWO_STEP_OPTIMUM} in ${Date.now() - started} ms\n`);
  ctx.out.write(JSON.stringify({ optimum: TWO_STEP_OPTIMUM, seeds, reached, iterations: results }) + '\n');
  return ExitCode.Ok;
}

/** `pipeline mappo-check`. */
export const mappoCheckCommand: Command = { usage: USAGE, run, offline: true };
