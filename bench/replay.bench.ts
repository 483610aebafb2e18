/**
 * `npm run bench -- replay`: `pipeline replay` of the bundled real bars (data/market, 3 symbols ×
 * 2,000 5m bars) through a private pipeline with training off, against a raw amqplib single hop of
 * the same bars in the same run (persistent, confirms in windows of 500, manual acks, one quorum
 * queue) and the issue's target of 12,604 bars/s. Runs the replay BENCH_REPLAY_RUNS times (3) with
 * batches (the default) and as many times with `--batch-bars 1` (one bar per message, the public
 * input), alternately. Also measures the broker's part of a strategic round trip (a ping-pong over
 * two quorum queues, persistent, confirmed) and prints the structural ceiling it implies: per symbol
 * one round trip per `PIPELINE_FEEDBACK_LAG` periods (6 bars each), all symbols in parallel.
 * The workers' CPU per bar (tactical and strategic, from the children's CPU time in /proc, their
 * start-up taken out with a short replay of the first 60 bars of each symbol) follows the
 * tactical worker's cost, which bounds the replay, and moves less than bars/s on a shared machine.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import * as amqp from 'amqplib';
import type { Bar } from '../schemas/bar.schema';
import { runCli } from '../src/cli/main';
import { readCsvBars, symbolFromCsvPath } from '../src/producers/csv-bars';
import { median } from '../src/util/quantile';

const TARGET = 12_604;
const RUNS = Number(process.env.BENCH_REPLAY_RUNS ?? 3);
const BATCH_BARS = Number(process.env.BENCH_REPLAY_BATCH_BARS ?? 256);
/** Bars per symbol of the short replay that measures the workers' start-up CPU. */
const SHORT_BARS = 60;
/** The strategic feedback lag the replay's pipeline runs with (PIPELINE_FEEDBACK_LAG). */
const LAG = Number(process.env.PIPELINE_FEEDBACK_LAG ?? 4);
const DATA = join(__dirname, '..', 'data', 'market');
const FILES = ['BTCUSDT_5m.csv', 'ETHUSDT_5m.csv', 'SOLUSDT_5m.csv'].map((f) => join(DATA, f));

async function rawHop(bars: Bar[]): Promise<number> {
  const name = `bench-replay-raw-${process.pid}`;
  execFileSync('rabbitmqctl', ['add_vhost', name], { stdio: 'ignore' });
  execFileSync('rabbitmqctl', ['set_permissions', '-p', name, 'guest', '.*', '.*', '.*'], {
    stdio: 'ignore',
  });
  const url = `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(name)}`;
  try {
    const pub = await amqp.connect(url, { noDelay: true });
    const sub = await amqp.connect(url, { noDelay: true });
    const pch = await pub.createConfirmChannel();
    await pch.assertQueue('raw_hop', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const sch = await sub.createChannel();
    await sch.prefetch(256);
    let received = 0;
    const done = new Promise<void>((resolve) => {
      void sch.consume('raw_hop', (msg) => {
        if (msg === null) return;
        JSON.parse(msg.content.toString());
        sch.ack(msg);
        if (++received === bars.length) resolve();
      });
    });
    const t0 = performance.now();
    for (let i = 0; i < bars.length; i += 500) {
      for (const bar of bars.slice(i, i + 500)) {
        pch.publish('', 'raw_hop', Buffer.from(JSON.stringify(bar)), {
          persistent: true,
          contentType: 'application/json',
        });
      }
      await pch.waitForConfirms();
    }
    await done;
    const rate = bars.length / ((performance.now() - t0) / 1000);
    await pub.close();
    await sub.close();
    return rate;
  } finally {
    execFileSync('rabbitmqctl', ['delete_vhost', name], { stdio: 'ignore' });
  }
}

/** Median time (ms) of a round trip over two quorum queues: publish, confirm, consume, publish back. */
async function pingPong(rounds: number): Promise<number> {
  const name = `bench-replay-rtt-${process.pid}`;
  execFileSync('rabbitmqctl', ['add_vhost', name], { stdio: 'ignore' });
  execFileSync('rabbitmqctl', ['set_permissions', '-p', name, 'guest', '.*', '.*', '.*'], {
    stdio: 'ignore',
  });
  const url = `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(name)}`;
  try {
    const a = await amqp.connect(url, { noDelay: true });
    const b = await amqp.connect(url, { noDelay: true });
    const ach = await a.createConfirmChannel();
    const bch = await b.createConfirmChannel();
    for (const q of ['rtt_there', 'rtt_back'])
      await ach.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    // The far side answers every message at once (as the strategic worker would, without its compute).
    await bch.consume('rtt_there', (msg) => {
      if (msg === null) return;
      bch.publish('', 'rtt_back', msg.content, { persistent: true }, () => bch.ack(msg));
    });
    let answer: (() => void) | null = null;
    await ach.consume('rtt_back', (msg) => {
      if (msg === null) return;
      ach.ack(msg);
      answer?.();
    });
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      const back = new Promise<void>((resolve) => (answer = resolve));
      ach.publish('', 'rtt_there', Buffer.from(String(i)), { persistent: true });
      await back;
      times.push(performance.now() - t0);
    }
    await a.close();
    await b.close();
    return median(times);
  } finally {
    execFileSync('rabbitmqctl', ['delete_vhost', name], { stdio: 'ignore' });
  }
}

/**
 * CPU time (user + system, ms) of this process's children that have ended and been waited for:
 * the private pipeline's workers once the replay stopped them (/proc/self/stat cutime + cstime).
 */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

async function replayOnce(
  batchBars: number,
  extraArgs: string[] = [],
): Promise<{ bars: number; results: number; seconds: number; workerCpuMs: number; workerCpuMsPerBar: number }> {
  const cpuBefore = childrenCpuMs();
  let stdout = '';
  let stderr = '';
  const out = new PassThrough().on('data', (d: Buffer) => (stdout += d.toString()));
  const err = new PassThrough().on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(['replay', ...FILES, '--out', '/dev/null', '--batch-bars', String(batchBars), ...extraArgs], {
    env: { ...process.env, PIPELINE_TRAINING: 'off' },
    out,
    err,
  });
  if (code !== 0) throw new Error(`replay exited ${code}: ${stderr}`);
  const lines = stdout.trim().split('\n');
  const summary = JSON.parse(lines[lines.length - 1] as string) as {
    bars: number;
    results: number;
    seconds: number;
  };
  // The workers' CPU (tactical and strategic) from start to stop, start-up included.
  const workerCpuMs = childrenCpuMs() - cpuBefore;
  return { ...summary, workerCpuMs, workerCpuMsPerBar: workerCpuMs / summary.bars };
}

async function main(): Promise<void> {
  const bars: Bar[] = [];
  for (const f of FILES)
    for await (const b of readCsvBars(f, { symbol: symbolFromCsvPath(f) })) bars.push(b);
  const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');
  process.stdout.write(`load average at start: ${load()}\n`);
  const raw = await rawHop(bars);
  const rttMs = await pingPong(200);
  // The workers' start-up and stop cost some 3 s of CPU, half of a 6,000-bar replay's: a short
  // replay (the first SHORT_BARS bars of each symbol) measures it, and the CPU per bar below is the
  // difference of the two runs over the difference of their bars.
  const firstTs = Math.min(...bars.map((b) => b.ts));
  const short = await replayOnce(BATCH_BARS, ['--to', String(firstTs + SHORT_BARS * 300_000)]);
  process.stdout.write(`short replay (start-up cost): ${short.bars} bars, workers' CPU ${(short.workerCpuMs / 1000).toFixed(2)} s\n`);
  const rates: number[] = [];
  const single: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const [batchBars, into] of [
      [BATCH_BARS, rates],
      [1, single],
    ] as const) {
      const s = await replayOnce(batchBars);
      const rate = s.bars / s.seconds;
      into.push(rate);
      const cpuPerBar = (s.workerCpuMs - short.workerCpuMs) / (s.bars - short.bars);
      if (batchBars === BATCH_BARS) cpu.push(cpuPerBar);
      process.stdout.write(
        `replay run ${i + 1}, --batch-bars ${batchBars}: ${s.bars} bars, ${s.results} results, ${s.seconds} s, ${rate.toFixed(0)} bars/s, workers' CPU ${cpuPerBar.toFixed(3)} ms per bar (start-up excluded)\n`,
      );
    }
  }
  const m = median(rates);
  const m1 = median(single);
  const symbols = FILES.length;
  // Per symbol one strategic round trip per LAG periods of 6 bars; the symbols go in parallel.
  const ceiling = (6 * LAG * symbols * 1000) / rttMs;
  process.stdout.write(`raw amqplib hop (quorum)  ${raw.toFixed(0)} msg/s\n`);
  process.stdout.write(`broker round trip (two quorum hops, median)  ${rttMs.toFixed(2)} ms\n`);
  process.stdout.write(
    `structural ceiling: ${6 * LAG} bars × ${symbols} symbols per round trip / ${rttMs.toFixed(2)} ms = ${ceiling.toFixed(0)} bars/s (broker part only; add the strategic compute per 30m bar)\n`,
  );
  process.stdout.write(
    `replay, batches of ${BATCH_BARS}, median of ${RUNS}   ${m.toFixed(0)} bars/s = ${(m / raw).toFixed(3)} × raw hop = ${(m / TARGET).toFixed(3)} × target ${TARGET}\n`,
  );
  process.stdout.write(
    `replay, one bar per message, median of ${RUNS}   ${m1.toFixed(0)} bars/s = ${(m1 / raw).toFixed(3)} × raw hop; batches ${(m / m1).toFixed(2)}× that\n`,
  );
  process.stdout.write(`workers' CPU per bar (tactical + strategic, start-up excluded), batches, median of ${RUNS}   ${median(cpu).toFixed(3)} ms\n`);
  process.stdout.write(`load average at end: ${load()}\n`);
  process.stdout.write(
    `${JSON.stringify({ bench: 'replay', bars: bars.length, batchBars: BATCH_BARS, rawHopMsgPerS: Math.round(raw), roundTripMs: rttMs, ceilingBarsPerS: Math.round(ceiling), replayBarsPerS: rates.map(Math.round), workerCpuMsPerBar: cpu, startupCpuMs: short.workerCpuMs, medianBarsPerS: Math.round(m), oneBarPerMessageBarsPerS: single.map(Math.round), oneBarPerMessageMedian: Math.round(m1), ratioToRaw: m / raw, ratioToTarget: m / TARGET, targetMet: m >= TARGET })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
