/**
 * What `npm run demo` and `pipeline replay` share: a whole pipeline (supervisor and workers) started
 * in this process on a vhost of its own, with a private Redis key prefix and a temporary data
 * directory, all removed at the end; and a collector of the integrated results it emits.
 *
 * Isolation: with a local broker and rabbitmqctl at hand the pipeline gets a vhost of its own
 * (`pipeline-<label>-<timestamp>-<pid>`), because the pipeline's queues are durable and shared by
 * every pipeline on a vhost. Without rabbitmqctl it uses the configured vhost and says so; callers
 * then count only the results of the bars they published.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Channel, ChannelModel } from 'amqplib';
import { redact } from '../broker/broker-connection';
import type { ResultBatch } from '../../schemas/result-batch.schema';
import { EXCHANGE_INTERNAL, EXCHANGE_RESULTS, QUEUE_DEAD_LETTERS, QUEUE_RESULTS, routingKeys } from '../broker/topology';
import { inheritedEnv, loadConfig, type PipelineConfig } from '../config/config';
import { PipelineError } from '../errors';
import type { Logger } from '../observability/logger';
import { createRedis } from '../state/redis-client';
import { rolesFor } from '../supervisor/ipc';
import { Supervisor } from '../supervisor/supervisor';
import { connectBroker, describeError } from './common';
import { BarKeySet } from '../report/bar-key-set';
import { createVhost, isLocalBroker, vhostConsumerCount, type TemporaryVhost } from './vhost';

/** Options of {@link startPrivatePipeline}. */
export interface PrivatePipelineOptions {
  /** Short name used in the vhost, Redis prefix and data directory (`demo`, `replay`). */
  label: string;
  /** Keep the vhost, Redis keys and data directory for inspection. */
  keep: boolean;
  /** Where progress lines go (a person reads them). */
  say: (line: string) => void;
  log: Logger;
  /** Environment of the workers on top of process.env; PIPELINE_TRAINING defaults to `off`. */
  env?: NodeJS.ProcessEnv;
  /** @defaultValue 90_000 */
  healthTimeoutMs?: number;
  /**
   * Refuse to start (a {@link PrivatePipelineStartError} with `configError`) rather than fall back
   * to the configured vhost when no vhost of its own can be made, or when that vhost already has
   * consumers: a replay must never put historic bars into a live pipeline's queues.
   * @defaultValue false
   */
  requireOwnVhost?: boolean;
}

/** A running private pipeline. */
export interface PrivatePipeline {
  config: PipelineConfig;
  env: NodeJS.ProcessEnv;
  roles: string[];
  supervisor: Supervisor;
  /** False when it runs in the configured vhost (rabbitmqctl unavailable): results must be filtered. */
  ownVhost: boolean;
  redisPrefix: string;
  dataDir: string;
  /** Stops the supervisor and removes what was made for the run (unless `keep`). Never throws. */
  stop(): Promise<void>;
}

/** Why a private pipeline could not start; `configError` maps to exit code 2. */
export class PrivatePipelineStartError extends PipelineError {
  constructor(
    message: string,
    readonly configError: boolean,
  ) {
    super('PRIVATE_PIPELINE_START', message, false);
  }
}

/** Answers the HTTP status of `/health` on `port`, 0 when it does not answer. */
export function healthStatus(port: number): Promise<number> {
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

/** Resolves true once `/health` answers 200, false after `timeoutMs`. */
export async function waitForHealth(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await healthStatus(port)) === 200) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** Deletes every Redis key under `prefix` (SCAN + UNLINK, never a flush). */
export async function deleteRedisKeys(
  config: PipelineConfig,
  prefix: string,
  log: Logger,
): Promise<void> {
  const redis = createRedis({ url: config.redisUrl, connectionName: 'pipeline-cli-cleanup', log });
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

/** Runs each cleanup step in turn; one that fails is reported on stderr and the rest still run. */
export async function runCleanup(steps: readonly { what: string; run: () => Promise<unknown> }[]): Promise<void> {
  for (const step of steps) {
    try {
      await step.run();
    } catch (err) {
      process.stderr.write(`cleanup: could not ${step.what}: ${describeError(err)}\n`);
    }
  }
}

/**
 * Starts the supervisor and every worker on a vhost of their own (when rabbitmqctl can make one),
 * and waits until /health answers 200. On failure everything made so far is removed and a
 * {@link PrivatePipelineStartError} says why.
 */
export async function startPrivatePipeline(
  base: PipelineConfig,
  options: PrivatePipelineOptions,
): Promise<PrivatePipeline> {
  const { say, keep, label, log } = options;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const runId = `${stamp}-${process.pid}`;
  const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
  let vhost: TemporaryVhost | null = null;
  let amqpUrl = base.amqpUrl;
  const refuse = (why: string): never => {
    throw new PrivatePipelineStartError(
      `${label}: ${why}; pass --attach to replay into the pipeline at AMQP_URL on purpose`,
      true,
    );
  };
  if (isLocalBroker(base.amqpUrl)) {
    try {
      vhost = await createVhost({ baseUrl: base.amqpUrl, vhost: `pipeline-${label}-${runId}` });
    } catch (err) {
      const reason = describeError(err).split('\n')[0] ?? '';
      if (options.requireOwnVhost === true)
        refuse(`rabbitmqctl could not make a private vhost (${reason}), so the run has nowhere safe to go`);
      say(`rabbitmqctl could not create a vhost (${reason}):`);
    }
  } else if (options.requireOwnVhost === true) {
    refuse(
      `AMQP_URL ${redact(base.amqpUrl)} is not a broker on this machine, so no private vhost can be made with rabbitmqctl`,
    );
  }
  if (vhost !== null) {
    const made = vhost;
    amqpUrl = made.url;
    if (!keep) cleanups.push({ what: `delete vhost ${made.vhost}`, run: () => made.remove() });
    if (options.requireOwnVhost === true) {
      let consumers: number;
      try {
        consumers = await vhostConsumerCount(made.vhost);
      } catch (err) {
        consumers = -1;
        say(`rabbitmqctl list_consumers failed: ${describeError(err).split('\n')[0] ?? ''}`);
      }
      if (consumers !== 0) {
        if (consumers > 0) {
          // Someone else's vhost (add_vhost succeeds on an existing one): never delete it.
          if (!keep) cleanups.pop();
        } else await made.remove().catch(() => undefined);
        refuse(
          consumers > 0
            ? `vhost ${made.vhost} already has ${consumers} consumer(s), so it is not private`
            : `cannot tell whether vhost ${made.vhost} has consumers`,
        );
      }
    }
    say(
      `${label} vhost: ${made.vhost} (created with rabbitmqctl${keep ? ', kept' : ', deleted at the end'})`,
    );
  }
  if (vhost === null) {
    say(
      `using the configured vhost of ${redact(base.amqpUrl)}; its durable queues are shared with any`,
    );
    say('other pipeline there, so only results of bars published by this run are counted');
  }
  const dataDir = await mkdtemp(join(tmpdir(), `pipeline-${label}-`));
  if (!keep)
    cleanups.push({
      what: `remove ${dataDir}`,
      run: () => rm(dataDir, { recursive: true, force: true }),
    });
  const redisPrefix = `${label}-${runId}:`;
  const env: NodeJS.ProcessEnv = {
    ...inheritedEnv(),
    LOG_LEVEL: 'warn',
    // Reproducible by default: the starting model, no trainer. PIPELINE_TRAINING=on overrides.
    PIPELINE_TRAINING: inheritedEnv().PIPELINE_TRAINING || 'off',
    // Its own gateway port, so a pipeline already serving GATEWAY_PORT on this machine does not stop it.
    GATEWAY_PORT: '0',
    ...options.env,
    // A replay's bars come faster than any wait would be useful for, and a wait that runs out
    // gives a result that depends on the machine's speed (a stale context): wait as long as it
    // takes (docs/architecture.md). Not overridable: that is what makes replays reproducible.
    PIPELINE_CONTEXT_WAIT_MS: '0',
    PIPELINE_FEEDBACK_WAIT_MS: '0',
    AMQP_URL: amqpUrl,
    PIPELINE_REDIS_PREFIX: redisPrefix,
    PIPELINE_DATA_DIR: dataDir,
    HEALTH_PORT: '0',
  };
  const config = loadConfig(env);
  say(`redis prefix: ${redisPrefix}  data dir: ${dataDir}`);
  const roles = rolesFor(config);
  const supervisor = new Supervisor({ config, roles, env });

  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      const steps: { what: string; run: () => Promise<unknown> }[] = [
        { what: 'stop the supervisor', run: () => supervisor.stop() },
        ...(keep
          ? []
          : [
              {
                what: `delete redis keys ${redisPrefix}*`,
                run: () => deleteRedisKeys(config, redisPrefix, log),
              },
            ]),
        ...cleanups,
      ];
      await runCleanup(steps);
    })();
    return stopped;
  };

  const startedAt = Date.now();
  let cannotStart: string | null = null;
  const startupFailed = new Promise<false>((resolve) => {
    supervisor.onStartupError = (role) => {
      cannotStart = role;
      resolve(false);
    };
  });
  try {
    await supervisor.start();
    say(
      `supervisor started (workers ${roles.join(', ')}); health on 127.0.0.1:${supervisor.healthPort}`,
    );
    const healthy = await Promise.race([
      waitForHealth(supervisor.healthPort, options.healthTimeoutMs ?? 90_000),
      startupFailed,
    ]);
    if (!healthy) {
      const failedRole = cannotStart as string | null; // set by the callback above
      throw failedRole !== null
        ? new PrivatePipelineStartError(
            `the ${failedRole} worker cannot run as configured (see its line above); giving up`,
            true,
          )
        : new PrivatePipelineStartError(
            'the pipeline did not become healthy within 90 s; giving up',
            false,
          );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  say(`healthy after ${Date.now() - startedAt} ms`);
  return { config, env, roles, supervisor, ownVhost: vhost !== null, redisPrefix, dataDir, stop };
}

/** One integrated result as received. */
export interface CollectedResult {
  /** `messageId`, `<symbol>:5m:<ts>`. */
  id: string;
  /** The body exactly as published (UTF-8 JSON). */
  body: string;
  /** `Date.now()` at receipt. */
  receivedAt: number;
}

/** Options of {@link ResultCollector}. */
export interface ResultCollectorOptions {
  connectionName: string;
  ownQueue: boolean;
  /** Keep a result only when this says so (e.g. bars this run published). */
  accept?: (id: string, symbol: string, ts: number) => boolean;
  onResult?: (r: CollectedResult) => void;
  /**
   * Also take batched results (one message per bar batch, see `HEADER_RESULTS_TO`) from an
   * exclusive queue bound to `pipeline.internal` with this routing key.
   */
  resultsKey?: string;
  /**
   * Keep every body in {@link ResultCollector.results}. Off, memory stays flat whatever the number
   * of results: repeats are recognised by a bit per bar ({@link BarKeySet}) and the bodies go only
   * to `onResult`. @defaultValue true
   */
  keepBodies?: boolean;
}

/**
 * Collects integrated results: from the queue `integrated_results` of a private vhost, or (when
 * `ownQueue`) from an exclusive queue of its own bound to `pipeline.results` with `results.#`, which
 * leaves the configured pipeline's `integrated_results` to its users. Only the first delivery of a
 * `(symbol, ts)` is taken; repeats are counted in `duplicates`.
 */
export class ResultCollector {
  /** The results taken, by id; empty unless `keepBodies`. */
  readonly results = new Map<string, CollectedResult>();
  duplicates = 0;
  lastAt = 0;
  private readonly seen = new BarKeySet();
  private model: ChannelModel | null = null;
  private channel: Channel | null = null;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly config: PipelineConfig,
    private readonly options: ResultCollectorOptions,
  ) {}

  /** The number of distinct results taken. */
  get count(): number {
    return this.seen.size;
  }

  async start(): Promise<void> {
    this.model = await connectBroker(this.config, this.options.connectionName);
    const ch = await this.model.createChannel();
    this.channel = ch;
    await ch.prefetch(1000);
    let queue = QUEUE_RESULTS;
    if (this.options.ownQueue) {
      await ch.assertExchange(EXCHANGE_RESULTS, 'topic', { durable: true });
      const q = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
      await ch.bindQueue(q.queue, EXCHANGE_RESULTS, routingKeys.result('#'));
      queue = q.queue;
    }
    await ch.consume(queue, (msg) => {
      if (msg === null) return;
      ch.ack(msg);
      const id = String(msg.properties.messageId);
      // messageId is `<symbol>:5m:<ts>` (wire contract); the symbol has no `:`.
      const colon = id.lastIndexOf(':');
      this.take(id.slice(0, id.indexOf(':')), Number(id.slice(colon + 1)), id, msg.content.toString('utf8'));
    });
    const resultsKey = this.options.resultsKey;
    if (resultsKey !== undefined) {
      await ch.assertExchange(EXCHANGE_INTERNAL, 'topic', { durable: true });
      const q = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
      await ch.bindQueue(q.queue, EXCHANGE_INTERNAL, resultsKey);
      await ch.consume(q.queue, (msg) => {
        if (msg === null) return;
        ch.ack(msg);
        // Each result as it would have been published alone (same JSON, same messageId).
        const batch = JSON.parse(msg.content.toString('utf8')) as ResultBatch;
        for (const result of batch.results)
          this.take(result.symbol, result.ts, `${result.symbol}:5m:${result.ts}`, JSON.stringify(result));
      });
    }
  }

  private take(symbol: string, ts: number, id: string, body: string): void {
    if (this.options.accept !== undefined && !this.options.accept(id, symbol, ts)) return;
    if (!this.seen.add(symbol, ts)) {
      this.duplicates++;
      return;
    }
    const r: CollectedResult = { id, body, receivedAt: Date.now() };
    if (this.options.keepBodies !== false) this.results.set(id, r);
    this.lastAt = r.receivedAt;
    this.options.onResult?.(r);
    for (const w of this.waiters.splice(0)) w();
  }

  /**
   * Resolves once `count` results arrived, or when no new result came for `idleMs` after
   * `notBefore` (or `signal` aborts). Answers whether the count was reached.
   */
  async waitFor(
    count: () => number,
    idleMs: number,
    notBefore: number,
    signal?: AbortSignal,
  ): Promise<boolean> {
    for (;;) {
      if (this.count >= count()) return true;
      if (signal?.aborted === true) return false;
      if (Date.now() - Math.max(this.lastAt, notBefore) > idleMs) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The number of dead letters waiting in `pipeline.dead_letters`, or null when it cannot be read. */
  async deadLetterCount(): Promise<number | null> {
    if (this.model === null) return null;
    try {
      const ch = await this.model.createChannel();
      ch.on('error', () => undefined); // a failed checkQueue closes the channel; the catch below answers
      const n = (await ch.checkQueue(QUEUE_DEAD_LETTERS)).messageCount;
      await ch.close();
      return n;
    } catch {
      return null;
    }
  }

  /** The connection, for callers that read more (the demo lists dead-letter reasons). */
  get connection(): ChannelModel | null {
    return this.model;
  }

  async stop(): Promise<void> {
    await this.channel?.close().catch(() => undefined);
    await this.model?.close().catch(() => undefined);
    this.channel = null;
    this.model = null;
  }
}
