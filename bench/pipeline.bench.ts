/**
 * End-to-end pipeline benchmark against the local RabbitMQ and Redis.
 *
 * 1. A raw amqplib single hop of the same messages (persistent, confirms in windows of 500, manual
 *    acks, one queue of the pipeline's queue type): the reference.
 * 2. The pipeline: supervisor + workers, N bars of several symbols published with confirms, timed
 *    until the last integrated result arrives. Reported as bars/s and as a ratio of the raw hop.
 * 3. Publish → result latency measured by the publishing client at a steady rate (default 400/s).
 * 4. Worker RSS sampled during both loads.
 *
 * Env: BENCH_BARS (default 20000), BENCH_SYMBOLS (8), BENCH_RATE (400), BENCH_LATENCY_SECONDS (20).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as amqp from 'amqplib';
import type { Bar } from '../schemas/bar.schema';
import { EXCHANGE_BARS, QUEUE_RESULTS, routingKeys, workQueueOptions } from '../src/broker/topology';
import { loadConfig } from '../src/config/config';
import { generateSyntheticMarket } from '../src/producers/synthetic-market';
import { rolesFor } from '../src/supervisor/ipc';
import { Supervisor } from '../src/supervisor/supervisor';
import Redis from 'ioredis';

const N = Number(process.env.BENCH_BARS ?? 20000);
const SYMBOLS = Number(process.env.BENCH_SYMBOLS ?? 8);
const RATE = Number(process.env.BENCH_RATE ?? 400);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 20);
const WINDOW = 500;

function vhost(label: string): { name: string; url: string; dispose: () => void } {
  const name = `bench-${label}-${randomUUID().slice(0, 6)}`;
  execFileSync('rabbitmqctl', ['add_vhost', name], { stdio: 'ignore' });
  execFileSync('rabbitmqctl', ['set_permissions', '-p', name, 'guest', '.*', '.*', '.*'], { stdio: 'ignore' });
  return {
    name,
    url: `amqp://guest:guest@127.0.0.1:5672/${name}`,
    dispose: () => execFileSync('rabbitmqctl', ['delete_vhost', name], { stdio: 'ignore' }),
  };
}

function makeBars(count: number, seed: number, startTs?: number): Bar[] {
  const per = Math.ceil(count / SYMBOLS);
  const markets = Array.from({ length: SYMBOLS }, (_, i) =>
    generateSyntheticMarket({ seed: seed + i, symbol: `SYM${i}`, bars: per, ...(startTs === undefined ? {} : { startTs }) }).bars,
  );
  return markets.flat().sort((a, b) => a.ts - b.ts || a.symbol.localeCompare(b.symbol)).slice(0, count);
}

async function publishWindowed(channel: amqp.ConfirmChannel, bars: Bar[], exchange: string, key: (b: Bar) => string): Promise<void> {
  for (let i = 0; i < bars.length; i += WINDOW) {
    for (const bar of bars.slice(i, i + WINDOW)) {
      channel.publish(exchange, key(bar), Buffer.from(JSON.stringify(bar)), {
        persistent: true,
        contentType: 'application/json',
        messageId: `${bar.symbol}:5m:${bar.ts}`,
      });
    }
    await channel.waitForConfirms();
  }
}

async function rawHop(bars: Bar[], queueType: 'quorum' | 'classic'): Promise<number> {
  const v = vhost(`raw-${queueType}`);
  try {
    const pub = await amqp.connect(v.url, { noDelay: true });
    const sub = await amqp.connect(v.url, { noDelay: true });
    const pch = await pub.createConfirmChannel();
    const queue = 'raw_hop';
    await pch.assertQueue(queue, { ...workQueueOptions({ queueType, maxAttempts: 10 }), arguments: queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {} });
    const sch = await sub.createChannel();
    await sch.prefetch(256);
    let received = 0;
    const done = new Promise<void>((resolve) => {
      void sch.consume(queue, (msg) => {
        if (msg === null) return;
        JSON.parse(msg.content.toString());
        sch.ack(msg);
        if (++received === bars.length) resolve();
      });
    });
    const t0 = performance.now();
    await publishWindowed(pch, bars, '', () => queue);
    await done;
    const seconds = (performance.now() - t0) / 1000;
    await pub.close();
    await sub.close();
    return bars.length / seconds;
  } finally {
    v.dispose();
  }
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) / 1024;
  } catch {
    return 0;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function pipelineRun(bars: Bar[], latencyBars: Bar[]): Promise<Record<string, unknown>> {
  const v = vhost('pipeline');
  const prefix = `bench:${randomUUID().slice(0, 6)}:`;
  const env = { ...process.env, AMQP_URL: v.url, PIPELINE_REDIS_PREFIX: prefix, HEALTH_PORT: '0', LOG_LEVEL: 'warn', PIPELINE_TRAINING: 'off', PIPELINE_DATA_DIR: `/tmp/${prefix.replace(/:/g, '_')}` };
  const config = loadConfig(env);
  const supervisor = new Supervisor({ config, roles: rolesFor(config), env });
  const rss: Record<string, number> = {};
  const sample = setInterval(() => {
    for (const [role, pid] of Object.entries(supervisor.pids())) rss[role] = Math.max(rss[role] ?? 0, rssMb(pid));
  }, 250);
  try {
    await supervisor.start();
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${supervisor.healthPort}/health`).catch(() => null);
      if (res?.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const pub = await amqp.connect(v.url, { noDelay: true });
    const sub = await amqp.connect(v.url, { noDelay: true });
    const pch = await pub.createConfirmChannel();
    const sch = await sub.createChannel();
    await sch.prefetch(1000);
    let received = 0;
    let target = bars.length;
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let resolveDone: () => void = () => undefined;
    let done = new Promise<void>((r) => (resolveDone = r));
    await sch.consume(QUEUE_RESULTS, (msg) => {
      if (msg === null) return;
      const id = msg.properties.messageId as string;
      const t = sentAt.get(id);
      if (t !== undefined) latencies.push(performance.now() - t);
      sch.ack(msg);
      if (++received === target) resolveDone();
    });
    // Throughput: everything at once, confirms in windows.
    const t0 = performance.now();
    await publishWindowed(pch, bars, EXCHANGE_BARS, (b) => routingKeys.bar('5m', b.symbol));
    await done;
    const throughput = bars.length / ((performance.now() - t0) / 1000);
    const rssThroughput = { ...rss };
    // Latency: a steady rate, each bar published alone (confirm awaited in the background).
    received = 0;
    target = latencyBars.length;
    done = new Promise<void>((r) => (resolveDone = r));
    const start = performance.now();
    for (let i = 0; i < latencyBars.length; i++) {
      const due = start + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const bar = latencyBars[i]!;
      const id = `${bar.symbol}:5m:${bar.ts}`;
      sentAt.set(id, performance.now());
      pch.publish(EXCHANGE_BARS, routingKeys.bar('5m', bar.symbol), Buffer.from(JSON.stringify(bar)), { persistent: true, messageId: id, contentType: 'application/json' });
    }
    await pch.waitForConfirms();
    await done;
    latencies.sort((a, b) => a - b);
    await pub.close();
    await sub.close();
    return {
      throughput,
      latency: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), max: latencies[latencies.length - 1], n: latencies.length },
      rssMbMaxDuringThroughput: rssThroughput,
      rssMbMax: { ...rss },
    };
  } finally {
    clearInterval(sample);
    await supervisor.stop();
    v.dispose();
    const redis = new Redis();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
}

async function main(): Promise<void> {
  const bars = makeBars(N, 1000);
  const lastTs = bars[bars.length - 1]!.ts;
  const latencyBars = makeBars(RATE * LATENCY_SECONDS, 5000, Math.ceil((lastTs + 3_600_000) / 1_800_000) * 1_800_000);
  const rawQuorum = await rawHop(bars, 'quorum');
  const rawClassic = await rawHop(bars, 'classic');
  const pipeline = await pipelineRun(bars, latencyBars);
  const throughput = pipeline.throughput as number;
  const lat = pipeline.latency as Record<string, number>;
  const fmt = (x: number) => x.toFixed(0).padStart(8);
  process.stdout.write(
    [
      `bars: ${N} over ${SYMBOLS} symbols; latency run ${latencyBars.length} bars at ${RATE}/s`,
      `raw amqplib hop, quorum queue   ${fmt(rawQuorum)} msg/s`,
      `raw amqplib hop, classic queue  ${fmt(rawClassic)} msg/s`,
      `pipeline end to end             ${fmt(throughput)} bars/s   ratio to raw quorum hop ${(throughput / rawQuorum).toFixed(3)}  (target >= 0.25)`,
      `publish -> result latency at ${RATE}/s: p50 ${lat.p50!.toFixed(2)} ms  p95 ${lat.p95!.toFixed(2)} ms  p99 ${lat.p99!.toFixed(2)} ms  (target p99 <= 5 ms)`,
      `worker RSS max (MB): ${JSON.stringify(pipeline.rssMbMax)}  (target < 300 each)`,
      '',
    ].join('\n'),
  );
  process.stdout.write(`${JSON.stringify({ bench: 'pipeline', bars: N, symbols: SYMBOLS, rawQuorum, rawClassic, pipeline, ratio: throughput / rawQuorum })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
