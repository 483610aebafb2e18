/**
 * The replay speed `pipeline replay --dry-run` estimates with: the last measured one on this machine
 * (every complete private replay of at least 10,000 bars records its end-to-end rate in
 * `~/.cache/pipeline/replay-rate.json`, or `$XDG_CACHE_HOME/pipeline/`), else the figure of the
 * scale benchmark (BENCHMARKS.md, "Replay at research scale").
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { inheritedEnv } from '../config/config';

/** Bytes of one integrated result as a JSON line (measured: 194,326,191 bytes for 201,600 results). */
export const RESULT_BYTES = 964;

/**
 * The scale benchmark's end-to-end rate (bench/replay-scale.bench.ts, 50 symbols x a year of synthetic bars, first 2.79M bars;
 * on the 2-core development machine shared with other work; see BENCHMARKS.md).
 */
export const BENCH_REPLAY_RATE = { barsPerSecond: 746, measuredOn: '2026-12-07' } as const;

export interface RecordedRate {
  barsPerSecond: number;
  bars: number;
  symbols: number;
  /** ISO time of the replay's end. */
  at: string;
}

function rateFile(): string {
  const env = inheritedEnv();
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'pipeline', 'replay-rate.json');
}

/** Records a complete replay's rate; a failure to write is not the replay's failure. */
export async function recordReplayRate(rate: Omit<RecordedRate, 'at'>): Promise<void> {
  const file = rateFile();
  try {
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, `${JSON.stringify({ ...rate, at: new Date().toISOString() })}\n`);
  } catch {
    // a read-only home: the estimate falls back to the benchmark's figure
  }
}

/** The rate to estimate with, and where it comes from. */
export async function lastReplayRate(): Promise<{ barsPerSecond: number; source: string }> {
  try {
    const r = JSON.parse(await readFile(rateFile(), 'utf8')) as RecordedRate;
    if (Number.isFinite(r.barsPerSecond) && r.barsPerSecond > 0)
      return {
        barsPerSecond: r.barsPerSecond,
        source: `the last replay on this machine, ${r.bars} bars of ${r.symbols} symbols at ${r.at}`,
      };
  } catch {
    // none recorded yet
  }
  return {
    barsPerSecond: BENCH_REPLAY_RATE.barsPerSecond,
    source: `no replay recorded on this machine; the scale benchmark's rate of ${BENCH_REPLAY_RATE.measuredOn}`,
  };
}
