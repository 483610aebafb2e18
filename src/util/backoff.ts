import { SeededRandom } from './random';

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** The pause before the second try. */
  initialDelayMs: number;
  /** No pause is longer. */
  maxDelayMs: number;
  /** Each pause is this many times the one before. @defaultValue 2 */
  factor?: number;
  /**
   * Share of each pause drawn at random: a pause of nominal length d lasts between d × (1 − jitter)
   * and d. Spreads the retries of many workers that failed together. @defaultValue 0.5
   */
  jitter?: number;
  /**
   * Where the jitter comes from: a number in [0, 1). Jitter only changes when a try happens,
   * never what is computed, so by default each Backoff draws from its own seeded generator (seeded
   * from the process id, so that workers differ); pass one for a reproducible schedule.
   * @defaultValue a SeededRandom per Backoff
   */
  random?: () => number;
}

let instances = 0;

/**
 * Exponential backoff with jitter: the one schedule of pauses between tries in this code base.
 * Try n (n ≥ 1) failed: the pause before try n + 1 is `initialDelayMs × factor^(n−1)`, capped at
 * `maxDelayMs`, shortened by up to `jitter` of itself at random.
 */
export class Backoff {
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.5;
    if (!(options.initialDelayMs >= 0) || !(options.maxDelayMs >= options.initialDelayMs)) {
      throw new RangeError(`backoff needs 0 <= initialDelayMs <= maxDelayMs, got ${options.initialDelayMs} and ${options.maxDelayMs}`);
    }
    if (!(this.factor >= 1) || !(this.jitter >= 0 && this.jitter <= 1)) {
      throw new RangeError(`backoff needs factor >= 1 and 0 <= jitter <= 1, got ${this.factor} and ${this.jitter}`);
    }
    if (options.random !== undefined) {
      this.random = options.random;
    } else {
      const generator = new SeededRandom(process.pid * 65_537 + ++instances);
      this.random = () => generator.next();
    }
  }

  /** The nominal pause (before jitter) after failed try `attempt` (from 1). */
  nominalDelayMs(attempt: number): number {
    const { initialDelayMs, maxDelayMs } = this.options;
    return Math.min(maxDelayMs, initialDelayMs * this.factor ** Math.max(0, attempt - 1));
  }

  /** The pause after failed try `attempt` (from 1), jitter included. */
  delayMs(attempt: number): number {
    const nominal = this.nominalDelayMs(attempt);
    return Math.round(nominal * (1 - this.jitter * this.random()));
  }
}

/** Options of {@link retry}. */
export interface RetryOptions {
  backoff: Backoff;
  /** Whether failed try `attempt` (from 1) is tried again; false throws its error. */
  shouldRetry: (err: unknown, attempt: number) => boolean;
  /** Called before each pause. @defaultValue nothing */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** How to wait (a consumer's pause also ends when it stops). @defaultValue an unref'd timer */
  pause?: (ms: number) => Promise<void>;
}

/** Resolves after `ms` on a timer that does not keep the process alive. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Calls `attempt` (with its number, from 1) until it resolves, pausing by `backoff` between tries;
 * a failure `shouldRetry` refuses is thrown as it is. The one retry loop of this code base.
 */
export async function retry<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const pause = options.pause ?? sleep;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!options.shouldRetry(err, n)) throw err;
      const delayMs = options.backoff.delayMs(n);
      options.onRetry?.(err, n, delayMs);
      await pause(delayMs);
    }
  }
}
