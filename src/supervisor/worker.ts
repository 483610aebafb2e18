import { symbolKeyPart } from '../state/keys';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { join } from 'node:path';
import type { Feedback } from '../../schemas/feedback.schema';
import { StrategicContextSchema } from '../../schemas/strategic-context.schema';
import { BrokerConnection } from '../broker/broker-connection';
import type { BaseConsumer } from '../broker/base-consumer';
import { Publisher } from '../broker/publisher';
import { consumedBy } from '../broker/shard-generation';
import { QUEUE_EXPERIENCE, shardQueue } from '../broker/topology';
import { StartupError } from '../errors';
import type { ModelUpdateSubscriber } from '../consumers/model-update-subscriber';
import type { PipelineConfig } from '../config/config';
import { BufferConsumer } from '../consumers/buffer-consumer';
import { ExperienceBatcher } from '../consumers/experience-batcher';
import { createGuard } from '../flows/breakers';
import type { ResampleState } from '../flows/resample-flow';
import { FaultInjector } from '../flows/fault-injection';
import { StrategicConsumer } from '../consumers/strategic-consumer';
import { TacticalConsumer } from '../consumers/tactical-consumer';
import { ContextBufferFlow, TimeKeyedBufferFlow } from '../flows/context-buffer-flow';
import { StrategicFlow, type StrategicState } from '../flows/strategic-flow';
import { TacticalFlow, type TacticalState } from '../flows/tactical-flow';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import { componentLogger, type Logger } from '../observability/logger';
import { createRedis, type Redis } from '../state/redis-client';
import { SymbolStateStore } from '../state/symbol-state-store';
import { isShardedRole, workerName, type WorkerRole } from './ipc';
import { checkedLayout } from './shard-layout';
import { buildStages, INITIAL_POLICY_SEED } from './stages';

/** Nice value of the trainer: the live path always goes first on a busy machine. */
const TRAINER_NICE = 19;

/**
 * One worker process's components for a role, with start/stop in the graceful-shutdown
 * order (docs/operations-lifecycle.md, "Stopping"):
 * stop taking work, cancel consumers (upstream queue first), wait for in-flight messages, flush
 * confirms, close channels and the connection, quit Redis.
 */
export class Worker {
  private readonly log: Logger;
  private connection: BrokerConnection | null = null;
  private publisher: Publisher | null = null;
  private redis: Redis | null = null;
  /** Consumers in the order they are stopped. */
  private consumers: BaseConsumer[] = [];
  /** The buffer the worker's ordered stage waits on (contexts or feedback); closed on stop. */
  private waitBuffer: { close(): void } | null = null;
  private stopPromise: Promise<void> | null = null;
  private subscriber: ModelUpdateSubscriber | null = null;
  private renice: NodeJS.Timeout | null = null;
  /** Called when the worker cannot go on (fatal broker error). */
  onFatal: (err: Error) => void = () => undefined;

  constructor(
    private readonly role: WorkerRole,
    private readonly config: PipelineConfig,
  ) {
    this.log = componentLogger(`worker.${workerName(role, config.shardIndex)}`);
  }

  /** True when every consumer of the worker is consuming. */
  get consuming(): boolean {
    return this.consumers.length > 0 && this.consumers.every((c) => c.consuming);
  }

  /** Unacknowledged messages across the worker's consumers. */
  get inFlight(): number {
    return this.consumers.reduce((n, c) => n + c.inFlight, 0);
  }

  async start(): Promise<void> {
    const { config, role } = this;
    const shard = config.shardIndex;
    const name = workerName(role, shard);
    this.redis = createRedis({ url: config.redisUrl, connectionName: `pipeline-${name}`, log: this.log });
    await this.redis.connect();
    // Which generation's queues this worker consumes, and what its reconnects bind (shard-generation.ts).
    const layout = await checkedLayout(this.redis, config);
    const consumes = role === 'tactical' || role === 'strategic' ? consumedBy(layout, role) : null;
    if (consumes !== null && shard >= consumes.workers) {
      throw new StartupError('PIPELINE_SHARD_INDEX', `PIPELINE_SHARD_INDEX=${shard}: the ${role} role has ${consumes.workers} shard(s) in the current shard layout; run shards 0 to ${consumes.workers - 1}`);
    }
    const generation = consumes?.generation?.generation ?? 0;
    if (isShardedRole(role) && layout.phase !== null) this.log.info({ layout, generation: consumes?.generation ?? null }, 'shard resize under way');
    const connection = new BrokerConnection({
      url: config.amqpUrl,
      connectionName: `pipeline-${name}-${process.pid}`,
      queueType: config.queueType,
      maxAttempts: config.maxAttempts,
      shards: config.shards,
      // Read again on every reconnect: after a resize the sources are bound to the recorded layout's
      // generation, never to the one this worker started with; a layout that contradicts
      // PIPELINE_SHARDS stops the worker.
      layout: async () => {
        try {
          return await checkedLayout(this.redis!, config);
        } catch (err) {
          if (err instanceof StartupError) this.onFatal(err);
          throw err;
        }
      },
      log: componentLogger('broker', name),
    });
    connection.onFatal = (err) => this.onFatal(err);
    this.connection = connection;
    // One breaker per dependency and process: Redis (state, buffers) and the publish to the next stage.
    // Redis failures come in bursts, not one at a time; two failed calls in the window are enough.
    const redisGuard = createGuard({ stage: 'redis', volumeThreshold: 2, log: componentLogger('breaker', name) });
    const publisher = new Publisher(connection, {
      maxInFlight: config.maxInFlight,
      publishTimeoutMs: config.publishTimeoutMs,
      guard: createGuard({ stage: 'publish', log: componentLogger('breaker', name) }),
      log: componentLogger('publisher', name),
    });
    this.publisher = publisher;
    const base = (queue: string) => ({
      queue,
      stage: role,
      prefetchCount: config.prefetchCount,
      maxAttempts: config.maxAttempts,
      retryDelayMs: config.retryDelayMs,
      log: componentLogger(`consumer.${role}`, queue),
    });
    const stages = await buildStages(role, config);
    if (stages.tactical?.agents !== undefined) pipelineEvents.emit(PipelineEvent.ModelVersion, { version: stages.tactical.agents.version });
    const prefix = config.redisPrefix;
    const faults = new FaultInjector(config.faultFile);
    const storeOptions = (stage: string) => ({
      prefix,
      stage,
      guard: redisGuard,
      retryDelayMs: config.retryDelayMs,
      faultCheck: (what: string) => faults.check(what),
      log: componentLogger('state', name),
    });
    if (role === 'strategic') {
      const store = new SymbolStateStore<StrategicState>(this.redis, storeOptions('strategic'));
      const feedback = new TimeKeyedBufferFlow<Feedback>({
        redis: this.redis,
        prefix,
        contextWaitMs: config.feedbackWaitMs,
        guard: redisGuard,
        name: 'fb',
        keyOf: (f) => f.window_close_ts,
        symbolOf: (f) => f.symbol,
      });
      this.waitBuffer = feedback;
      this.consumers = [
        new StrategicConsumer(connection, publisher, store, new StrategicFlow(stages.strategic ?? null, feedback, config.feedbackLag), feedback, {
          ...base(shardQueue('strategic', shard, generation)),
          timeframe: '30m',
          crashAttempts: config.crashAttempts,
        }),
      ];
    } else if (role === 'trainer') {
      // Loaded here so that the other roles do not load the trainer's flow and consumer.
      const { TrainerFlow } = await import('../flows/trainer-flow');
      const { TrainerConsumer } = await import('../consumers/trainer-consumer');
      const { openModelRegistry, BUNDLED_MODEL_DIR } = await import('../state/model-files');
      const flow = await TrainerFlow.create({
        registry: openModelRegistry(join(config.dataDir, 'models'), { keepVersions: config.modelKeep, seedFrom: BUNDLED_MODEL_DIR }),
        batchSize: config.trainBatchSize,
        seed: INITIAL_POLICY_SEED,
        log: componentLogger('trainer'),
      });
      this.consumers = [
        new TrainerConsumer(connection, publisher, flow, {
          ...base(QUEUE_EXPERIENCE),
          prefetchCount: config.trainBatchSize,
          cpuShare: config.trainerCpuShare,
        }),
      ];
      // Training must never slow the live path: the trainer yields the CPU to every other process.
      // Linux nice values are per thread, so every thread is lowered (V8 and libuv start theirs
      // early; more may start later, libuv's pool on its first use say, hence again every few
      // seconds). Where `chrt` exists the threads also get SCHED_IDLE: they run only on a core
      // nothing else wants (nice 19 still takes ~1.5% of a busy core, and preempting it costs the
      // live path a wake-up). The duty cycle (PIPELINE_TRAINER_CPU_PERCENT) bounds what it takes of
      // an idle core.
      const lower = (): void => {
        lowerPriority(TRAINER_NICE, this.log);
        idleScheduling(this.log);
      };
      lower();
      this.renice = setInterval(lower, 5000);
      this.renice.unref();
    } else {
      const agents = stages.tactical?.agents;
      if (config.training && config.modelVersion === null && agents !== undefined) {
        // Swap to each newly promoted version between bars. With training off, or a pinned
        // PIPELINE_MODEL_VERSION, the worker keeps the version it started with.
        const { openModelRegistry, BUNDLED_MODEL_DIR } = await import('../state/model-files');
        const { TacticalPolicy } = await import('../learning/policy');
        const { ModelUpdateSubscriber } = await import('../consumers/model-update-subscriber');
        const registry = openModelRegistry(join(config.dataDir, 'models'), { keepVersions: config.modelKeep, seedFrom: BUNDLED_MODEL_DIR });
        const log = componentLogger('models', name);
        this.subscriber = new ModelUpdateSubscriber(connection, {
          onUpdate: async (version) => {
            await agents.swap(await TacticalPolicy.load(registry, version));
            pipelineEvents.emit(PipelineEvent.ModelVersion, { version });
            log.info({ version }, 'tactical policy swapped');
          },
          log,
        });
      }
      const store = new SymbolStateStore<TacticalState>(this.redis, storeOptions('tactical'));
      const contexts = new ContextBufferFlow({
        redis: this.redis,
        prefix,
        contextWaitMs: config.contextWaitMs,
        guard: redisGuard,
      });
      this.waitBuffer = contexts;
      const flow = new TacticalFlow(stages.tactical ?? {});
      const contextQueue = shardQueue('context', shard);
      const contextConsumer = new BufferConsumer(connection, publisher, contexts, StrategicContextSchema, base(contextQueue));
      // While a resize drains the old strategic queues, the tactical workers only store the contexts
      // those send (every context queue must be empty before the new tactical queues are consumed).
      this.consumers = consumes?.generation === null ? [contextConsumer] : [
        new TacticalConsumer(connection, publisher, store, flow, contexts, {
          ...base(shardQueue('tactical', shard, generation)),
          timeframe: '5m',
          crashAttempts: config.crashAttempts,
          contextQueue,
          // 30m bars of bars in hand leave ahead, as far as the strategic feedback lag allows.
          lookaheadPeriods: config.feedbackLag - 1,
          faults,
          legacyResample: async (symbol) => {
            const raw = await this.redis!.get(`${prefix}resampler:state:${symbolKeyPart(this.redis!, symbol)}`);
            return raw === null ? null : ((JSON.parse(raw) as { open?: ResampleState | null }).open ?? null);
          },
          ...(config.training ? { experience: new ExperienceBatcher(publisher) } : {}),
        }),
        contextConsumer,
      ];
    }
    await connection.start();
  }

  /** Graceful stop; idempotent. */
  stop(): Promise<void> {
    if (this.stopPromise === null) {
      this.stopPromise = (async () => {
        const timeout = this.config.closeTimeoutMs;
        const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
          try {
            await fn();
          } catch (err) {
            this.log.error({ err, step: name }, 'shutdown step failed');
          }
        };
        // Upstream queue first; bars waiting for a context or feedback are released at once (they stay
        // unacknowledged and are redelivered on the next start) while the others finish.
        for (const consumer of this.consumers) {
          await step('consumer', () => consumer.stop(timeout, () => this.waitBuffer?.close()));
        }
        if (this.renice !== null) clearInterval(this.renice);
        if (this.subscriber !== null) await step('model updates', () => this.subscriber!.stop());
        if (this.publisher !== null) await step('publisher', () => this.publisher!.stop(timeout));
        if (this.connection !== null) await step('connection', () => this.connection!.stop());
        if (this.redis !== null) await step('redis', async () => void (await this.redis!.quit()));
        this.log.info('worker stopped');
      })();
    }
    return this.stopPromise;
  }
}

let priorityWarned = false;
let idleThreads = '';
let idleUnavailable = false;

/** SCHED_IDLE for every thread of this process with util-linux `chrt`, when present (Linux). */
function idleScheduling(log: Logger): void {
  if (idleUnavailable || process.platform !== 'linux') return;
  let tids: string;
  try {
    tids = readdirSync('/proc/self/task').sort().join(',');
  } catch {
    return;
  }
  if (tids === idleThreads) return; // no new thread since the last call
  execFile('chrt', ['--idle', '--all-tasks', '--pid', '0', String(process.pid)], (err) => {
    if (err === null) {
      idleThreads = tids;
      return;
    }
    idleUnavailable = true;
    log.info({ err: err.message }, 'trainer threads keep nice 19 only (chrt --idle unavailable)');
  });
}

/** Sets the nice value of every thread of this process (Linux: /proc/self/task), or of the process elsewhere. */
function lowerPriority(nice: number, log: Logger): void {
  let tids: number[];
  try {
    tids = readdirSync('/proc/self/task').map(Number);
  } catch {
    tids = [0];
  }
  for (const tid of tids) {
    try {
      if (getPriority(tid) < nice) setPriority(tid, nice);
    } catch (err) {
      if (!priorityWarned) log.warn({ err: (err as Error).message }, 'cannot lower the trainer priority');
      priorityWarned = true;
    }
  }
}
