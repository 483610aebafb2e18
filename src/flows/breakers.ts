import CircuitBreaker from 'opossum';
import { CircuitOpenError, OutOfOrderError, PipelineError, ValidationError } from '../errors';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import type { Logger } from '../observability/logger';

/** Options of {@link createBreaker}. */
export interface BreakerOptions {
  /** Stage name: label of `pipeline_breaker_state{stage}` and the name written into `degraded`. */
  stage: string;
  /**
   * Rolling window over which failures are counted. Bars arrive once per 5 minutes per symbol, so
   * opossum's default 10 s window would see almost no calls. @defaultValue PIPELINE_BREAKER_WINDOW_MS
   */
  rollingCountTimeoutMs?: number;
  /** Calls in the window before the breaker may open. @defaultValue 5 */
  volumeThreshold?: number;
  /** Failure percentage that opens the breaker. @defaultValue 50 */
  errorThresholdPercentage?: number;
  /** Time open before a trial call (half-open). @defaultValue 5000 */
  resetTimeoutMs?: number;
  /** Per-call time limit; false for none. @defaultValue false */
  callTimeoutMs?: number | false;
  log: Logger;
}

let defaultWindowMs = 120_000;

/** Sets the rolling window of breakers created from now on (`PIPELINE_BREAKER_WINDOW_MS`). */
export function setBreakerWindow(windowMs: number): void {
  defaultWindowMs = windowMs;
}

/**
 * An opossum breaker around one dependency call. Validation errors (bad data) never count as
 * failures, so bad input cannot trip a breaker. State changes are
 * logged and published as {@link PipelineEvent.BreakerState}; an open breaker rejects at once with a
 * {@link CircuitOpenError} (retriable) unless the caller handles it with a fallback.
 */
export function createBreaker<A extends unknown[], R>(
  action: (...args: A) => Promise<R>,
  options: BreakerOptions,
): CircuitBreaker<A, R> {
  const breaker = new CircuitBreaker<A, R>(action, {
    timeout: options.callTimeoutMs ?? false,
    rollingCountTimeout: options.rollingCountTimeoutMs ?? defaultWindowMs,
    rollingCountBuckets: 12,
    volumeThreshold: options.volumeThreshold ?? 5,
    errorThresholdPercentage: options.errorThresholdPercentage ?? 50,
    resetTimeout: options.resetTimeoutMs ?? 5000,
    // true = "not a failure": bad data must never open a breaker.
    errorFilter: isBadData,
  });
  const { stage, log } = options;
  breaker.on('open', () => {
    log.warn({ stage }, 'circuit breaker opened');
    pipelineEvents.emit(PipelineEvent.BreakerState, { stage, state: 'open' });
  });
  breaker.on('halfOpen', () => {
    log.info({ stage }, 'circuit breaker half-open');
    pipelineEvents.emit(PipelineEvent.BreakerState, { stage, state: 'half_open' });
  });
  breaker.on('close', () => {
    log.info({ stage }, 'circuit breaker closed');
    pipelineEvents.emit(PipelineEvent.BreakerState, { stage, state: 'closed' });
  });
  pipelineEvents.emit(PipelineEvent.BreakerState, { stage, state: 'closed' });
  return breaker;
}

/** Calls through a breaker; an open breaker becomes a retriable {@link CircuitOpenError}. */
export async function callThrough<A extends unknown[], R>(breaker: CircuitBreaker<A, R>, stage: string, ...args: A): Promise<R> {
  try {
    return await breaker.fire(...args);
  } catch (err) {
    if (err instanceof PipelineError) throw err;
    if ((err as { code?: string } | null)?.code === 'EOPENBREAKER') {
      throw new CircuitOpenError(`${stage} circuit breaker is open`, { cause: err });
    }
    throw err;
  }
}

/**
 * Calls through a breaker and falls back when the call fails or the breaker is open. Returns the
 * value and whether the fallback served (the caller names `stage` in `degraded` then).
 */
export async function callWithFallback<A extends unknown[], R>(
  breaker: CircuitBreaker<A, R>,
  stage: string,
  fallback: () => R,
  ...args: A
): Promise<{ value: R; degraded: boolean }> {
  try {
    return { value: await breaker.fire(...args), degraded: false };
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

/** A {@link Guard} backed by one opossum breaker named `stage` (no fallback: open → CircuitOpenError). */
export function createGuard(options: BreakerOptions): Guard {
  const breaker = createBreaker((call: () => Promise<unknown>) => call(), options);
  return <T>(call: () => Promise<T>) => callThrough(breaker, options.stage, call) as Promise<T>;
}
