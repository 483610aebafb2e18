import { componentLogger, type Logger } from '../observability/logger';
import { createRedis, type Redis } from '../state/redis-client';
import { StateEpochStore, type EpochStatus } from '../state/state-epoch-store';

/** Options of {@link StateGuard}. */
export interface StateGuardOptions {
  redisUrl: string;
  /** `PIPELINE_REDIS_PREFIX`. */
  prefix: string;
  /** `PIPELINE_DATA_DIR`. */
  dataDir: string;
  /** Names this worker's sequence file (`state-seq.<name>`): one per worker process. */
  name: string;
  /** How often the epoch is checked while the worker runs. @defaultValue 1000 */
  checkIntervalMs?: number;
  log?: Logger;
}

/** What a worker reports while its state is lost (IPC `details`, /health). */
export interface StateLostDetails {
  stateLost: true;
  /** Which state: all of it (the epoch covers every symbol of every stage). */
  affected: 'all symbols';
  cause: string;
  message: string;
  fix: string;
}

/** What the operator can do; shown in /health and the worker's log. */
export const STATE_LOST_FIX =
  'restore Redis from its persistence files (AOF/RDB) and the workers resume on their own, or run "pipeline state accept-loss --yes" to start a new epoch in which every symbol starts over; see docs/redis-loss.md';

/**
 * Keeps a worker from ever using state that Redis lost. Before the worker starts, {@link waitUntilIntact}
 * holds it back (it consumes nothing, messages stay queued) while the epoch is missing, different or
 * older; while it runs, {@link watch} re-checks every `checkIntervalMs` and at once when its Redis
 * connection comes back, and calls `onLost` on the first loss. Emits no events; callbacks only.
 */
export class StateGuard {
  private readonly log: Logger;
  private redis: Redis | null = null;
  private store: StateEpochStore | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private checking: Promise<EpochStatus | null> | null = null;

  constructor(private readonly options: StateGuardOptions) {
    this.log = options.log ?? componentLogger('state-guard', options.name);
  }

  private get intervalMs(): number {
    return this.options.checkIntervalMs ?? 1000;
  }

  private async open(): Promise<StateEpochStore> {
    if (this.store !== null) return this.store;
    this.redis = createRedis({
      url: this.options.redisUrl,
      connectionName: `pipeline-state-guard-${this.options.name}`,
      log: this.log,
    });
    await this.redis.connect();
    this.store = new StateEpochStore(this.redis, {
      prefix: this.options.prefix,
      dataDir: this.options.dataDir,
      name: this.options.name,
    });
    return this.store;
  }

  /** One check (and, when intact, one step of the sequence); null when Redis could not be asked. */
  check(): Promise<EpochStatus | null> {
    if (this.checking === null) {
      this.checking = (async () => {
        try {
          const store = await this.open();
          const status = await store.verify(true);
          if (status.kind === 'intact') {
            if (status.how !== 'existing')
              this.log.info({ epoch: status.epoch, how: status.how }, 'state epoch');
            await store.advance(status.epoch);
          }
          return status;
        } catch (err) {
          // Unreachable Redis is the consumers' and breakers' business; only a proven loss stops us.
          this.log.warn({ err: (err as Error).message }, 'cannot check the state epoch');
          return null;
        } finally {
          this.checking = null;
        }
      })();
    }
    return this.checking;
  }

  /**
   * Resolves once the state is intact; until then calls `onLost` with each loss found (every
   * `checkIntervalMs`). Resolves false if {@link stop} is called first.
   */
  async waitUntilIntact(onLost: (details: StateLostDetails) => void): Promise<boolean> {
    let reported = '';
    while (!this.stopped) {
      const status = await this.check();
      if (status?.kind === 'intact') return true;
      if (status?.kind === 'lost') {
        if (status.message !== reported)
          this.log.error({ cause: status.cause, fix: STATE_LOST_FIX }, status.message);
        reported = status.message;
        onLost(details(status));
      }
      await new Promise<void>((resolve) => {
        this.timer = setTimeout(resolve, this.intervalMs);
        this.timer.unref();
      });
    }
    return false;
  }

  /**
   * Checks every `checkIntervalMs` and whenever `workerRedis` (the worker's own client) is ready
   * again after a disconnect; calls `onLost` once, on the first loss found, and stops checking.
   */
  watch(
    onLost: (details: StateLostDetails) => void,
    workerRedis?: { on(event: 'ready', listener: () => void): unknown },
  ): void {
    let fired = false;
    const run = (): void => {
      if (this.stopped || fired) return;
      void this.check().then((status) => {
        if (status?.kind !== 'lost' || fired || this.stopped) return;
        fired = true;
        if (this.timer !== null) clearInterval(this.timer);
        this.log.error({ cause: status.cause, fix: STATE_LOST_FIX }, status.message);
        onLost(details(status));
      });
    };
    this.timer = setInterval(run, this.intervalMs);
    this.timer.unref();
    this.redis?.on('ready', run);
    workerRedis?.on('ready', run);
  }

  /** Stops checking and closes the guard's Redis connection. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const redis = this.redis;
    this.redis = null;
    if (redis !== null) await redis.quit().catch(() => redis.disconnect());
  }
}

function details(status: Extract<EpochStatus, { kind: 'lost' }>): StateLostDetails {
  return {
    stateLost: true,
    affected: 'all symbols',
    cause: status.cause,
    message: status.message,
    fix: STATE_LOST_FIX,
  };
}

/**
 * Exit code of a worker that stopped for a Redis loss and found the state intact again (restored, or
 * a new epoch accepted): the supervisor starts it afresh, so that no in-memory state outlives the loss.
 */
export const EXIT_STATE_RECOVERED = 3;
