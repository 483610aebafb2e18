/**
 * `npm run bench -- replay`: `pipeline replay` of the bundled real bars (data/market, 3 symbols ×
 * 2,000 5m bars) through a private pipeline with training off, against a raw amqplib single hop of
 * the same bars in the same run (persistent, confirms in windows of 500, manual acks, one quorum
 * queue) and the target of 12,604 bars/s. Repeats the replay BENCH_REPLAY_RUNS times (3).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import * as amqp from 'amqplib';
import type { Bar } from '../schemas/bar.schema';
import { runCli } from '../src/cli/main';
import { readCsvBars, symbolFromCsvPath } from '../src/producers/csv-bars';

const TARGET = 12_604;
const RUNS = Number(process.env.BENCH_REPLAY_RUNS ?? 3);
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

async function replayOnce(): Promise<{ bars: number; results: number; seconds: number }> {
  let stdout = '';
  let stderr = '';
  const out = new PassThrough().on('data', (d: Buffer) => (stdout += d.toString()));
  const err = new PassThrough().on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(['replay', ...FILES, '--out', '/dev/null'], {
    env: { ...process.env, PIPELINE_TRAINING: 'off' },
    out,
    err,
  });
  if (code !== 0) throw new Error(`replay exited ${code}: ${stderr}`);
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as {
    bars: number;
    results: number;
    seconds: number;
  };
}

async function main(): Promise<void> {
  const bars: Bar[] = [];
  for (const f of FILES)
    for await (const b of readCsvBars(f, { symbol: symbolFromCsvPath(f) })) bars.push(b);
  const raw = await rawHop(bars);
  const rates: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = await replayOnce();
    const rate = s.bars / s.seconds;
    rates.push(rate);
    process.stdout.write(
      `replay run ${i + 1}: ${s.bars} bars, ${s.results} results, ${s.seconds} s, ${rate.toFixed(0)} bars/s\n`,
    );
  }
  const sorted = [...rates].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  process.stdout.write(`raw amqplib hop (quorum)  ${raw.toFixed(0)} msg/s\n`);
  process.stdout.write(
    `replay, median of ${RUNS}   ${median.toFixed(0)} bars/s = ${(median / raw).toFixed(3)} × raw hop = ${(median / TARGET).toFixed(3)} × target ${TARGET}\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ bench: 'replay', bars: bars.length, rawHopMsgPerS: Math.round(raw), replayBarsPerS: rates.map(Math.round), medianBarsPerS: Math.round(median), ratioToRaw: median / raw, ratioToTarget: median / TARGET, targetMet: median >= TARGET })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
