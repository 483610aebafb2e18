/**
 * End-to-end pipeline benchmark against the local RabbitMQ and Redis, everything in one run with
 * the raw single hop of the same messages (issue 11):
 *
 * 1. raw: a raw amqplib single hop of the same bars (persistent, confirms in windows of 500, manual
 *    acks, one queue of the pipeline's queue type): the reference.
 * 2. default configuration (training on), BENCH_SYMBOLS symbols: throughput (all bars at once,
 *    until the last result), then publish → result latency at a steady BENCH_RATE, both measured by
 *    the client; then the burst: BENCH_BURST_SYMBOLS symbols publish one bar each at the same
 *    instant, for 12 consecutive 5m closes (two of them 30m closes) after a warm-up, timed from the
 *    last publish of a close to its last result.
 * 3. the same throughput and latency with training off (training must not slow the live path).
 * 4. SIGKILL of the tactical worker halfway through a throughput run: identical re-sends counted.
 * 5. throughput with PIPELINE_SHARDS = 1, 2, 4 (training off), when the broker has the plugin.
 * 6. budget: the default configuration again with every worker writing a V8 CPU profile
 *    (CPU_PROFILE_DIR = BENCH_PROFILE_DIR), one throughput run, and the table of where the tactical
 *    worker's CPU went per bar (bench/cpu-budget.ts books each sample to a line: decode, lane,
 *    state, indicators, context, agents, publish, experience, breakers, metrics, GC...). Profiling
 *    costs a few percent, so the table's total is a little above the unprofiled CPU per bar.
 * Worker RSS is sampled throughout, and the tactical worker's CPU time (user + system, from
 * /proc) is read around the throughput and latency runs: CPU ms per bar is the figure the live
 * path's speed depends on, and it moves much less than bars/s when the machine is shared.
 *
 * Env: BENCH_BARS (20000), BENCH_SYMBOLS (5), BENCH_RATE (400), BENCH_LATENCY_SECONDS (20),
 * BENCH_BURST_SYMBOLS (1000), BENCH_SECTIONS (raw,default,off,kill,shards,burst: any subset),
 * BENCH_SHARDS (1,2,4). CPU_PROFILE_DIR makes every worker write a CPU profile on stop.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import * as amqp from 'amqplib';
import Redis from 'ioredis';
import type { Bar } from '../schemas/bar.schema';
import { EXCHANGE_BARS, QUEUE_RESULTS, routingKeys, workQueueOptions } from '../src/broker/topology';
import { loadConfig } from '../src/config/config';
import { generateSyntheticMarket } from '../src/producers/synthetic-market';
import { rolesFor } from '../src/supervisor/ipc';
import { budgetOf, budgetTable, topFunctions, type CpuProfile } from './cpu-budget';
import { Supervisor } from '../src/supervisor/supervisor';
import { quantile } from '../src/util/quantile';

const N = Number(process.env.BENCH_BARS ?? 20000);
const SYMBOLS = Number(process.env.BENCH_SYMBOLS ?? 5);
const RATE = Number(process.env.BENCH_RATE ?? 400);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 20);
const BURST_SYMBOLS = Number(process.env.BENCH_BURST_SYMBOLS ?? 1000);
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? 'raw,default,off,budget,kill,shards,burst').split(','));
/** Where the budget section keeps its CPU profiles (open them in Chrome DevTools or speedscope). */
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR ?? join('/tmp', `pipeline-bench-profiles-${process.pid}`);
const SHARD_COUNTS = (process.env.BENCH_SHARDS ?? '1,2,4').split(',').map(Number);
const WINDOW = 500;
const M5 = 300_000;
const M30 = 1_800_000;

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

function makeBars(count: number, seed: number, startTs?: number, symbols = SYMBOLS): Bar[] {
  const per = Math.ceil(count / symbols);
  const markets = Array.from({ length: symbols }, (_, i) =>
    generateSyntheticMarket({ seed: seed + i, symbol: `SYM${i}`, bars: per, ...(startTs === undefined ? {} : { startTs }) }).bars,
  );
  return markets.flat().sort((a, b) => a.ts - b.ts || a.symbol.localeCompare(b.symbol)).slice(0, count);
}

const idOf = (bar: Bar): string => `${bar.symbol}:5m:${bar.ts}`;

async function publishWindowed(channel: amqp.ConfirmChannel, bars: Bar[], exchange: string, key: (b: Bar) => string): Promise<void> {
  for (let i = 0; i < bars.length; i += WINDOW) {
    for (const bar of bars.slice(i, i + WINDOW)) {
      channel.publish(exchange, key(bar), Buffer.from(JSON.stringify(bar)), {
        persistent: true,
        contentType: 'application/json',
        messageId: idOf(bar),
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

/**
 * The floor under the paced latency: the same bars, paced at RATE, through a relay that does no
 * work between two quorum queues (persistent, the relay acks a bar once its copy is confirmed, as
 * the tactical worker does), timed from publish to arrival at the client. The pipeline's
 * publish -> result path has these two hops plus its work.
 */
async function rawRelayPaced(bars: Bar[]): Promise<{ p50: number; p95: number; p99: number }> {
  const v = vhost('raw-relay');
  try {
    const pub = await amqp.connect(v.url, { noDelay: true });
    const relay = await amqp.connect(v.url, { noDelay: true });
    const sub = await amqp.connect(v.url, { noDelay: true });
    const pch = await pub.createConfirmChannel();
    const options = { ...workQueueOptions({ queueType: 'quorum', maxAttempts: 10 }), arguments: { 'x-queue-type': 'quorum' } };
    await pch.assertQueue('relay_in', options);
    await pch.assertQueue('relay_out', options);
    const rch = await relay.createConfirmChannel();
    await rch.prefetch(256);
    await rch.consume('relay_in', (msg) => {
      if (msg === null) return;
      JSON.parse(msg.content.toString());
      rch.publish('', 'relay_out', msg.content, { persistent: true, messageId: msg.properties.messageId as string }, (err) => {
        if (err === null || err === undefined) rch.ack(msg);
      });
    });
    const sch = await sub.createChannel();
    await sch.prefetch(256);
    const arrivals = new Map<string, number>();
    const done = new Promise<void>((resolve) => {
      void sch.consume('relay_out', (msg) => {
        if (msg === null) return;
        arrivals.set(msg.properties.messageId as string, performance.now());
        sch.ack(msg);
        if (arrivals.size === bars.length) resolve();
      });
    });
    const sentAt = new Map<string, number>();
    const start = performance.now();
    for (let i = 0; i < bars.length; i++) {
      const wait = start + (i * 1000) / RATE - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const bar = bars[i]!;
      sentAt.set(idOf(bar), performance.now());
      pch.publish('', 'relay_in', Buffer.from(JSON.stringify(bar)), { persistent: true, messageId: idOf(bar), contentType: 'application/json' });
    }
    await pch.waitForConfirms();
    await done;
    const latencies = [...sentAt].map(([id, t]) => arrivals.get(id)! - t).sort((x, y) => x - y);
    await Promise.all([pub.close(), relay.close(), sub.close()]);
    return { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) };
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

/** User + system CPU time of a process so far, in ms (clock ticks of 10 ms), or NaN if gone. */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** The RabbitMQ node's process (beam.smp), whose CPU per bar is the broker's share; undefined if not found. */
function brokerPid(): number | undefined {
  try {
    const out = execFileSync('pgrep', ['-o', '-f', 'beam.smp'], { encoding: 'utf8' }).trim();
    return out === '' ? undefined : Number(out.split('\n')[0]);
  } catch {
    return undefined;
  }
}

/**
 * Runs `fn` and returns its value with the CPU ms per bar over it of every worker and of the broker
 * (`tactical` is the figure the live path's speed depends on).
 */
async function withCpu<T>(b: Bench, bars: number, fn: () => Promise<T>): Promise<{ value: T; cpuMsPerBar: number; perProcess: Record<string, number> }> {
  const pids: Record<string, number | undefined> = { ...b.supervisor.pids(), broker: brokerPid() };
  const before = Object.fromEntries(Object.entries(pids).map(([role, pid]) => [role, cpuMs(pid)]));
  const value = await fn();
  const perProcess = Object.fromEntries(Object.entries(pids).map(([role, pid]) => [role, (cpuMs(pid) - (before[role] ?? NaN)) / bars]));
  return { value, cpuMsPerBar: perProcess.tactical ?? NaN, perProcess };
}

const perProcessLine = (perProcess: Record<string, number>): string =>
  Object.entries(perProcess)
    .map(([role, ms]) => `${role} ${(ms * 1000).toFixed(0)} µs`)
    .join(', ');

const percentile = (sorted: number[], p: number): number => quantile(sorted, p / 100);

/** A running pipeline with a publishing and a result-consuming client. */
interface Bench {
  supervisor: Supervisor;
  pch: amqp.ConfirmChannel;
  /** Resolves when `count` new distinct results have arrived. */
  expect(ids: Iterable<string>): Promise<void>;
  /** Arrival time of each result's first copy. */
  arrivals: Map<string, number>;
  /** The worker's own `latency_ms` of each result (delivery to the tactical worker → publish). */
  workerMs: Map<string, number>;
  /** Copies received beyond the first, per result. */
  resends(): number;
  rss: Record<string, number>;
}

async function withPipeline<T>(label: string, overrides: Record<string, string>, fn: (b: Bench) => Promise<T>): Promise<T> {
  const v = vhost(label);
  const prefix = `bench:${randomUUID().slice(0, 6)}:`;
  const env = {
    ...process.env,
    AMQP_URL: v.url,
    PIPELINE_REDIS_PREFIX: prefix,
    HEALTH_PORT: '0',
    // Any free port: a second bench (or a pipeline) on the machine holding 8080 would stop the gateway, and the bench would wait for /health forever.
    GATEWAY_PORT: process.env.GATEWAY_PORT ?? '0',
    LOG_LEVEL: 'warn',
    PIPELINE_DATA_DIR: `/tmp/${prefix.replace(/:/g, '_')}`,
    ...overrides,
  };
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
    try {
      const pch = await pub.createConfirmChannel();
      const sch = await sub.createChannel();
      await sch.prefetch(1000);
      const arrivals = new Map<string, number>();
      const workerMs = new Map<string, number>();
      let copies = 0;
      let waiting: { ids: Set<string>; resolve: () => void } | null = null;
      await sch.consume(QUEUE_RESULTS, (msg) => {
        if (msg === null) return;
        const id = msg.properties.messageId as string;
        sch.ack(msg);
        if (arrivals.has(id)) {
          copies++;
          return;
        }
        arrivals.set(id, performance.now());
        workerMs.set(id, (JSON.parse(msg.content.toString('utf8')) as { latency_ms: number }).latency_ms);
        if (waiting !== null && waiting.ids.delete(id) && waiting.ids.size === 0) {
          const w = waiting;
          waiting = null;
          w.resolve();
        }
      });
      const bench: Bench = {
        supervisor,
        pch,
        arrivals,
        workerMs,
        rss,
        resends: () => copies,
        expect: (ids) => {
          const missing = new Set([...ids].filter((id) => !arrivals.has(id)));
          if (missing.size === 0) return Promise.resolve();
          return new Promise<void>((resolve) => (waiting = { ids: missing, resolve }));
        },
      };
      return await fn(bench);
    } finally {
      await pub.close().catch(() => undefined);
      await sub.close().catch(() => undefined);
    }
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

async function throughput(b: Bench, bars: Bar[]): Promise<number> {
  const done = b.expect(bars.map(idOf));
  const t0 = performance.now();
  await publishWindowed(b.pch, bars, EXCHANGE_BARS, (bar) => routingKeys.bar('5m', bar.symbol));
  await done;
  return bars.length / ((performance.now() - t0) / 1000);
}

async function paced(b: Bench, bars: Bar[]): Promise<Record<string, number>> {
  const done = b.expect(bars.map(idOf));
  const sentAt = new Map<string, number>();
  const start = performance.now();
  for (let i = 0; i < bars.length; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const bar = bars[i]!;
    sentAt.set(idOf(bar), performance.now());
    b.pch.publish(EXCHANGE_BARS, routingKeys.bar('5m', bar.symbol), Buffer.from(JSON.stringify(bar)), { persistent: true, messageId: idOf(bar), contentType: 'application/json' });
  }
  await b.pch.waitForConfirms();
  await done;
  const latencies = [...sentAt].map(([id, t]) => b.arrivals.get(id)! - t).sort((x, y) => x - y);
  // The tactical worker's share: from its handler receiving the bar to publishing the result (the
  // result's latency_ms); the rest is the two broker hops and waiting for delivery.
  const worker = [...sentAt.keys()].map((id) => b.workerMs.get(id)!).sort((x, y) => x - y);
  return {
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1]!,
    n: latencies.length,
    workerP50: percentile(worker, 50),
    workerP99: percentile(worker, 99),
  };
}

/**
 * BURST_SYMBOLS symbols, one bar each per 5m close, all published at once (confirm awaited), for
 * `warmup` closes and then 12 measured ones; returns, per measured close, the time from its last
 * publish to its last result, and which closes were 30m closes.
 */
async function burst(b: Bench, warmup: number): Promise<{ ms: number[]; thirtyMinute: boolean[] }> {
  const closes = warmup + 12;
  // Start so that the 6th and 12th measured bars complete a 30m bar: bar i (0-based) closes at
  // start + (i + 1) × 5m; measured bar j = warmup + j.
  let start = Math.ceil(Date.UTC(2025, 0, 1) / M30) * M30;
  while ((start + (warmup + 6) * M5) % M30 !== 0) start += M5;
  const markets = Array.from({ length: BURST_SYMBOLS }, (_, i) =>
    generateSyntheticMarket({ seed: 20_000 + i, symbol: `B${String(i).padStart(4, '0')}`, bars: closes, startTs: start }).bars,
  );
  const ms: number[] = [];
  const thirtyMinute: boolean[] = [];
  for (let c = 0; c < closes; c++) {
    const bars = markets.map((m) => m[c]!);
    const done = b.expect(bars.map(idOf));
    for (const bar of bars) {
      b.pch.publish(EXCHANGE_BARS, routingKeys.bar('5m', bar.symbol), Buffer.from(JSON.stringify(bar)), { persistent: true, messageId: idOf(bar), contentType: 'application/json' });
    }
    const lastPublish = performance.now();
    await b.pch.waitForConfirms();
    await done;
    if (c >= warmup) {
      const last = Math.max(...bars.map((bar) => b.arrivals.get(idOf(bar))!));
      ms.push(last - lastPublish);
      thirtyMinute.push((bars[0]!.ts + M5) % M30 === 0);
    }
  }
  return { ms, thirtyMinute };
}

async function pluginEnabled(): Promise<boolean> {
  const v = vhost('plugin');
  try {
    const c = await amqp.connect(v.url);
    c.on('error', () => undefined);
    try {
      const ch = await c.createChannel();
      ch.on('error', () => undefined);
      await ch.assertExchange('bench.plugin-check', 'x-consistent-hash', { autoDelete: true, durable: false });
      return true;
    } catch {
      return false;
    } finally {
      await c.close().catch(() => undefined);
    }
  } finally {
    v.dispose();
  }
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = { bench: 'pipeline', at: new Date().toISOString(), loadavg1mAtStart: loadavg()[0], bars: N, symbols: SYMBOLS, rate: RATE };
  // Each figure is printed as soon as it is measured (a full run takes several minutes).
  const lines = {
    push: (...l: string[]) => {
      for (const line of l) process.stdout.write(`${line}\n`);
    },
  };
  lines.push(`bars: ${N} over ${SYMBOLS} symbols; latency runs ${RATE * LATENCY_SECONDS} bars at ${RATE}/s; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const fmt = (x: number) => x.toFixed(0).padStart(8);
  const bars = makeBars(N, 1000);
  const lastTs = bars[bars.length - 1]!.ts;
  const latencyBars = makeBars(RATE * LATENCY_SECONDS, 5000, Math.ceil((lastTs + 3_600_000) / M30) * M30);
  let rawQuorum = NaN;
  if (SECTIONS.has('raw')) {
    rawQuorum = await rawHop(bars, 'quorum');
    const rawClassic = await rawHop(bars, 'classic');
    Object.assign(out, { rawQuorum, rawClassic });
    lines.push(`raw amqplib hop, quorum queue   ${fmt(rawQuorum)} msg/s`, `raw amqplib hop, classic queue  ${fmt(rawClassic)} msg/s`);
    const relay = await rawRelayPaced(latencyBars);
    Object.assign(out, { rawRelayPaced: relay });
    lines.push(
      `raw relay, two quorum hops at ${RATE}/s, publish -> arrival: p50 ${relay.p50.toFixed(2)} ms  p95 ${relay.p95.toFixed(2)} ms  p99 ${relay.p99.toFixed(2)} ms  (the floor under the pipeline's publish -> result latency)`,
    );
  }
  const ratio = (x: number) => (Number.isNaN(rawQuorum) ? '' : `ratio to raw quorum hop ${(x / rawQuorum).toFixed(3)}`);
  const latencyLine = (l: Record<string, number>) =>
    `p50 ${l.p50!.toFixed(2)} ms  p95 ${l.p95!.toFixed(2)} ms  p99 ${l.p99!.toFixed(2)} ms  max ${l.max!.toFixed(1)} ms (in the tactical worker: p50 ${l.workerP50!.toFixed(2)} p99 ${l.workerP99!.toFixed(2)} ms)`;
  for (const [section, training] of [['default', 'on'], ['off', 'off']] as const) {
    if (!SECTIONS.has(section) && !(section === 'default' && SECTIONS.has('burst'))) continue;
    const result = await withPipeline(`pipeline-${section}`, { PIPELINE_TRAINING: training }, async (b) => {
      const r: Record<string, unknown> = {};
      if (SECTIONS.has(section)) {
        const t = await withCpu(b, bars.length, () => throughput(b, bars));
        r.throughput = t.value;
        r.tacticalCpuMsPerBarThroughput = t.cpuMsPerBar;
        r.cpuMsPerBarThroughput = t.perProcess;
        r.rssDuringThroughput = { ...b.rss };
        const l = await withCpu(b, latencyBars.length, () => paced(b, latencyBars));
        r.latency = l.value;
        r.tacticalCpuMsPerBarPaced = l.cpuMsPerBar;
      }
      if (section === 'default' && SECTIONS.has('burst')) r.burst = await burst(b, 8);
      r.rss = { ...b.rss };
      return r;
    });
    out[`training_${training}`] = result;
    if (result.throughput !== undefined) {
      lines.push(`pipeline, training ${training.padEnd(3)}        ${fmt(result.throughput as number)} bars/s   ${ratio(result.throughput as number)}  (target >= 0.25 with training on)`);
      lines.push(`  publish -> result at ${RATE}/s, training ${training}: ${latencyLine(result.latency as Record<string, number>)}  (target p50 <= 2, p99 <= 5 ms)`);
      lines.push(`  tactical worker CPU per bar, training ${training}: ${(result.tacticalCpuMsPerBarThroughput as number).toFixed(3)} ms at full load, ${(result.tacticalCpuMsPerBarPaced as number).toFixed(3)} ms at ${RATE}/s`);
      lines.push(`  CPU per bar at full load, training ${training}: ${perProcessLine(result.cpuMsPerBarThroughput as Record<string, number>)}`);
    }
    if (result.burst !== undefined) {
      const burstResult = result.burst as { ms: number[]; thirtyMinute: boolean[] };
      lines.push(`  burst, ${BURST_SYMBOLS} symbols x 12 closes, last publish -> last result (ms): ${burstResult.ms.map((x, i) => `${x.toFixed(0)}${burstResult.thirtyMinute[i] ? '*' : ''}`).join(' ')}  (* = 30m close; target <= 250 each)`);
    }
    lines.push(`  worker RSS max (MB): ${JSON.stringify(Object.fromEntries(Object.entries(result.rss as Record<string, number>).map(([k, x]) => [k, Math.round(x)])))}  (target < 300 each)`);
  }
  if (SECTIONS.has('budget')) {
    mkdirSync(PROFILE_DIR, { recursive: true });
    const budgetBars = makeBars(N, 9000);
    const before = new Set(readdirSync(PROFILE_DIR));
    let runStart = 0;
    let runEnd = 0;
    const cpu = await withPipeline('pipeline-budget', { PIPELINE_TRAINING: 'on', CPU_PROFILE_DIR: PROFILE_DIR }, async (b) => {
      runStart = performance.now();
      const t = await withCpu(b, budgetBars.length, () => throughput(b, budgetBars));
      runEnd = performance.now();
      return { throughput: t.value, perProcess: t.perProcess };
    });
    // The workers wrote their profiles as they stopped, just before this: the throughput run is the
    // stretch that ended (stopped − runEnd) and began (stopped − runStart) before each profile's end.
    const stopped = performance.now();
    const window = { fromEndMs: stopped - runStart, toEndMs: stopped - runEnd };
    const file = readdirSync(PROFILE_DIR).find((f) => f.startsWith('tactical-') && !before.has(f));
    out.budget = { throughput: cpu.throughput, cpuMsPerBar: cpu.perProcess, profiles: PROFILE_DIR };
    lines.push(`budget run (training on, CPU profiles on): ${cpu.throughput.toFixed(0)} bars/s; CPU per bar: ${perProcessLine(cpu.perProcess)}`);
    if (file === undefined) {
      lines.push(`  no tactical CPU profile was written to ${PROFILE_DIR}`);
    } else {
      const profile = JSON.parse(readFileSync(join(PROFILE_DIR, file), 'utf8')) as CpuProfile;
      const budget = budgetOf(profile, window);
      out.budget = { ...(out.budget as object), tacticalUsPerBar: Object.fromEntries([...budget.lines].map(([k, ms]) => [k, (1000 * ms) / budgetBars.length])) };
      lines.push(`  where the tactical worker's CPU went during the run (${join(PROFILE_DIR, file)}), per bar of ${budgetBars.length}:`, budgetTable(budget, budgetBars.length));
      lines.push('  heaviest functions (self time):', ...topFunctions(profile, 12).map((f) => `    ${f.ms.toFixed(0).padStart(7)} ms  ${f.name}`));
    }
  }
  if (SECTIONS.has('kill')) {
    const killBars = makeBars(N, 7000, Math.ceil((lastTs + 30 * 86_400_000) / M30) * M30);
    const result = await withPipeline('pipeline-kill', {}, async (b) => {
      const done = b.expect(killBars.map(idOf));
      const publishing = publishWindowed(b.pch, killBars, EXCHANGE_BARS, (bar) => routingKeys.bar('5m', bar.symbol));
      while (b.arrivals.size < killBars.length / 2) await new Promise((r) => setTimeout(r, 5));
      const pid = b.supervisor.pids().tactical!;
      process.kill(pid, 'SIGKILL');
      await publishing;
      await done;
      await new Promise((r) => setTimeout(r, 1000));
      return { resends: b.resends(), results: b.arrivals.size, rss: { ...b.rss } };
    });
    out.kill = result;
    lines.push(`SIGKILL of the tactical worker at full load (training on): ${result.resends} identical re-sends of ${result.results} results`);
  }
  if (SECTIONS.has('shards')) {
    if (!(await pluginEnabled())) {
      lines.push('shards: skipped (enable rabbitmq_consistent_hash_exchange for N > 1)');
    } else {
      const shardBars = makeBars(N, 1000, undefined, Math.max(SYMBOLS, 8));
      const byShards: Record<string, number> = {};
      for (const shards of SHARD_COUNTS) {
        byShards[shards] = await withPipeline(`pipeline-shards${shards}`, { PIPELINE_TRAINING: 'off', PIPELINE_SHARDS: String(shards) }, (b) => throughput(b, shardBars));
      }
      out.shards = byShards;
      lines.push(`shards (training off, ${Math.max(SYMBOLS, 8)} symbols): ${Object.entries(byShards).map(([k, x]) => `N=${k} ${x.toFixed(0)} bars/s`).join(', ')}`);
    }
  }
  lines.push(`load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
