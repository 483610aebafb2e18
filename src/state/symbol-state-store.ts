import type Redis from 'ioredis';
import { StateStoreError } from '../errors';

/** Options of {@link SymbolStateStore}. */
export interface SymbolStateStoreOptions {
  /** Circuit breaker around every Redis call. @defaultValue none */
  guard?: <T>(call: () => Promise<T>) => Promise<T>;
  /** Prefix of every key (`PIPELINE_REDIS_PREFIX`). */
  prefix: string;
  /** Stage owning the state, part of the key: `tactical`, `resampler`, `strategic`. */
  stage: string;
}

const YEAR_MS = 365 * 24 * 3_600_000;

/**
 * A stage's state per symbol in Redis, committed atomically (MULTI/EXEC) together with the dedupe
 * mark of the message that produced it. Dedupe marks are bits in one bitmap per symbol, timeframe
 * and 365-day span (a bit per bar slot: 13 KB a year for 5m bars), so "was this bar accepted?" is
 * exact forever, not only for a recent window.
 */
export class SymbolStateStore<S> {
  private readonly guard: <T>(call: () => Promise<T>) => Promise<T>;

  constructor(
    private readonly redis: Redis,
    private readonly options: SymbolStateStoreOptions,
  ) {
    this.guard = options.guard ?? ((call) => call());
  }

  private stateKey(symbol: string): string {
    return `${this.options.prefix}${this.options.stage}:state:${symbol}`;
  }

  private seenKey(symbol: string, timeframeMs: number, ts: number): { key: string; bit: number } {
    const span = Math.floor(ts / YEAR_MS);
    const bit = Math.floor((ts - span * YEAR_MS) / timeframeMs);
    return { key: `${this.options.prefix}${this.options.stage}:seen:${symbol}:${timeframeMs}:${span}`, bit };
  }

  /** The last committed state of `symbol`, or null if none. */
  async load(symbol: string): Promise<S | null> {
    try {
      const raw = await this.guard(() => this.redis.get(this.stateKey(symbol)));
      return raw === null ? null : (JSON.parse(raw) as S);
    } catch (err) {
      throw new StateStoreError(`cannot load ${this.options.stage} state of ${symbol}`, { cause: err });
    }
  }

  /** True if the bar `(symbol, timeframe, ts)` was committed. */
  async wasAccepted(symbol: string, timeframeMs: number, ts: number): Promise<boolean> {
    const { key, bit } = this.seenKey(symbol, timeframeMs, ts);
    try {
      return (await this.guard(() => this.redis.getbit(key, bit))) === 1;
    } catch (err) {
      throw new StateStoreError(`cannot read dedupe mark of ${symbol}`, { cause: err });
    }
  }

  /**
   * Writes the state and the dedupe mark of the bar that produced it in one transaction. `extra`
   * adds further commands to the same transaction (for example a context or feedback record).
   */
  async commit(
    symbol: string,
    state: S,
    bar: { timeframeMs: number; ts: number },
    extra?: (multi: ReturnType<Redis['multi']>) => void,
  ): Promise<void> {
    const { key, bit } = this.seenKey(symbol, bar.timeframeMs, bar.ts);
    const multi = this.redis.multi().set(this.stateKey(symbol), JSON.stringify(state)).setbit(key, bit, 1);
    if (extra !== undefined) extra(multi);
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await this.guard(() => multi.exec());
    } catch (err) {
      throw new StateStoreError(`cannot commit ${this.options.stage} state of ${symbol}`, { cause: err });
    }
    if (replies === null) throw new StateStoreError(`commit of ${symbol} was aborted`);
    const failed = replies.find(([e]) => e !== null);
    if (failed !== undefined) {
      throw new StateStoreError(`commit of ${symbol} failed`, { cause: failed[0] });
    }
  }
}
