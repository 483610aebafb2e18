import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StartupError, ValidationError } from '../errors';
import { parseCsvBarsText } from '../producers/csv-bars';
import type { EnvBar } from '../learning/trading-env';

/**
 * The learning code, loaded on the first call (see src/cli/agents-runtime.ts). A plain require:
 * bin/pipeline.js runs the sources through tsx's CommonJS hook, which resolves require() of a
 * TypeScript file but not import().
 */
export function agentsRuntime(): typeof import('./agents-runtime') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded when a command runs, see above
  return require('./agents-runtime') as typeof import('./agents-runtime');
}

/** Real 5m bars bundled with the repository (see data/README.md). */
export const REAL_DATA_DIR = join('data', 'market', '5m');
/** The shipped model registry (see docs/agents.md). */
export const SHIPPED_MODEL_DIR = join('models', 'agents');
/** Fraction of each real symbol's bars used for training; evaluation tests on the rest. */
export const TRAIN_FRACTION = 2 / 3;
/** Seeds of the synthetic training markets (evaluation uses 201–203 per family: disjoint). */
export const SYNTHETIC_TRAIN_SEEDS = [101, 102, 103] as const;
/** Seed of the synthetic markets used to pick the checkpoint: neither trained nor tested on. */
export const SYNTHETIC_VALIDATION_SEEDS = [151] as const;
export const SYNTHETIC_TEST_SEEDS = [201, 202, 203] as const;

/**
 * `<SYMBOL>_5m.csv` files of a directory, symbol → bars (oldest first). Throws a StartupError
 * naming `--data` (exit 2) when there are none.
 */
export function readRealBars(dir: string, only?: readonly string[]): Map<string, EnvBar[]> {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => /^[A-Z0-9]+_5m\.csv$/.test(f)).sort();
  } catch {
    files = [];
  }
  const out = new Map<string, EnvBar[]>();
  for (const f of files) {
    const symbol = f.split('_')[0] as string;
    if (only && only.length > 0 && !only.includes(symbol)) continue;
    const path = join(dir, f);
    // The project's one CSV reader (as publish and replay read): epoch ms/µs or ISO, UTC without a zone.
    let bars;
    try {
      bars = parseCsvBarsText(readFileSync(path, 'utf8'), { symbol }, path);
    } catch (err) {
      if (err instanceof ValidationError) throw new StartupError('--data', `${path}: ${err.message}`);
      throw err;
    }
    out.set(
      symbol,
      bars.map(({ ts, open, high, low, close, volume }) => ({ ts, open, high, low, close, volume })),
    );
  }
  if (out.size === 0) {
    throw new StartupError(
      '--data',
      `no <SYMBOL>_5m.csv files in ${dir}${only?.length ? ` for ${only.join(',')}` : ''}: pass --data <dir> (default ${REAL_DATA_DIR})`,
    );
  }
  return out;
}
