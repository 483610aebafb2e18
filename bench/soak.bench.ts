/**
 * Soak: does the pipeline's memory, Redis and disk stay flat after warm-up? (`npm run soak`; not part
 * of `npm test` nor of `npm run bench` unless named: `npm run bench -- soak`.)
 *
 * Runs the real pipeline (supervisor and workers, own vhost, own Redis key prefix on REDIS_URL, a
 * temporary data directory, online training on unless PIPELINE_TRAINING says otherwise), publishes
 * SOAK_DAYS days of seeded synthetic 5m bars for SOAK_SYMBOLS symbols in ts order as fast as the
 * pipeline takes them (at most SOAK_IN_FLIGHT bars published and not yet answered by a result), and
 * every SOAK_SAMPLE_MS samples:
 * - each worker's RSS (VmRSS of /proc/<pid>/status of the supervisor's children),
 * - Redis `INFO memory` used_memory, the number of keys under the prefix (SCAN MATCH, never KEYS),
 *   and per key pattern (symbols and numbers masked) the key count and MEMORY USAGE bytes,
 * - the bytes on disk of the data directory, total and per top-level entry,
 * - the messages waiting in the pipeline's queues (experience for the trainer, the shard queues,
 *   dead letters): at full speed the trainer falls behind and its backlog waits in the broker.
 * It prints one table row per sample and a final JSON line, and writes every sample to
 * `<SOAK_OUT_DIR>/soak-<time>.json` and `.csv` (one column per series) for drawing the curves.
 *
 * Env: SOAK_DAYS (30), SOAK_SYMBOLS (20), SOAK_IN_FLIGHT (2000), SOAK_SAMPLE_MS (5000),
 * SOAK_WARMUP_DAYS (5: growth is fitted on the samples after it), SOAK_OUT_DIR (soak-results),
 * SOAK_KEEP=1 keeps the data directory and Redis keys; AMQP_URL's host and REDIS_URL as usual.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as amqp from 'amqplib';
import Redis from 'ioredis';
import type { Bar } from '../schemas/bar.schema';
import {
  EXCHANGE_BARS,
  QUEUE_DEAD_LETTERS,
  QUEUE_EXPERIENCE,
  QUEUE_RESULTS,
  routingKeys,
  shardQueue,
} from '../src/broker/topology';
import { loadConfig } from '../src/config/config';
import { generateSyntheticMarket } from '../src/producers/synthetic-market';
import { rolesFor } from '../src/supervisor/ipc';
import { Supervisor } from '../src/supervisor/supervisor';

function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(
      `${name}=${JSON.stringify(raw)}: must be an integer >= ${min}; fix ${name}\n`,
    );
    process.exit(2);
  }
  return n;
}

const DAYS = envInt('SOAK_DAYS', 30, 1);
const SYMBOLS = envInt('SOAK_SYMBOLS', 20, 1);
const IN_FLIGHT = envInt('SOAK_IN_FLIGHT', 2000, 1);
const SAMPLE_MS = envInt('SOAK_SAMPLE_MS', 5000, 200);
const WARMUP_DAYS = envInt('SOAK_WARMUP_DAYS', 5, 0);
const OUT_DIR = process.env.SOAK_OUT_DIR ?? 'soak-results';
const KEEP = process.env.SOAK_KEEP === '1';
const BARS_PER_DAY = 288;

/** One sample. `day` is how many days of bars (per symbol) have results. */
interface Sample {
  elapsedS: number;
  day: number;
  published: number;
  results: number;
  rssMb: Record<string, number>;
  redisUsedMb: number;
  redisKeys: number;
  keyPatterns: Record<string, { keys: number; bytes: number }>;
  diskMb: number;
  diskEntriesMb: Record<string, number>;
  /** Messages ready (not delivered to a consumer yet) in each pipeline queue; a consumer's unacknowledged prefetch is not counted. */
  queueDepth: Record<string, number>;
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) / 1024;
  } catch {
    return 0;
  }
}

function diskBytes(path: string): number {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0; // removed while we walked (an atomic rename)
  }
  if (!st.isDirectory()) return st.blocks * 512;
  let sum = st.blocks * 512;
  for (const entry of readdirSync(path)) sum += diskBytes(join(path, entry));
  return sum;
}

/** `tactical:state:SYM7` → `tactical:state:<sym>`; numbers → `<n>`. */
function keyPattern(key: string, prefix: string, symbols: ReadonlySet<string>): string {
  return key
    .slice(prefix.length)
    .split(':')
    .map((part) => (symbols.has(part) ? '<sym>' : /^\d+$/.test(part) ? '<n>' : part))
    .join(':');
}

async function scanPrefix(
  redis: Redis,
  prefix: string,
  symbols: ReadonlySet<string>,
): Promise<{ keys: number; patterns: Record<string, { keys: number; bytes: number }> }> {
  const patterns: Record<string, { keys: number; bytes: number }> = {};
  let keys = 0;
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys += batch.length;
    const sizes = await Promise.all(batch.map((k) => redis.memory('USAGE', k).catch(() => 0)));
    batch.forEach((k, i) => {
      const p = keyPattern(k, prefix, symbols);
      const entry = (patterns[p] ??= { keys: 0, bytes: 0 });
      entry.keys++;
      entry.bytes += Number(sizes[i] ?? 0);
    });
  } while (cursor !== '0');
  return { keys, patterns };
}

function usedMemoryMb(info: string): number {
  const m = /used_memory:(\d+)/.exec(info);
  return m === null ? 0 : Number(m[1]) / 1024 / 1024;
}

/** Least-squares slope of y over x; null with fewer than 2 points. */
function slope(points: [number, number][]): number | null {
  if (points.length < 2) return null;
  const mx = points.reduce((s, [x]) => s + x, 0) / points.length;
  const my = points.reduce((s, [, y]) => s + y, 0) / points.length;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? null : num / den;
}

function makeBars(): Bar[] {
  const markets = Array.from(
    { length: SYMBOLS },
    (_, i) =>
      generateSyntheticMarket({ seed: 9000 + i, symbol: `SOAK${i}`, bars: DAYS * BARS_PER_DAY })
        .bars,
  );
  return markets.flat().sort((a, b) => a.ts - b.ts || a.symbol.localeCompare(b.symbol));
}

async function main(): Promise<void> {
  const bars = makeBars();
  const symbols = new Set(bars.map((b) => b.symbol));
  const vhost = `soak-${randomUUID().slice(0, 6)}`;
  const base = new URL(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  const user = decodeURIComponent(base.username || 'guest');
  execFileSync('rabbitmqctl', ['add_vhost', vhost], { stdio: 'ignore' });
  execFileSync('rabbitmqctl', ['set_permissions', '-p', vhost, user, '.*', '.*', '.*'], {
    stdio: 'ignore',
  });
  base.pathname = `/${vhost}`;
  const prefix = `soak:${randomUUID().slice(0, 6)}:`;
  const dataDir = mkdtempSync(join(tmpdir(), 'soak-data-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AMQP_URL: base.toString(),
    PIPELINE_REDIS_PREFIX: prefix,
    PIPELINE_DATA_DIR: dataDir,
    HEALTH_PORT: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    // The soak measures the trainer too: on unless the environment says otherwise (the default is off).
    PIPELINE_TRAINING: process.env.PIPELINE_TRAINING ?? 'on',
  };
  for (const k of Object.keys(env)) if (k.startsWith('SOAK_')) delete env[k];
  const config = loadConfig(env);
  const redis = new Redis(config.redisUrl);
  const supervisor = new Supervisor({ config, roles: rolesFor(config), env });
  const samples: Sample[] = [];
  const started = performance.now();
  let published = 0;
  let results = 0;
  let sampling: NodeJS.Timeout | null = null;
  let pub: amqp.ChannelModel | null = null;
  let sub: amqp.ChannelModel | null = null;
  let queueCh: amqp.Channel | null = null;
  const watchedQueues = [
    QUEUE_EXPERIENCE,
    ...Array.from({ length: config.shards }, (_, k) => shardQueue('tactical', k)),
    ...Array.from({ length: config.shards }, (_, k) => shardQueue('strategic', k)),
    QUEUE_DEAD_LETTERS,
  ];
  const queueDepths = async (): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    if (sub === null) return out;
    for (const q of watchedQueues) {
      try {
        queueCh ??= await sub.createChannel();
        const ok = await queueCh.checkQueue(q);
        out[q] = ok.messageCount;
      } catch {
        queueCh = null; // a failed check closes the channel
      }
    }
    return out;
  };

  const takeSample = async (): Promise<Sample> => {
    const rss: Record<string, number> = {};
    for (const [role, pid] of Object.entries(supervisor.pids()))
      rss[role] = Math.round(rssMb(pid) * 10) / 10;
    const [info, scanned, depths] = await Promise.all([
      redis.info('memory'),
      scanPrefix(redis, prefix, symbols),
      queueDepths(),
    ]);
    const diskEntriesMb: Record<string, number> = {};
    // Temporary files of atomic writes come and go; they count in the total only.
    for (const entry of readdirSync(dataDir).filter((e) => !e.endsWith('.tmp')))
      diskEntriesMb[entry] = diskBytes(join(dataDir, entry)) / 1024 / 1024;
    const s: Sample = {
      elapsedS: Math.round((performance.now() - started) / 100) / 10,
      day: results / SYMBOLS / BARS_PER_DAY,
      published,
      results,
      rssMb: rss,
      redisUsedMb: usedMemoryMb(info),
      redisKeys: scanned.keys,
      keyPatterns: scanned.patterns,
      diskMb: diskBytes(dataDir) / 1024 / 1024,
      diskEntriesMb,
      queueDepth: depths,
    };
    samples.push(s);
    const rssText = Object.entries(s.rssMb)
      .map(([r, v]) => `${r} ${v.toFixed(0)}`)
      .join(' ');
    process.stdout.write(
      `${s.elapsedS.toFixed(0).padStart(6)}s  day ${s.day.toFixed(2).padStart(5)}  results ${String(s.results).padStart(7)}  rss MB [${rssText}]  redis ${s.redisUsedMb.toFixed(1)} MB ${s.redisKeys} keys  disk ${s.diskMb.toFixed(1)} MB  experience queue ${s.queueDepth[QUEUE_EXPERIENCE] ?? '-'}\n`,
    );
    return s;
  };

  try {
    await supervisor.start();
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${supervisor.healthPort}/health`).catch(() => null);
      if (res?.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    process.stdout.write(
      `soak: ${bars.length} bars = ${DAYS} days x ${SYMBOLS} symbols, training ${config.training ? 'on' : 'off'}, in flight <= ${IN_FLIGHT}, vhost ${vhost}, prefix ${prefix}, data ${dataDir}\n`,
    );
    pub = await amqp.connect(config.amqpUrl, { noDelay: true });
    sub = await amqp.connect(config.amqpUrl, { noDelay: true });
    const pch = await pub.createConfirmChannel();
    const sch = await sub.createChannel();
    await sch.prefetch(1000);
    let wake: () => void = () => undefined;
    const seen = new Set<string>();
    await sch.consume(QUEUE_RESULTS, (msg) => {
      if (msg === null) return;
      const id = msg.properties.messageId as string;
      if (!seen.has(id)) {
        seen.add(id);
        results++;
      }
      sch.ack(msg);
      wake();
    });
    let sampleBusy = false;
    sampling = setInterval(() => {
      if (sampleBusy) return;
      sampleBusy = true;
      takeSample()
        .catch((err: unknown) => process.stderr.write(`sample failed: ${String(err)}\n`))
        .finally(() => (sampleBusy = false));
    }, SAMPLE_MS);
    await takeSample();
    for (const bar of bars) {
      while (published - results >= IN_FLIGHT) await new Promise<void>((r) => (wake = r));
      pch.publish(
        EXCHANGE_BARS,
        routingKeys.bar('5m', bar.symbol),
        Buffer.from(JSON.stringify(bar)),
        {
          persistent: true,
          contentType: 'application/json',
          messageId: `${bar.symbol}:5m:${bar.ts}`,
        },
      );
      published++;
      if (published % 500 === 0) await pch.waitForConfirms();
    }
    await pch.waitForConfirms();
    while (results < bars.length) await new Promise<void>((r) => (wake = r));
    clearInterval(sampling);
    sampling = null;
    while (sampleBusy) await new Promise((r) => setTimeout(r, 50));
    await takeSample();
  } finally {
    if (sampling !== null) clearInterval(sampling);
    await pub?.close().catch(() => undefined);
    await sub?.close().catch(() => undefined);
    await supervisor.stop();
    execFileSync('rabbitmqctl', ['delete_vhost', vhost], { stdio: 'ignore' });
  }

  // Growth after warm-up: least-squares slope per day of bars, for every series.
  const after = samples.filter((s) => s.day >= WARMUP_DAYS);
  const perDay = (get: (s: Sample) => number): number | null =>
    slope(after.map((s) => [s.day, get(s)]));
  const roles = [...new Set(samples.flatMap((s) => Object.keys(s.rssMb)))];
  const patterns = [...new Set(samples.flatMap((s) => Object.keys(s.keyPatterns)))].sort();
  const entries = [...new Set(samples.flatMap((s) => Object.keys(s.diskEntriesMb)))].sort();
  const queues = [...new Set(samples.flatMap((s) => Object.keys(s.queueDepth)))];
  const first = after[0];
  const last = samples[samples.length - 1]!;
  const round = (x: number | null, digits = 3): number | null =>
    x === null ? null : Math.round(x * 10 ** digits) / 10 ** digits;
  const summary = {
    bench: 'soak',
    days: DAYS,
    symbols: SYMBOLS,
    bars: bars.length,
    training: config.training,
    elapsedS: last.elapsedS,
    barsPerS: Math.round(bars.length / last.elapsedS),
    warmupDays: WARMUP_DAYS,
    samples: samples.length,
    rssMb: Object.fromEntries(
      roles.map((r) => [
        r,
        {
          atWarmup: first?.rssMb[r] ?? null,
          end: last.rssMb[r] ?? null,
          max: Math.max(...samples.map((s) => s.rssMb[r] ?? 0)),
          perDay: round(perDay((s) => s.rssMb[r] ?? 0)),
        },
      ]),
    ),
    redisUsedMb: {
      atWarmup: round(first?.redisUsedMb ?? null),
      end: round(last.redisUsedMb),
      perDay: round(perDay((s) => s.redisUsedMb)),
    },
    redisKeys: {
      atWarmup: first?.redisKeys ?? null,
      end: last.redisKeys,
      perDay: round(perDay((s) => s.redisKeys)),
    },
    keyPatterns: Object.fromEntries(
      patterns.map((p) => [
        p,
        {
          keysEnd: last.keyPatterns[p]?.keys ?? 0,
          kbEnd: round((last.keyPatterns[p]?.bytes ?? 0) / 1024, 1),
          kbPerDay: round(
            perDay((s) => (s.keyPatterns[p]?.bytes ?? 0) / 1024),
            2,
          ),
          keysPerDay: round(
            perDay((s) => s.keyPatterns[p]?.keys ?? 0),
            2,
          ),
        },
      ]),
    ),
    diskMb: {
      atWarmup: round(first?.diskMb ?? null),
      end: round(last.diskMb),
      perDay: round(perDay((s) => s.diskMb)),
    },
    diskEntriesMb: Object.fromEntries(
      entries.map((e) => [
        e,
        {
          end: round(last.diskEntriesMb[e] ?? 0),
          perDay: round(perDay((s) => s.diskEntriesMb[e] ?? 0)),
        },
      ]),
    ),
    queueDepth: Object.fromEntries(
      queues.map((q) => [
        q,
        {
          max: Math.max(...samples.map((s) => s.queueDepth[q] ?? 0)),
          end: last.queueDepth[q] ?? null,
          perDay: round(perDay((s) => s.queueDepth[q] ?? 0), 1),
        },
      ]),
    ),
  };

  mkdirSync(OUT_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const base2 = join(OUT_DIR, `soak-${stamp}`);
  writeFileSync(`${base2}.json`, `${JSON.stringify({ summary, samples }, null, 1)}\n`);
  const columns = [
    'elapsed_s',
    'day',
    'published',
    'results',
    ...roles.map((r) => `rss_mb_${r}`),
    'redis_used_mb',
    'redis_keys',
    ...patterns.map((p) => `kb_${p}`),
    'disk_mb',
    ...entries.map((e) => `disk_mb_${e}`),
    ...queues.map((q) => `queue_${q}`),
  ];
  const rows = samples.map((s) =>
    [
      s.elapsedS,
      s.day.toFixed(3),
      s.published,
      s.results,
      ...roles.map((r) => s.rssMb[r] ?? ''),
      s.redisUsedMb.toFixed(3),
      s.redisKeys,
      ...patterns.map((p) => ((s.keyPatterns[p]?.bytes ?? 0) / 1024).toFixed(1)),
      s.diskMb.toFixed(3),
      ...entries.map((e) => (s.diskEntriesMb[e] ?? 0).toFixed(3)),
      ...queues.map((q) => s.queueDepth[q] ?? ''),
    ].join(','),
  );
  writeFileSync(`${base2}.csv`, `${columns.join(',')}\n${rows.join('\n')}\n`);
  process.stdout.write(`samples written to ${base2}.json and ${base2}.csv\n`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);

  if (!KEEP) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
    rmSync(dataDir, { recursive: true, force: true });
  }
  await redis.quit();
}

main().catch((err: unknown) => {
  process.stderr.write(
    `soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
