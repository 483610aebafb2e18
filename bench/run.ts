/**
 * Runs every benchmark under bench/ (files named `*.bench.ts`), one after another in its own
 * process so that one benchmark's garbage and JIT state do not colour the next. Pass names to run
 * a subset: `npm run bench -- indicators pipeline`; arguments starting with `--` go to every
 * benchmark (`npm run bench -- strategic --skip-1m`). `npm run bench -- pattern-restart` measures a
 * strategic restart with a 1M-pattern store against a full graph rebuild. `npm run bench -- gateway`
 * runs 200 WebSocket clients against the gateway while the pipeline runs (bench/gateway.bench.ts).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
// Names come first; from the first --flag on, everything (flags and their values) goes to every benchmark.
const firstFlag = args.findIndex((a) => a.startsWith('--'));
const filters = firstFlag < 0 ? args : args.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
// The soak, the year-long replay and the year of pattern stores run for many minutes (hours for
// replay-scale): only when named exactly (`npm run bench -- soak`, `npm run bench -- replay-scale`,
// `npm run bench -- pattern-memory`).
const LONG = ['soak.bench.ts', 'replay-scale.bench.ts', 'pattern-memory.bench.ts'];
const files = readdirSync(__dirname)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) =>
    filters.length === 0
      ? !LONG.includes(f)
      : filters.some((name) => f === `${name}.bench.ts` || (f.includes(name) && !LONG.includes(f))),
  )
  .sort();
let failed = 0;
for (const file of files) {
  process.stdout.write(`\n=== ${file}\n`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, file), ...flags], {
    stdio: 'inherit',
  });
  if (run.status !== 0) {
    failed++;
    process.stdout.write(`!!! ${file} exited with ${run.status ?? run.signal}\n`);
  }
}
process.exit(failed === 0 ? 0 : 1);
