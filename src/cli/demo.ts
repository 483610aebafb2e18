/**
 * `npm run demo`: the whole pipeline on this machine, end to end. Starts the supervisor and its
 * workers in-process, replays the bundled market (data/market, three symbols interleaved in time
 * order) through the real broker, waits for one integrated result per bar, prints what came out
 * and stops everything.
 *
 * Isolation: with a local broker and rabbitmqctl at hand it runs in a vhost of its own
 * (`pipeline-demo-<timestamp>`, deleted at the end), because the pipeline's queues are durable and
 * shared by every pipeline on a vhost. Without rabbitmqctl it uses the configured vhost, says so,
 * and counts only the results of the bars it published. Redis keys get a per-run prefix, removed at
 * the end; the pattern store and model registry go to a temporary directory.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Channel, ChannelModel } from 'amqplib';
import { MultiBar, Presets } from 'cli-progress';
import { barId } from '../../schemas/bar.schema';
import { IntegratedResultSchema } from '../../schemas/integrated-result.schema';
import { redact } from '../broker/broker-connection';
import { QUEUE_DEAD_LETTERS, QUEUE_RESULTS } from '../broker/topology';
import { loadConfig, type PipelineConfig } from '../config/config';
import { ConfigError } from '../errors';
import { rootLogger } from '../observability/logger';
import { BarProducer, type PublishBarsResult } from '../producers/bar-producer';
import { countCsvRows, interleaveByTs, readCsvBars, symbolFromCsvPath, type InvalidCsvRow } from '../producers/csv-bars';
import { createRedis } from '../state/redis-client';
import { rolesFor } from '../supervisor/ipc';
import { Supervisor } from '../supervisor/supervisor';
import { ExitCode, cliLogger, connectBroker, describeError, intFlag, ms, numberFlag, quantile } from './common';
import { deadLetterInfo, fetchDeadLetters } from './dlq-command';
import { createVhost, isLocalBroker, type TemporaryVhost } from './vhost';

const USAGE = `Usage: npm run demo -- [--rate <bars/s>] [--bars <N>] [--timeout-ms <MS>] [--keep]

Runs the supervisor and every worker, replays data/market/*_5m.csv (all symbols, interleaved in
time order) through the broker at AMQP_URL, waits for one integrated result per bar and prints a
summary (results, dead letters, regimes, actions, latency percentiles, throughput).

  --rate <bars/s>     publish rate; 0 = as fast as the broker confirms, which measures
                      throughput but makes client latency mostly queueing time  [default: 250]
  --bars <N>          bars per symbol (0 = every row)                           [default: 0]
  --timeout-ms <MS>   give up waiting for results after MS of no progress       [default: 60000]
  --keep              keep the demo vhost, Redis keys and data directory for inspection
  -h, --help          this help

The demo makes its own vhost with rabbitmqctl when the broker is local; otherwise it shares the
configured vhost's durable queues (it says so) and counts only the results of its own bars.
Exit status 0 when every bar produced a result, 1 otherwise.`;

const DATA_DIR = join(__dirname, '..', '..', 'data', 'market');

interface Received {
  receivedAt: number;
  regime: string | null;
  action: string | null;
  execution: string | null;
  latencyMs: number;
  stale: boolean;
  degraded: string[];
}

function count<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function formatCounts(map: Map<string | null, number>): string {
  if (map.size === 0) return 'none';
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k ?? 'null'}=${n}`)
    .join('  ');
}

function healthStatus(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/health', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
  });
}

async function waitForHealth(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await healthStatus(port)) === 200) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      rate: { type: 'string' },
      bars: { type: 'string' },
      'timeout-ms': { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return ExitCode.Ok;
  }
  // Below what the workers sustain on a 2-core machine (~430 results/s), so latency is not queueing.
  const rate = numberFlag('rate', values.rate, 250);
  const barsPerSymbol = intFlag('bars', values.bars, 0);
  const progressTimeoutMs = intFlag('timeout-ms', values['timeout-ms'], 60_000);
  const keep = values.keep === true;
  const say = (line: string): void => void process.stdout.write(`${line}\n`);

  let base: PipelineConfig;
  try {
    base = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return ExitCode.Config;
    }
    throw err;
  }
  // The supervisor logs through the root logger: keep it (and the workers) at warn so the
  // progress bars stay readable.
  rootLogger('warn');
  const log = cliLogger(base, false);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const runId = `${stamp}-${process.pid}`;

  const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
  let vhost: TemporaryVhost | null = null;
  let amqpUrl = base.amqpUrl;
  let sharedVhost = true;
  if (isLocalBroker(base.amqpUrl)) {
    try {
      vhost = await createVhost({ baseUrl: base.amqpUrl, vhost: `pipeline-demo-${runId}` });
      amqpUrl = vhost.url;
      sharedVhost = false;
      const made = vhost;
      if (!keep) cleanups.push({ what: `delete vhost ${made.vhost}`, run: () => made.remove() });
      say(`demo vhost: ${made.vhost} (created with rabbitmqctl${keep ? ', kept' : ', deleted at the end'})`);
    } catch (err) {
      say(`rabbitmqctl could not create a vhost (${describeError(err).split('\n')[0]}):`);
    }
  }
  if (sharedVhost) {
    say(`using the configured vhost of ${redact(base.amqpUrl)}; its durable queues are shared with any`);
    say('other pipeline there, so only results of bars published by this run are counted');
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'pipeline-demo-'));
  if (!keep) cleanups.push({ what: `remove ${dataDir}`, run: () => rm(dataDir, { recursive: true, force: true }) });
  const redisPrefix = `demo-${runId}:`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AMQP_URL: amqpUrl,
    PIPELINE_REDIS_PREFIX: redisPrefix,
    PIPELINE_DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    // The demo replays with the starting model so its summary is reproducible; set
    // PIPELINE_TRAINING=on to watch online training (the trainer then updates every 2048 bars).
    PIPELINE_TRAINING: process.env.PIPELINE_TRAINING || 'off',
    HEALTH_PORT: '0',
  };
  const config = loadConfig(env);
  say(`redis prefix: ${redisPrefix}  data dir: ${dataDir}`);

  const roles = rolesFor(config);
  const supervisor = new Supervisor({ config, roles, env });
  let model: ChannelModel | null = null;
  let channel: Channel | null = null;
  const producer = new BarProducer({
    url: config.amqpUrl,
    connectionName: 'pipeline-demo-producer',
    queueType: config.queueType,
    maxAttempts: config.maxAttempts,
    confirmTimeoutMs: config.publishTimeoutMs,
    log,
  });
  const abort = new AbortController();
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    abort.abort();
  };
  process.on('SIGINT', onSigint);

  try {
    const startedAt = Date.now();
    // A worker that cannot run as configured (exit 2, its line is above) is not restarted: stop
    // waiting for health at once.
    let cannotStart = false;
    const startupFailed = new Promise<false>((resolve) => {
      supervisor.onStartupError = (role) => {
        say(`the ${role} worker cannot run as configured (see its line above); giving up`);
        cannotStart = true;
        resolve(false);
      };
    });
    await supervisor.start();
    say(`supervisor started (workers ${roles.join(', ')}); health on 127.0.0.1:${supervisor.healthPort}`);
    if (!(await Promise.race([waitForHealth(supervisor.healthPort, 90_000), startupFailed]))) {
      if (cannotStart) return ExitCode.Config;
      say('the pipeline did not become healthy within 90 s; giving up');
      return ExitCode.Failure;
    }
    say(`healthy after ${Date.now() - startedAt} ms`);

    // Results are followed from before the first publish, so none is missed.
    model = await connectBroker(config, 'pipeline-demo-results');
    const ch = await model.createChannel();
    channel = ch;
    await ch.prefetch(500);
    const publishedAt = new Map<string, number>();
    const received = new Map<string, Received>();
    let duplicates = 0;
    let invalidResults = 0;
    let lastResultAt = 0;
    let onResult: () => void = () => undefined;
    await ch.consume(QUEUE_RESULTS, (msg) => {
      if (msg === null) return;
      const now = Date.now();
      ch.ack(msg);
      const id = String(msg.properties.messageId);
      if (!publishedAt.has(id) && sharedVhost) return; // someone else's result
      if (received.has(id)) {
        duplicates++;
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(msg.content.toString('utf8'));
      } catch {
        invalidResults++;
        return;
      }
      const parsed = IntegratedResultSchema.safeParse(body);
      if (!parsed.success) invalidResults++;
      const r = (parsed.success ? parsed.data : body) as {
        strategic?: { regime?: string | null; stale?: boolean };
        actions?: { tactical?: string | null; execution?: string | null };
        latency_ms?: number;
        degraded?: string[];
      };
      received.set(id, {
        receivedAt: now,
        regime: r.strategic?.regime ?? null,
        action: r.actions?.tactical ?? null,
        execution: r.actions?.execution ?? null,
        latencyMs: typeof r.latency_ms === 'number' ? r.latency_ms : Number.NaN,
        stale: r.strategic?.stale === true,
        degraded: Array.isArray(r.degraded) ? r.degraded : [],
      });
      lastResultAt = now;
      onResult();
    });

    const files = (await readdir(DATA_DIR)).filter((f) => f.endsWith('_5m.csv')).sort();
    if (files.length === 0) {
      say(`no *_5m.csv files in ${DATA_DIR}`);
      return ExitCode.Failure;
    }
    const invalidRows: InvalidCsvRow[] = [];
    const sources = files.map((file) => {
      const path = join(DATA_DIR, file);
      return limit(
        readCsvBars(path, { symbol: symbolFromCsvPath(path), onInvalidRow: (row) => invalidRows.push(row) }),
        barsPerSymbol,
      );
    });
    const symbols = files.map((f) => symbolFromCsvPath(f));
    const total = barsPerSymbol > 0 ? barsPerSymbol * files.length : await countRows(files);
    say(`replaying ${symbols.join(', ')}: ${total} bars${rate > 0 ? ` at ${rate} bars/s` : ' as fast as the broker confirms'}`);

    // Progress bars on a terminal; on a pipe or log file a plain line every few seconds instead.
    const tty = process.stderr.isTTY === true;
    const bars = new MultiBar(
      { stream: process.stderr, format: '{name} |{bar}| {value}/{total}', hideCursor: true, clearOnComplete: false },
      Presets.shades_classic,
    );
    const publishBar = tty ? bars.create(total, 0, { name: 'confirmed' }) : null;
    const resultBar = tty ? bars.create(total, 0, { name: 'results  ' }) : null;
    onResult = () => resultBar?.update(received.size);
    const plainProgress = tty
      ? null
      : setInterval(() => process.stderr.write(`progress: ${publishedAt.size}/${total} published, ${received.size} results\n`), 5000);

    await producer.start();
    const publishStarted = Date.now();
    let publishResult: PublishBarsResult;
    try {
      publishResult = await producer.publish(interleaveByTs(sources), {
        ratePerSecond: rate,
        signal: abort.signal,
        onSent: (bar, at) => publishedAt.set(barId(bar), at),
        onProgress: (n) => publishBar?.update(n),
      });
    } finally {
      publishBar?.update(publishedAt.size);
    }
    const publishMs = Date.now() - publishStarted;
    resultBar?.setTotal(publishResult.published);

    // Wait for one result per bar; give up after progressTimeoutMs without a new result.
    await new Promise<void>((resolve) => {
      const check = (): void => {
        const idleSince = Math.max(lastResultAt, publishStarted + publishMs);
        if (received.size >= publishResult.published || interrupted || Date.now() - idleSince > progressTimeoutMs) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(check, 100);
      check();
    });
    if (tty) bars.stop();
    if (plainProgress !== null) clearInterval(plainProgress);
    const doneAt = lastResultAt;

    let deadLetters = 0;
    const reasons = new Map<string | null, number>();
    try {
      const dlqChannel = await model.createChannel();
      deadLetters = (await dlqChannel.checkQueue(QUEUE_DEAD_LETTERS)).messageCount;
      const messages = await fetchDeadLetters(dlqChannel, 1000);
      for (const m of messages) count(reasons, `${deadLetterInfo(m).stage}: ${deadLetterInfo(m).reason.slice(0, 80)}`);
      await dlqChannel.close(); // returns them to the queue
    } catch (err) {
      say(`could not read ${QUEUE_DEAD_LETTERS}: ${describeError(err)}`);
    }

    const regimes = new Map<string | null, number>();
    const actions = new Map<string | null, number>();
    const executions = new Map<string | null, number>();
    const degraded = new Map<string | null, number>();
    const clientLatency: number[] = [];
    const pipelineLatency: number[] = [];
    let stale = 0;
    for (const [id, r] of received) {
      count(regimes, r.regime);
      count(actions, r.action);
      count(executions, r.execution);
      for (const d of r.degraded) count(degraded, d);
      if (r.stale) stale++;
      const sent = publishedAt.get(id);
      if (sent !== undefined) clientLatency.push(r.receivedAt - sent);
      if (Number.isFinite(r.latencyMs)) pipelineLatency.push(r.latencyMs);
    }
    clientLatency.sort((a, b) => a - b);
    pipelineLatency.sort((a, b) => a - b);
    const pct = (values: number[]): string =>
      `p50 ${ms(quantile(values, 0.5))}  p95 ${ms(quantile(values, 0.95))}  p99 ${ms(quantile(values, 0.99))}  max ${ms(values[values.length - 1] ?? null)}`;
    const endToEndS = Math.max(1, doneAt - publishStarted) / 1000;
    const missing = publishResult.published - received.size;

    say('');
    say('── demo summary ─────────────────────────────────────────────');
    say(`bars published     ${publishResult.published} (${publishResult.confirmed} confirmed) of ${symbols.length} symbols${invalidRows.length > 0 ? `; ${invalidRows.length} CSV rows rejected` : ''}`);
    say(`results received   ${received.size}${missing > 0 ? `  (${missing} MISSING)` : ''}${duplicates > 0 ? `  + ${duplicates} duplicate deliveries` : ''}${invalidResults > 0 ? `  (${invalidResults} failed the v1 schema)` : ''}`);
    say(`dead letters       ${deadLetters}${reasons.size > 0 ? `  ${formatCounts(reasons)}` : ''}`);
    say(`regimes            ${formatCounts(regimes)}`);
    say(`actions            ${formatCounts(actions)}`);
    say(`execution          ${formatCounts(executions)}`);
    say(`stale contexts     ${stale}`);
    say(`degraded stages    ${formatCounts(degraded)}`);
    say(`latency, client    ${pct(clientLatency)}   (x-published-at -> receipt here)`);
    say(`latency, pipeline  ${pct(pipelineLatency)}   (latency_ms: tactical receipt -> publish)`);
    say(`throughput         publish ${Math.round(publishResult.published / Math.max(0.001, publishMs / 1000))} bars/s; end to end ${Math.round(received.size / endToEndS)} results/s (${endToEndS.toFixed(1)} s from first publish to last result)`);
    say('─────────────────────────────────────────────────────────────');
    if (interrupted) return ExitCode.Interrupted;
    return missing === 0 ? ExitCode.Ok : ExitCode.Failure;
  } finally {
    process.removeListener('SIGINT', onSigint);
    const steps: { what: string; run: () => Promise<unknown> }[] = [
      { what: 'stop the producer', run: () => producer.stop() },
      { what: 'close the results channel', run: async () => channel?.close() },
      { what: 'close the results connection', run: async () => model?.close() },
      { what: 'stop the supervisor', run: () => supervisor.stop() },
      ...(keep ? [] : [{ what: `delete redis keys ${redisPrefix}*`, run: () => deleteRedisKeys(config, redisPrefix, log) }]),
      ...cleanups,
    ];
    for (const step of steps) {
      try {
        await step.run();
      } catch (err) {
        process.stderr.write(`cleanup: could not ${step.what}: ${describeError(err)}\n`);
      }
    }
    say('stopped cleanly');
  }
}

async function countRows(files: string[]): Promise<number> {
  const counts = await Promise.all(files.map((f) => countCsvRows(join(DATA_DIR, f))));
  return counts.reduce((a, b) => a + b, 0);
}

async function* limit<T>(source: AsyncIterable<T>, max: number): AsyncGenerator<T> {
  if (max <= 0) {
    yield* source;
    return;
  }
  let n = 0;
  for await (const item of source) {
    yield item;
    if (++n >= max) return;
  }
}

async function deleteRedisKeys(config: PipelineConfig, prefix: string, log: ReturnType<typeof cliLogger>): Promise<void> {
  const redis = createRedis({ url: config.redisUrl, connectionName: 'pipeline-demo-cleanup', log });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

main().then(
  (code) => {
    rootLogger().flush();
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`demo failed: ${describeError(err)}\n`);
    process.exit(ExitCode.Failure);
  },
);
