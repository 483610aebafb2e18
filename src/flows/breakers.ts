import { CircuitOpenError, OutOfOrderError, ValidationError } from '../errors';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import type { Logger } from '../observability/logger';

/** Options of {@link createBreaker}. */
export interface BreakerOptions {
  /** Stage name: label of `pipeline_breaker_state{stage}` and the name written into `degraded`. */
  stage: string;
  /**
   * Rolling window over which calls and failures are counted. Bars arrive once per 5 minutes per
   * symbol, so a window of seconds would see almost no calls. @defaultValue PIPELINE_BREAKER_WINDOW_MS
   */
  rollingCountTimeoutMs?: number;
  /** Calls in the window before the breaker may open. @defaultValue 5 */
  volumeThreshold?: number;
  /** Failure percentage above which the breaker opens. @defaultValue 50 */
  errorThresholdPercentage?: number;
  /** Time open before a trial call (half-open). @defaultValue 5000 */
  resetTimeoutMs?: number;
  log: Logger;
}

let defaultWindowMs = 120_000;

/** Sets the rolling window of breakers created from now on (`PIPELINE_BREAKER_WINDOW_MS`). */
export function setBreakerWindow(windowMs: number): void {
  defaultWindowMs = windowMs;
}

/** Buckets of the rolling window: the counts of the oldest bucket leave the window together. */
const BUCKETS = 12;

type BreakerState = 'closed' | 'open' | 'half_open';

/**
 * A circuit breaker that keeps counts, not samples: per bucket of its rolling window, the calls and
 * the failures, so a call costs two increments and no allocation (the breakers sit on the path of
 * every bar; a breaker that records each call's latency and sorts the window for percentiles,
 * as opossum does by default, put a sort on that path every bucket).
 *
 * Closed: calls go through; a failure opens the breaker when the window holds at least
 * `volumeThreshold` calls and more than `errorThresholdPercentage` percent of them failed. Open:
 * calls are refused for `resetTimeoutMs`, then the breaker is half-open: the next call is a trial
 * (the calls meanwhile are refused), its success closes the breaker, its failure opens it again.
 * Errors caused by the data ({@link ValidationError}, {@link OutOfOrderError}) never count as
 * failures, so bad input cannot trip a breaker.
 *
 * Used either around a call ({@link fire}, or {@link fireNow} for synchronous work) or by hand:
 * {@link tryAcquire} before, {@link succeeded} or {@link failed} after.
 */
export class CountBreaker {
  private state: BreakerState = 'closed';
  /** Half-open: whether the trial call is still to be let through. */
  private trialAvailable = false;
  private readonly bucketMs: number;
  private readonly bucketIds = new Float64Array(BUCKETS).fill(-1);
  private readonly calls = new Uint32Array(BUCKETS);
  private readonly failures = new Uint32Array(BUCKETS);
  private readonly volumeThreshold: number;
  private readonly errorThresholdPercentage: number;
  private readonly resetTimeoutMs: number;

  constructor(private readonly options: BreakerOptions) {
    this.bucketMs = Math.max(1, (options.rollingCountTimeoutMs ?? defaultWindowMs) / BUCKETS);
    this.volumeThreshold = options.volumeThreshold ?? 5;
    this.errorThresholdPercentage = options.errorThresholdPercentage ?? 50;
    this.resetTimeoutMs = options.resetTimeoutMs ?? 5000;
    pipelineEvents.emit(PipelineEvent.BreakerState, { stage: options.stage, state: 'closed' });
  }

  get opened(): boolean {
    return this.state === 'open';
  }

  get halfOpen(): boolean {
    return this.state === 'half_open';
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Whether a call may go now (closed, or the trial call of a half-open breaker). */
  tryAcquire(): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'half_open' && this.trialAvailable) {
      this.trialAvailable = false;
      return true;
    }
    return false;
  }

  /** Records a call that succeeded (or failed because of its data). */
  succeeded(): void {
    this.count(false);
    if (this.state === 'half_open') this.transition('closed');
  }

  /** Records a call that failed because of the dependency. */
  failed(): void {
    this.count(true);
    if (this.state === 'half_open') {
      this.transition('open');
      return;
    }
    if (this.state !== 'closed') return;
    const { calls, failures } = this.window();
    if (calls >= this.volumeThreshold && (100 * failures) / calls > this.errorThresholdPercentage) this.transition('open');
  }

  /**
   * Runs `call` through the breaker: rejects at once with a {@link CircuitOpenError} (retriable)
   * when the breaker refuses it, otherwise with the call's own error.
   */
  async fire<R>(call: () => Promise<R> | R): Promise<R> {
    this.acquire();
    let value: R;
    try {
      value = await call();
    } catch (err) {
      this.settleError(err);
      throw err;
    }
    this.succeeded();
    return value;
  }

  /** {@link fire} for a synchronous call, with no promise: the same rules and counts. */
  fireNow<R>(call: () => R): R {
    this.acquire();
    let value: R;
    try {
      value = call();
    } catch (err) {
      this.settleError(err);
      throw err;
    }
    this.succeeded();
    return value;
  }

  private acquire(): void {
    if (!this.tryAcquire()) throw new CircuitOpenError(`${this.options.stage} circuit breaker is open`);
  }

  /** A call that threw: bad data does not count against the dependency. */
  private settleError(err: unknown): void {
    if (isBadData(err)) this.succeeded();
    else this.failed();
  }

  private count(failure: boolean): void {
    const id = Math.floor(Date.now() / this.bucketMs);
    const slot = id % BUCKETS;
    if (this.bucketIds[slot] !== id) {
      this.bucketIds[slot] = id;
      this.calls[slot] = 0;
      this.failures[slot] = 0;
    }
    this.calls[slot] = (this.calls[slot] as number) + 1;
    if (failure) this.failures[slot] = (this.failures[slot] as number) + 1;
  }

  /** The calls and failures of the buckets still in the window. */
  private window(): { calls: number; failures: number } {
    const oldest = Math.floor(Date.now() / this.bucketMs) - BUCKETS;
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if ((this.bucketIds[i] as number) > oldest) {
        calls += this.calls[i] as number;
        failures += this.failures[i] as number;
      }
    }
    return { calls, failures };
  }

  private transition(to: BreakerState): void {
    if (this.state === to) return;
    this.state = to;
    const { stage, log } = this.options;
    if (to === 'open') {
      log.warn({ stage }, 'circuit breaker opened');
      const timer = setTimeout(() => {
        if (this.state !== 'open') return;
        this.trialAvailable = true;
        this.transition('half_open');
      }, this.resetTimeoutMs);
      timer.unref();
    } else if (to === 'half_open') {
      log.info({ stage }, 'circuit breaker half-open');
    } else {
      log.info({ stage }, 'circuit breaker closed');
      // A closed breaker starts from a clean window: the failures that opened it are history.
      this.bucketIds.fill(-1);
    }
    pipelineEvents.emit(PipelineEvent.BreakerState, { stage, state: to });
  }
}

/**
 * A breaker around one dependency. State changes are logged and published as
 * {@link PipelineEvent.BreakerState}; see {@link CountBreaker}.
 */
export function createBreaker(options: BreakerOptions): CountBreaker {
  return new CountBreaker(options);
}

/**
 * Calls through a breaker and falls back when the call fails or the breaker is open. Returns the
 * value and whether the fallback served (the caller names `stage` in `degraded` then).
 */
export async function callWithFallback<R>(
  breaker: CountBreaker,
  stage: string,
  fallback: () => R,
  call: () => Promise<R> | R,
): Promise<{ value: R; degraded: boolean }> {
  try {
    return { value: await breaker.fire(call), degraded: false };
  } catch (err) {
    if (isBadData(err)) throw err;
    pipelineEvents.emit(PipelineEvent.BreakerFallback, { stage });
    return { value: fallback(), degraded: true };
  }
}

/** {@link callWithFallback} for a synchronous call, answered at once. */
export function callWithFallbackNow<R>(breaker: CountBreaker, stage: string, fallback: () => R, call: () => R): { value: R; degraded: boolean } {
  try {
    return { value: breaker.fireNow(call), degraded: false };
  } catch (err) {
    if (isBadData(err)) throw err;
    pipelineEvents.emit(PipelineEvent.BreakerFallback, { stage });
    return { value: fallback(), degraded: true };
  }
}

/** Errors caused by the data, not by the dependency. */
function isBadData(err: unknown): boolean {
  return err instanceof ValidationError || err instanceof OutOfOrderError;
}

/** Runs a dependency call through a breaker; the same breaker can guard any number of calls. */
export type Guard = <T>(call: () => Promise<T>) => Promise<T>;

/** A {@link Guard} backed by one breaker named `stage` (no fallback: open → CircuitOpenError). */
export function createGuard(options: BreakerOptions): Guard {
  const breaker = createBreaker(options);
  return <T>(call: () => Promise<T>) => breaker.fire(call);
}
