import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { AggregatorRegistry, Counter, Registry } from 'prom-client';

type metric = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];
import { inheritedEnv, type PipelineConfig } from '../config/config';
import { EXIT_STARTUP } from '../errors';
import { Backoff } from '../util/backoff';
import { componentLogger, type Logger } from '../observability/logger';
import { consumedBy, contextShards, type ShardLayout } from '../broker/shard-generation';
import { HealthServer } from './health-server';
import { loadShardLayout } from './shard-layout';
import { isShardedRole, workerName, type SupervisorToWorker, type WorkerRole, type WorkerToSupervisor } from './ipc';

/** Options of {@link Supervisor}. */
export interface SupervisorOptions {
  config: PipelineConfig;
  /** Roles to run: one process each, `PIPELINE_SHARDS` processes of each sharded role. */
  roles: readonly WorkerRole[];
  /** Environment of the workers. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** First restart delay; doubles per consecutive crash, up to 30 s. @defaultValue 500 */
  restartDelayMs?: number;
  /** Grace period between SIGTERM and SIGKILL on stop. @defaultValue closeTimeoutMs + 5000 */
  killGraceMs?: number;
  /** File descriptor the workers' stdout and stderr (their logs) go to. @defaultValue the supervisor's own */
  workerOutputFd?: number;
  /** The shard layout. @defaultValue the one recorded in Redis (see shard-generation.ts) */
  layout?: ShardLayout;
  /**
   * Run only this shard of the sharded roles (tactical, strategic): one worker each, as a pod or
   * container of one shard does (PIPELINE_SHARD_INDEX set). @defaultValue every shard of the layout
   */
  shard?: number;
}

interface Child {
  role: WorkerRole;
  /** `role`, or `role.<shard>` for shards above 0. */
  name: string;
  shard: number;
  process: ChildProcess | null;
  consuming: boolean;
  reason: string;
  restarts: number[];
  consecutiveCrashes: number;
  startedAt: number;
  details: Record<string, unknown>;
}

/**
 * Runs each worker role as its own process, restarts one that exits unexpectedly with exponential
 * backoff, and gives up (stopping everything, exit code 1 from `npm start`) when a role crashes
 * more than `maxRestartsPerMinute` times in a minute. Serves /health and /metrics. Events: none;
 * `onGiveUp` is called when a worker crash-loops.
 */
export class Supervisor {
  private readonly log: Logger = componentLogger('supervisor');
  private readonly children = new Map<string, Child>();
  private readonly health: HealthServer;
  private readonly ownRegistry = new Registry();
  private readonly restartsTotal: Counter;
  private stopping = false;
  /** start() has run to the end (every worker spawned). */
  private started = false;
  private stopPromise: Promise<void> | null = null;
  private metricsRequest = 0;
  /** PIPELINE_SHARDS of the workers: the widest generation's count while a resize is under way. */
  private workerShards: number;
  private readonly metricsWaiters = new Map<number, (m: metric[]) => void>();
  /** Called when a worker crash-loops and the supervisor gives up. */
  onGiveUp: (role: WorkerRole) => void = () => undefined;
  /**
   * Called when a worker exits with {@link EXIT_STARTUP} (it printed one line naming a setting: an
   * unknown vhost, refused credentials, a fatal broker error). Not restarted: no retry can fix it.
   */
  onStartupError: (role: WorkerRole) => void = () => undefined;

  constructor(private readonly options: SupervisorOptions) {
    this.workerShards = options.config.shards;
    this.health = new HealthServer(
      { health: () => this.healthStatus(), metrics: () => this.collectMetrics() },
      options.config.healthPort,
      options.config.healthHost,
    );
    this.restartsTotal = new Counter({
      name: 'pipeline_worker_restarts_total',
      help: 'Worker processes restarted by the supervisor',
      labelNames: ['role'],
      registers: [this.ownRegistry],
    });
  }

  /** Port of the health server. */
  get healthPort(): number {
    return this.health.boundPort;
  }

  /** Process ids of the running workers, by worker name (the role; `<role>.<shard>` for shards above 0). */
  pids(): Partial<Record<WorkerRole, number>> & Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, child] of this.children) if (child.process?.pid !== undefined) out[name] = child.process.pid;
    return out;
  }

  async start(): Promise<void> {
    // The layout decides how many workers of each sharded role run (a resize changes it between
    // restarts); a PIPELINE_SHARDS that contradicts it stops the start with exit code 2.
    const layout = this.options.layout ?? (await loadShardLayout(this.options.config, this.log));
    if (layout.phase !== null) {
      this.workerShards = contextShards(layout);
      this.log.info({ layout }, 'shard resize under way');
    }
    await this.health.start();
    if (this.stopping) return; // stopped (SIGTERM) while binding: start no worker
    const count = (role: WorkerRole): number => (role === 'tactical' || role === 'strategic' ? consumedBy(layout, role).workers : 1);
    // With a shard given, one worker of it per sharded role (a shard the layout does not have makes
    // that worker exit 2 naming PIPELINE_SHARD_INDEX, which stops this process the same way).
    const only = this.options.shard;
    const slots = this.options.roles.flatMap((role) =>
      !isShardedRole(role)
        ? [{ role, shard: 0 }]
        : only !== undefined
          ? [{ role, shard: only }]
          : Array.from({ length: count(role) }, (_, shard) => ({ role, shard })),
    );
    for (const { role, shard } of slots) {
      const name = workerName(role, shard);
      const child: Child = {
        role,
        name,
        shard,
        process: null,
        consuming: false,
        reason: `${name} is starting`,
        restarts: [],
        consecutiveCrashes: 0,
        startedAt: 0,
        details: {},
      };
      this.children.set(name, child);
      this.spawn(child);
    }
    this.started = true;
    if (this.options.roles.length === 0) this.log.warn('no worker role to run (the trainer runs only with PIPELINE_TRAINING=on): serving /health and /metrics only');
    this.log.info({ roles: this.options.roles, healthPort: this.health.boundPort }, 'supervisor started');
  }

  private spawn(child: Child): void {
    const isTs = __filename.endsWith('.ts');
    const entry = join(__dirname, isTs ? 'worker-main.ts' : 'worker-main.js');
    const proc = fork(entry, [child.role], {
      // HEALTH_PORT as bound (it may be 0, "pick one"): the gateway relays this supervisor's /health.
      env: {
        ...(this.options.env ?? inheritedEnv()),
        PIPELINE_SHARDS: String(this.workerShards),
        PIPELINE_SHARD_INDEX: String(child.shard),
        HEALTH_PORT: String(this.health.boundPort),
      },
      execArgv: [...(isTs ? ['--import', 'tsx'] : []), `--max-old-space-size=${this.options.config.workerHeapMb}`],
      stdio: ['ignore', this.options.workerOutputFd ?? 'inherit', this.options.workerOutputFd ?? 'inherit', 'ipc'],
    });
    child.process = proc;
    child.startedAt = Date.now();
    child.consuming = false;
    child.reason = `${child.name} is starting`;
    child.details = {}; // what the previous process reported (a lost state, say) is no longer known
    proc.on('message', (message: WorkerToSupervisor) => {
      if (message.type === 'status') {
        child.consuming = message.consuming;
        child.reason = message.reason ?? '';
        child.details = message.details ?? {};
        // The backoff resets only once a worker has stayed up a while: a worker that starts,
        // consumes and crashes again at once (a poison message) keeps backing off.
        if (message.consuming && Date.now() - child.startedAt > 30_000) child.consecutiveCrashes = 0;
      } else if (message.type === 'metrics') {
        this.metricsWaiters.get(message.requestId)?.(message.metrics as metric[]);
      }
    });
    proc.on('error', (err) => this.log.error({ err, role: child.role }, 'worker process error'));
    proc.on('exit', (code, signal) => {
      if (child.process !== proc) return;
      child.process = null;
      child.consuming = false;
      if (this.stopping) return;
      if (code === EXIT_STARTUP) {
        this.log.fatal({ worker: child.name, code }, 'worker cannot run as configured; not restarting it');
        child.reason = `${child.name} cannot run as configured (exit ${code}); see its log line`;
        this.onStartupError(child.role);
        return;
      }
      child.reason = `${child.name} exited (code ${code}, signal ${signal}); restarting`;
      const now = Date.now();
      child.restarts = child.restarts.filter((t) => now - t < 60_000);
      child.restarts.push(now);
      if (child.restarts.length > this.options.config.maxRestartsPerMinute) {
        this.log.fatal(
          { role: child.role, restartsInLastMinute: child.restarts.length },
          'worker is crash-looping; giving up',
        );
        child.reason = `${child.name} crash-looped and was given up`;
        this.onGiveUp(child.role);
        return;
      }
      // Doubling from restartDelayMs up to 30 s, with jitter so that workers that crashed together
      // come back spread out.
      const initialDelayMs = this.options.restartDelayMs ?? 500;
      const delay = new Backoff({ initialDelayMs, maxDelayMs: Math.max(initialDelayMs, 30_000) }).delayMs(child.consecutiveCrashes + 1);
      child.consecutiveCrashes++;
      this.log.warn({ role: child.role, code, signal, delayMs: delay }, 'worker exited; restarting');
      this.restartsTotal.inc({ role: child.role });
      setTimeout(() => {
        if (!this.stopping) this.spawn(child);
      }, delay).unref();
    });
  }

  private healthStatus(): { ok: boolean; body: Record<string, unknown> } {
    const workers: Record<string, unknown> = {};
    const reasons: string[] = [];
    for (const [role, child] of this.children) {
      workers[role] = { pid: child.process?.pid ?? null, consuming: child.consuming, ...child.details };
      if (!child.consuming) reasons.push(child.reason);
    }
    if (this.stopping) reasons.push('supervisor is stopping');
    // No role to run by configuration (PIPELINE_ROLES=trainer with training off): healthy and idle,
    // so that a container of that role is up and scraped rather than restarted in a loop.
    const idle = this.started && this.options.roles.length === 0;
    const ok = reasons.length === 0 && (this.children.size > 0 || idle);
    // Redis lost the state (docs/redis-loss.md): say which workers hold back, what is affected, the fix.
    const lost = [...this.children.values()].filter((c) => !c.consuming && c.details.stateLost === true);
    const stateLost = lost.length === 0 ? {} : { state_lost: { roles: [...new Set(lost.map((c) => c.role))], workers: lost.map((c) => c.name), affected: lost[0]!.details.affected, fix: lost[0]!.details.fix } };
    if (ok && idle) return { ok, body: { workers, idle: 'no worker role to run in this configuration (the trainer runs only with PIPELINE_TRAINING=on)' } };
    return { ok, body: ok ? { workers } : { workers, reasons, ...stateLost } };
  }

  private async collectMetrics(): Promise<{ contentType: string; text: string }> {
    const all: metric[][] = [await this.ownRegistry.getMetricsAsJSON()];
    const requests: Promise<metric[]>[] = [];
    for (const child of this.children.values()) {
      const proc = child.process;
      if (proc === null || !proc.connected) continue;
      const requestId = ++this.metricsRequest;
      requests.push(
        new Promise<metric[]>((resolve) => {
          const timer = setTimeout(() => {
            this.metricsWaiters.delete(requestId);
            resolve([]);
          }, 2000);
          this.metricsWaiters.set(requestId, (m) => {
            clearTimeout(timer);
            this.metricsWaiters.delete(requestId);
            resolve(m);
          });
          const message: SupervisorToWorker = { type: 'metrics', requestId };
          proc.send(message);
        }),
      );
    }
    all.push(...(await Promise.all(requests)));
    const aggregated = AggregatorRegistry.aggregate(all);
    return { contentType: aggregated.contentType, text: await aggregated.metrics() };
  }

  /** Sends SIGTERM to every worker, waits for them (SIGKILL after the grace period). Idempotent. */
  stop(): Promise<void> {
    if (this.stopPromise === null) {
      this.stopPromise = (async () => {
        this.stopping = true;
        const grace = this.options.killGraceMs ?? this.options.config.closeTimeoutMs + 5000;
        await Promise.all(
          [...this.children.values()].map(async (child) => {
            const proc = child.process;
            if (proc === null || proc.exitCode !== null) return;
            const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
            proc.kill('SIGTERM');
            const timer = setTimeout(() => {
              this.log.warn({ role: child.role }, 'worker did not stop in time; SIGKILL');
              proc.kill('SIGKILL');
            }, grace);
            await exited;
            clearTimeout(timer);
          }),
        );
        await this.health.stop();
        this.log.info('supervisor stopped');
      })();
    }
    return this.stopPromise;
  }
}
