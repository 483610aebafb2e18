/**
 * `pipeline mappo-check` (and `npm run mappo:check`): proof of learning. Trains MAPPO on the
 * three-agent two-step game for several seeds and reports how many reach the optimum (8) within the
 * iteration budget. The last line is always one JSON object:
 *   {"optimum":8,"seeds":5,"reached":N,"iterations":[...]}
 */
import { agentsRuntime } from './agents-data';
import { ExitCode, defineCommand, integer, type CommandContext, type ParsedCommandLine } from './common';

const HELP = `Proof of learning: trains MAPPO on the three-agent two-step game once per seed and
reports how many seeds reach the optimum within the iteration budget. Prints a line per seed on
stderr, then one JSON object {"optimum","seeds","reached","iterations"} as the last line of stdout.`;

const OPTIONS = {
  seeds: { type: 'string', value: 'N', parse: integer(1, 1000), default: 5, description: 'number of seeds' },
  'first-seed': { type: 'string', value: 'n', parse: integer(0, 2 ** 31), default: 1, description: 'first seed' },
  iterations: { type: 'string', value: 'N', parse: integer(1, 100_000), default: 100, description: 'iteration budget per seed' },
  episodes: { type: 'string', value: 'N', parse: integer(1, 100_000), default: 64, description: 'episodes per iteration' },
  json: { type: 'boolean', description: 'only the JSON line on stdout' },
} as const;

async function run({ values }: ParsedCommandLine<typeof OPTIONS>, ctx: CommandContext): Promise<number> {
  const { seeds, iterations, episodes, 'first-seed': firstSeed } = values;
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
export const mappoCheckCommand = defineCommand({ options: OPTIONS, help: HELP, run, offline: true });
