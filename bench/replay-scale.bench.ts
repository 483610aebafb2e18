/**
 * `npm run bench -- replay-scale`: a research-sized replay end to end. Writes synthetic 5m bars
 * (src/producers/synthetic-market.ts, one seed per symbol) for BENCH_SCALE_SYMBOLS symbols (50) ×
 * BENCH_SCALE_BARS bars (105,120: a year) as our CSV, runs `pipeline replay <folder> --out
 * results.jsonl` as a child process (bin/pipeline.js: the replay, its in-process supervisor and the
 * worker processes) and then `pipeline report results.jsonl --out report.html`, and samples the
 * resident memory (VmRSS in /proc) of every process of each command's tree every 2 s.
 * Prints wall time, bars/s, the peak RSS of every process and its slope after warm-up (least squares
 * over the samples after the first quarter of the run: flat memory is a slope near 0 MB/min), and a
 * line every minute (results done, rate, ETA, RSS of each process), so that a run stopped early
 * still says how far it got and how memory moved. The report is opened in headless Chromium
 * (/usr/bin/chromium or CHROMIUM_PATH): its console errors are counted and a screenshot of the top of
 * the page goes to bench/results/replay-scale-<date>.png.
 * `--bars N` / `--symbols N` override the sizes (a smaller run first: `-- --bars 4032` is two weeks).
 * `--report-lines N` measures the report on N lines when the replay gave fewer: the replay's results
 * are repeated, each copy shifted in time past the one before (ts, close_ts, bar_close_ts), so a
 * two-week replay gives the report a file of a year's length with real result bodies.
 * The files go to a temporary folder that is removed at the end (BENCH_SCALE_KEEP=1 keeps it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { generateSyntheticMarket } from '../src/producers/synthetic-market';

const SCREENSHOT = join(__dirname, 'results', `replay-scale-${new Date().toISOString().slice(0, 10)}.png`);

/** Opens the report in headless Chromium: console errors and warnings, and the charts drawn. */
async function openInChromium(file: string): Promise<string> {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    const t0 = performance.now();
    await page.goto(`file://${file}`, { waitUntil: 'load', timeout: 300_000 });
    const charts = await page.$$eval('svg.chart', (svgs) => svgs.length);
    const ms = performance.now() - t0;
    await page.setViewportSize({ width: 1024, height: 1600 });
    mkdirSync(join(__dirname, 'results'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    return `${charts} charts, loaded in ${(ms / 1000).toFixed(1)} s, ${problems.length} console errors/warnings${problems.length > 0 ? `: ${problems.slice(0, 3).join(' | ')}` : ''}; screenshot ${SCREENSHOT}`;
  } finally {
    await browser.close();
  }
}

function flag(name: string, env: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : process.env[env];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const SYMBOLS = flag('symbols', 'BENCH_SCALE_SYMBOLS', 50);
const BARS = flag('bars', 'BENCH_SCALE_BARS', 105_120);
const REPORT_LINES = process.argv.includes('--report-lines') ? flag('report-lines', 'BENCH_SCALE_REPORT_LINES', 1) : 0;
const SAMPLE_MS = 2000;
const LINE_MS = 60_000;
const BIN = join(__dirname, '..', 'bin', 'pipeline.js');
const GIB = 1024 ** 3;

/** pid → parent pid of every process. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: the fields after its ')' are fixed.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(d), Number(rest[1]));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function treeOf(root: number): number[] {
  const ppid = parents();
  const tree = [root];
  for (let i = 0; i < tree.length; i++)
    for (const [pid, parent] of ppid) if (parent === tree[i]) tree.push(pid);
  return tree;
}

function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

/** A short name for a process: the worker role, or the command. */
function labelOf(pid: number, root: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    // `pipeline replay` runs the supervisor in its own process; `pipeline report` has none.
    if (pid === root) return `${argv.slice(2, 3).join(' ')} (cli${argv[2] === 'replay' ? ' + supervisor' : ''})`;
    // The supervisor forks each worker with its role as the last argument.
    const last = argv[argv.length - 1] ?? '';
    if (/^[a-z]+$/.test(last)) return `${last} worker (pid ${pid})`;
    // Short-lived helpers (rabbitmqctl and its Erlang VM, esbuild of tsx): one line per command.
    return `helper: ${(argv[0] ?? '').split('/').pop() ?? ''}${argv.some((a) => a.includes('rabbitmqctl')) ? ' (rabbitmqctl)' : ''}`;
  } catch {
    return `pid ${pid}`;
  }
}

const mb = (b: number): string => `${(b / 1024 ** 2).toFixed(0)} MB`;

interface Watched {
  code: number | null;
  seconds: number;
  peaks: Map<string, number>;
  /** Per process: RSS samples (seconds since start, bytes). */
  samples: Map<string, [number, number][]>;
  stderrTail: string[];
}

/** Least-squares slope in MB per minute of the samples after the first quarter of the run (warm-up). */
function slopeAfterWarmup(points: readonly [number, number][], seconds: number): number | null {
  const after = points.filter(([t]) => t >= seconds / 4);
  if (after.length < 3) return null;
  const mt = after.reduce((a, [t]) => a + t, 0) / after.length;
  const mr = after.reduce((a, [, r]) => a + r, 0) / after.length;
  let num = 0;
  let den = 0;
  for (const [t, r] of after) {
    num += (t - mt) * (r - mr);
    den += (t - mt) ** 2;
  }
  return den === 0 ? null : (num / den) * 60 / 1024 ** 2;
}

function printPeaks(w: Watched): void {
  for (const [label, peak] of w.peaks) {
    const slope = slopeAfterWarmup(w.samples.get(label) ?? [], w.seconds);
    process.stdout.write(
      `  peak RSS ${label}: ${mb(peak)}${peak >= GIB ? '  OVER 1 GiB' : ''}` +
        `${slope === null ? '' : `, slope after warm-up ${slope >= 0 ? '+' : ''}${slope.toFixed(2)} MB/min`}\n`,
    );
  }
}

/** Runs `pipeline <args>`, sampling the RSS of its process tree; `onLine` sees each stderr line. */
function watch(args: string[], what: string, onLine?: (line: string) => void, progress?: () => string): Promise<Watched> {
  const t0 = performance.now();
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, AMQP_URL: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const root = child.pid as number;
  const peaks = new Map<string, number>();
  const samples = new Map<string, [number, number][]>();
  const labels = new Map<number, string>();
  const stderrTail: string[] = [];
  let buffered = '';
  child.stderr?.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
      onLine?.(line);
    }
  });
  let lastLine = t0;
  const sample = (): void => {
    const now: string[] = [];
    for (const pid of treeOf(root)) {
      const rss = rssBytes(pid);
      if (rss === null) continue;
      let label = labels.get(pid);
      if (label === undefined) labels.set(pid, (label = labelOf(pid, root)));
      if (rss > (peaks.get(label) ?? 0)) peaks.set(label, rss);
      let own = samples.get(label);
      if (own === undefined) samples.set(label, (own = []));
      own.push([(performance.now() - t0) / 1000, rss]);
      now.push(`${label} ${mb(rss)}`);
    }
    if (performance.now() - lastLine >= LINE_MS) {
      lastLine = performance.now();
      const s = ((lastLine - t0) / 1000).toFixed(0);
      process.stdout.write(`[${what} +${s} s] ${progress?.() ?? ''} load ${loadavg()[0]?.toFixed(1)} | RSS ${now.join(', ')}\n`);
    }
  };
  const timer = setInterval(sample, SAMPLE_MS);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, seconds: (performance.now() - t0) / 1000, peaks, samples, stderrTail });
    });
  });
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-replay-scale-'));
  const total = SYMBOLS * BARS;
  process.stdout.write(
    `replay-scale: ${SYMBOLS} symbols × ${BARS} bars = ${total} bars of synthetic 5m data, in ${dir}; ` +
      `${new Date().toISOString()}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`,
  );
  try {
    const data = join(dir, 'bars');
    mkdirSync(data);
    const tGen = performance.now();
    for (let i = 0; i < SYMBOLS; i++) {
      const symbol = `SYN${String(i).padStart(2, '0')}USDT`;
      const { bars } = generateSyntheticMarket({ seed: 1000 + i, symbol, bars: BARS, startPrice: 50 + 10 * i });
      const out = createWriteStream(join(data, `${symbol}_5m.csv`));
      out.write('timestamp,open,high,low,close,volume\n');
      for (const b of bars) out.write(`${b.ts},${b.open},${b.high},${b.low},${b.close},${b.volume}\n`);
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    }
    process.stdout.write(`wrote the CSV files in ${((performance.now() - tGen) / 1000).toFixed(0)} s\n`);

    const results = join(dir, 'results.jsonl');
    let done = 0;
    const tReplay = performance.now();
    const replay = await watch(
      ['replay', data, '--out', results],
      'replay',
      (line) => {
        const m = /^replay: (\d+)\/(\d+) results/.exec(line);
        if (m !== null) done = Number(m[1]);
      },
      () => {
        const s = (performance.now() - tReplay) / 1000;
        const rate = done / s;
        const eta = rate > 0 ? (total - done) / rate : Number.NaN;
        return `${done}/${total} results (${((100 * done) / total).toFixed(1)} %), ${rate.toFixed(0)} results/s, ETA ${Number.isFinite(eta) ? `${(eta / 60).toFixed(0)} min` : 'unknown'};`;
      },
    );
    const summaryLine = replay.stderrTail.find((l) => /bars published/.test(l)) ?? '(no summary)';
    const resultsBytes = statSync(results).size;
    process.stdout.write(
      `\nreplay exit ${replay.code}: ${replay.seconds.toFixed(0)} s wall (start-up, reading and the end included), ` +
        `${(total / replay.seconds).toFixed(0)} bars/s over the wall time\n  ${summaryLine}\n` +
        `  results file ${(resultsBytes / 1024 ** 2).toFixed(0)} MB (${(resultsBytes / total).toFixed(0)} bytes a result)\n`,
    );
    printPeaks(replay);
    if (replay.code !== 0) process.stdout.write(`  stderr tail:\n    ${replay.stderrTail.join('\n    ')}\n`);

    let reportInput = results;
    if (REPORT_LINES > total) {
      reportInput = join(dir, 'results-extended.jsonl');
      const tExt = performance.now();
      const lines = readFileSync(results, 'utf8').split('\n').filter((l) => l.startsWith('{"v":'));
      const spanMs = BARS * 300_000;
      const out = createWriteStream(reportInput);
      let written = 0;
      for (let copy = 0; written < REPORT_LINES; copy++) {
        const shift = copy * spanMs;
        for (const line of lines) {
          if (written === REPORT_LINES) break;
          const shifted = line.replace(/"(ts|close_ts|bar_close_ts)":(\d+)/g, (_m, k: string, v: string) => `"${k}":${Number(v) + shift}`);
          if (!out.write(`${shifted}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
          written++;
        }
      }
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
      process.stdout.write(
        `\nreport input: the ${lines.length} results repeated, shifted in time, to ${written} lines ` +
          `(${(statSync(reportInput).size / 1024 ** 2).toFixed(0)} MB) in ${((performance.now() - tExt) / 1000).toFixed(0)} s\n`,
      );
    }
    const report = await watch(['report', reportInput, '--out', join(dir, 'report.html')], 'report');
    const reportBytes = report.code === 0 ? statSync(join(dir, 'report.html')).size : 0;
    process.stdout.write(
      `\nreport exit ${report.code}: ${report.seconds.toFixed(0)} s for ${Math.max(total, REPORT_LINES)} lines, HTML ${(reportBytes / 1024 ** 2).toFixed(1)} MB\n`,
    );
    printPeaks(report);
    if (report.code === 0)
      process.stdout.write(`  in headless Chromium: ${await openInChromium(join(dir, 'report.html')).catch((e: Error) => `could not open: ${e.message}`)}\n`);
    if (report.code !== 0) process.stdout.write(`  stderr tail:\n    ${report.stderrTail.join('\n    ')}\n`);
    const peakOf = (w: Watched): Record<string, number> =>
      Object.fromEntries([...w.peaks].filter(([l]) => !l.startsWith('helper')).map(([l, b]) => [l, Math.round(b / 1024 ** 2)]));
    const slopeOf = (w: Watched): Record<string, number | null> =>
      Object.fromEntries(
        [...w.samples]
          .filter(([l]) => !l.startsWith('helper'))
          .map(([l, pts]) => {
            const v = slopeAfterWarmup(pts, w.seconds);
            return [l, v === null ? null : Math.round(v * 100) / 100];
          }),
      );
    process.stdout.write(
      `${JSON.stringify({
        bench: 'replay-scale',
        symbols: SYMBOLS,
        barsPerSymbol: BARS,
        replayExit: replay.code,
        replaySeconds: Math.round(replay.seconds),
        barsPerSecondWall: Math.round(total / replay.seconds),
        replayPeakRssMb: peakOf(replay),
        replaySlopeMbPerMin: slopeOf(replay),
        reportLines: Math.max(total, REPORT_LINES),
        reportExit: report.code,
        reportSeconds: Math.round(report.seconds),
        reportPeakRssMb: peakOf(report),
        reportSlopeMbPerMin: slopeOf(report),
      })}\n`,
    );
    if (replay.code !== 0 || report.code !== 0) process.exitCode = 1;
  } finally {
    if (process.env.BENCH_SCALE_KEEP === '1') process.stdout.write(`kept ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}

void main();
