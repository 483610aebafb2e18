/**
 * Pattern store restart benchmark: `npm run bench -- pattern-restart [--patterns 1000000] [--dim 13]
 * [--skip-rebuild] [--keep <dir>]`. With `--keep`, the built store is kept in `<dir>` and, when
 * `<dir>` already holds one, reused instead of built again (the build takes minutes).
 *
 * Builds one symbol's store of `--patterns` patterns (a seeded random walk of `--dim` values, every
 * pattern merged into its segment's HNSW graph, as the strategic worker leaves it), persists it with
 * {@link PatternStoreFiles}, then starts fresh processes and measures, from process start to "ready"
 * (the store loaded and answering):
 * - **restart**: the incremental format, graphs of sealed segments read from their files and only the
 *   newest segment's graph rebuilt;
 * - **full rebuild**: the same data with no graph files, so every graph is rebuilt from its vectors,
 *   which is what a restart cost before (the issue's ~5,900 inserts/s path).
 * Each child answers 200 fixed queries; their answers must equal those of the store before the
 * restart (the benchmark fails otherwise). Prints a final JSON line.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatternStoreFiles } from '../src/state/pattern-store-files';
import { quantile } from '../src/util/quantile';
import type { PatternStore } from '../src/strategic';
import { SeededRandom } from '../src/util/random';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const PATTERNS = flag('--patterns', 1_000_000);
const DIM = flag('--dim', 13);
const HALF_HOUR = 1_800_000;

/** Answers of 200 seeded queries, hashed: equal hashes, equal answers (ids, distances, outcomes). */
function answersHash(store: PatternStore): string {
  const rng = new SeededRandom(99);
  const hash = createHash('sha256');
  for (let q = 0; q < 200; q++) {
    const query = Float32Array.from({ length: DIM }, () => rng.normal() * 3);
    hash.update(JSON.stringify(store.search(query, 10)));
  }
  return hash.digest('hex');
}

async function child(dir: string): Promise<void> {
  const files = await PatternStoreFiles.open({ dir });
  const readyMs = performance.now(); // since this process started
  const hash = answersHash(files.store);
  // Query latency of the segmented store (one graph per segment), after the timed part.
  const rng = new SeededRandom(5);
  const lat: number[] = [];
  for (let q = 0; q < 2200; q++) {
    const query = Float32Array.from({ length: files.store.dim }, () => rng.normal() * 3);
    const t = performance.now();
    files.store.search(query, 10);
    if (q >= 200) lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  const knn = {
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
  };
  process.stdout.write(`${JSON.stringify({ readyMs, hash, report: files.loadReport, knn })}\n`);
}

function runChild(
  dir: string,
): Promise<{
  wallMs: number;
  readyMs: number;
  hash: string;
  report: PatternStoreFiles['loadReport'];
}> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', __filename, '--child', dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let wallMs = 0;
    proc.stdout.on('data', (chunk: Buffer) => {
      if (wallMs === 0) wallMs = performance.now() - started;
      out += chunk.toString();
    });
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`child exited with ${code}`));
      resolve({
        wallMs,
        ...(JSON.parse(out.trim()) as {
          readyMs: number;
          hash: string;
          report: PatternStoreFiles['loadReport'];
        }),
      });
    });
  });
}

async function main(): Promise<void> {
  const childAt = args.indexOf('--child');
  if (childAt >= 0) return child(args[childAt + 1] as string);

  const root = mkdtempSync(join(tmpdir(), 'pattern-restart-'));
  try {
    const keepAt = args.indexOf('--keep');
    const dir = keepAt >= 0 ? (args[keepAt + 1] as string) : join(root, 'store');
    const files = await PatternStoreFiles.open({ dir, store: { dim: DIM } });
    const store = files.store;
    const rng = new SeededRandom(7);
    const t0 = performance.now();
    const chunk = 50_000;
    const walk = new Float64Array(DIM);
    if (store.size > 0)
      console.log(`reusing the ${store.size.toLocaleString('en-US')} patterns in ${dir}`);
    for (let from = store.size; from < PATTERNS; from += chunk) {
      const n = Math.min(chunk, PATTERNS - from);
      const vectors = new Float32Array(n * DIM);
      for (let i = 0; i < n; i++) {
        for (let d = 0; d < DIM; d++) {
          walk[d] = (walk[d] as number) * 0.97 + rng.normal();
          vectors[i * DIM + d] = walk[d] as number;
        }
      }
      const ts = Float64Array.from({ length: n }, (_, i) => (from + i) * HALF_HOUR);
      const outcomes = Float64Array.from({ length: n }, () => rng.normal() / 100);
      store.addBatch({
        vectors,
        ts,
        symbols: 'BENCH',
        regimes: Uint8Array.from({ length: n }, (_, i) => (from + i) % 4),
        outcomes,
      });
      store.mergeStep(n);
      await files.sync();
      process.stdout.write(`\rbuilt ${(from + n).toLocaleString('en-US')} patterns`);
    }
    const buildMs = performance.now() - t0;
    if (buildMs > 1000)
      process.stdout.write(
        `\rbuilt ${PATTERNS.toLocaleString('en-US')} patterns (${DIM} dims) in ${(buildMs / 1000).toFixed(1)} s (graphs ${((PATTERNS / buildMs) * 1000).toFixed(0)} inserts/s)\n`,
      );
    // The reference answers are those of the store as built; a reused store's are those of its
    // first load here (kept beside it when it was built, if it was built with --keep).
    const hashFile = `${dir}.answers`;
    const built = PATTERNS > 0 && store.size === PATTERNS && buildMs > 1000;
    const expected =
      built || !existsSync(hashFile) ? answersHash(store) : readFileSync(hashFile, 'utf8');
    if (keepAt >= 0 && built) writeFileSync(hashFile, expected);

    const restart = await runChild(dir);
    console.log(
      `restart      ready ${(restart.readyMs / 1000).toFixed(2)} s after process start (wall ${(restart.wallMs / 1000).toFixed(2)} s): ` +
        `${restart.report.graphsRead} graphs read, ${restart.report.rebuiltInserts.toLocaleString('en-US')} inserts rebuilt, load ${(restart.report.loadMs / 1000).toFixed(2)} s`,
    );
    if (restart.hash !== expected)
      throw new Error('answers after the restart differ from those before it');

    let rebuild: Awaited<ReturnType<typeof runChild>> | null = null;
    let worstMs: number | null = null;
    if (!args.includes('--skip-rebuild')) {
      const bare = join(root, 'no-graphs');
      cpSync(dir, bare, { recursive: true });
      for (const f of readdirSync(bare)) if (f.endsWith('.hnsw')) rmSync(join(bare, f));
      rebuild = await runChild(bare);
      console.log(
        `full rebuild ready ${(rebuild.readyMs / 1000).toFixed(2)} s after process start: ${rebuild.report.rebuiltInserts.toLocaleString('en-US')} inserts ` +
          `(${((rebuild.report.rebuiltInserts / rebuild.report.loadMs) * 1000).toFixed(0)} /s)`,
      );
      if (rebuild.hash !== expected)
        throw new Error('answers after a full rebuild differ from those before it');
      // The newest segment can hold up to segmentCapacity − 1 patterns to rebuild: the worst case.
      const cap = store.resolvedOptions.segmentCapacity;
      worstMs =
        restart.readyMs +
        ((cap - 1 - restart.report.rebuiltInserts) / rebuild.report.rebuiltInserts) *
          rebuild.report.loadMs;
      console.log(
        `worst case   ready about ${(worstMs / 1000).toFixed(2)} s (newest segment holding ${(cap - 1).toLocaleString('en-US')} patterns, at the rebuild rate above)`,
      );
    }
    console.log('answers identical before and after: yes');
    console.log(
      JSON.stringify({
        patterns: PATTERNS,
        dim: DIM,
        buildMs: Math.round(buildMs),
        restartReadyMs: Math.round(restart.readyMs),
        restartWallMs: Math.round(restart.wallMs),
        restartLoadMs: Math.round(restart.report.loadMs),
        rebuiltInserts: restart.report.rebuiltInserts,
        fullRebuildReadyMs: rebuild === null ? null : Math.round(rebuild.readyMs),
        worstCaseReadyMs: worstMs === null ? null : Math.round(worstMs),
        identical: true,
      }),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
