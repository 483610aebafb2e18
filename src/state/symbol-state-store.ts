import { deserialize, serialize } from 'node:v8';
import type Redis from 'ioredis';
import { PipelineError, StateStoreError } from '../errors';
import { Backoff } from '../util/backoff';
import type { Logger } from '../observability/logger';
import { keySlot, symbolKeyPart } from './keys';

/** Options of {@link SymbolStateStore}. */
export interface SymbolStateStoreOptions {
  /** Circuit breaker around every Redis call. @defaultValue none */
  guard?: <T>(call: () => Promise<T>) => Promise<T>;
  /** Prefix of every key (`PIPELINE_REDIS_PREFIX`). */
  prefix: string;
  /** Stage owning the state, part of the key: `tactical`, `strategic`. */
  stage: string;
  /**
   * Resilience testing: called with `state:<symbol>` before a symbol's state joins a group commit;
   * a throw fails that symbol's commit only (it is retried), as a Redis failure would.
   * @defaultValue none
   */
  faultCheck?: (stage: string) => void;
  /** First pause before a failed commit is tried again; doubles up to 30 s, with jitter. @defaultValue 200 */
  retryDelayMs?: number;
  log?: Logger;
}

const YEAR_MS = 365 * 24 * 3_600_000;
const MAX_RETRY_DELAY_MS = 30_000;

/** The state of a consumer was dropped (disconnect) while a commit waited: the broker redelivers. */
export class CommitSupersededError extends PipelineError {
  constructor() {
    super('COMMIT_SUPERSEDED', 'state was reset before the commit; the message is delivered again', true);
  }
}

interface Dirty {
  /** The newest state of the symbol (a full snapshot: it supersedes any older one not yet written). */
  state: unknown;
  /** Dedupe marks to set: [key, bit]. */
  marks: [string, number][];
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
  failures: number;
  notBefore: number;
}

/**
 * A stage's state per symbol in Redis, with the dedupe mark of every bar that produced it.
 *
 * Group commits: {@link commit} does not write at once. The symbols with a new state wait in a
 * dirty set; one flush writes all of them in a single MULTI/EXEC (on a Redis Cluster, one per hash
 * slot) (the newest snapshot of each
 * symbol, coalescing the bars committed since the last flush, plus every dedupe mark), and the next
 * flush starts when it returns, so under load a transaction carries hundreds of bars and when idle
 * a bar waits one round trip. `commit()` resolves once a transaction holding the bar's state (or a
 * newer state of its symbol) and its mark has succeeded. A failed flush puts its entries back and
 * tries them again with a growing delay; a symbol that fails alone (fault injection) is held back
 * on its own while the others commit.
 *
 * States are written with the V8 serializer (binary, doubles exact, about half the bytes of JSON
 * and no number formatting); a state written as JSON by an earlier version is still read.
 * Dedupe marks are bits in one bitmap per symbol, timeframe and 365-day span (a bit per bar slot:
 * 13 KB a year for 5m bars), so "was this bar accepted?" is exact forever, not only for a recent
 * window.
 */
export class SymbolStateStore<S> {
  private readonly guard: <T>(call: () => Promise<T>) => Promise<T>;
  private dirty = new Map<string, Dirty>();
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;

  private readonly retryBackoff: Backoff;

  constructor(
    private readonly redis: Redis,
    private readonly options: SymbolStateStoreOptions,
  ) {
    this.guard = options.guard ?? ((call) => call());
    const initialDelayMs = options.retryDelayMs ?? 200;
    this.retryBackoff = new Backoff({ initialDelayMs, maxDelayMs: Math.max(initialDelayMs, MAX_RETRY_DELAY_MS) });
  }

  /** `<prefix><stage>:state:<symbol>`; on a Redis Cluster the symbol is a hash tag (see keys.ts). */
  private stateKey(symbol: string): string {
    return `${this.options.prefix}${this.options.stage}:state:${symbolKeyPart(this.redis, symbol)}`;
  }

  private attemptKey(id: string): string {
    return `${this.options.prefix}${this.options.stage}:attempts:${id}`;
  }

  private seenKey(symbol: string, timeframeMs: number, ts: number): { key: string; bit: number } {
    const span = Math.floor(ts / YEAR_MS);
    const bit = Math.floor((ts - span * YEAR_MS) / timeframeMs);
    return { key: `${this.options.prefix}${this.options.stage}:seen:${symbolKeyPart(this.redis, symbol)}:${timeframeMs}:${span}`, bit };
  }

  /** The last committed state of `symbol`, or null if none. Waits for a flush in progress. */
  async load(symbol: string): Promise<S | null> {
    if (this.flushing !== null) await this.flushing.catch(() => undefined);
    try {
      const raw = await this.guard(() => this.redis.getBuffer(this.stateKey(symbol)));
      if (raw === null) return null;
      // '{': a JSON state written before states went binary.
      return (raw[0] === 0x7b ? JSON.parse(raw.toString('utf8')) : deserialize(raw)) as S;
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
   * Counts one more attempt at processing the message `id` after its worker died (the message came
   * back redelivered) and returns the count; {@link clearAttempts} forgets it once processing
   * returned. A message that keeps killing its worker is thus recognised after a restart.
   */
  async countAttempt(id: string): Promise<number> {
    const key = this.attemptKey(id);
    try {
      const replies = await this.guard(() => this.redis.multi().incr(key).expire(key, 86_400).exec());
      const first = replies?.[0];
      if (first === undefined) throw new Error('transaction aborted');
      if (first[0] !== null) throw first[0];
      return Number(first[1]);
    } catch (err) {
      throw new StateStoreError(`cannot count the attempts at ${id}`, { cause: err });
    }
  }

  /** Forgets the attempts counted by {@link countAttempt}. */
  async clearAttempts(id: string): Promise<void> {
    try {
      await this.guard(() => this.redis.del(this.attemptKey(id)));
    } catch (err) {
      throw new StateStoreError(`cannot clear the attempts at ${id}`, { cause: err });
    }
  }

  /**
   * Records `state` as the symbol's state after the bars `bars.ts` (one, or a run of a replay
   * batch: their dedupe marks, the state of the last) and resolves once it is durable (in a group
   * commit, see the class comment). Callers commit a symbol's bars in bar order.
   */
  commit(symbol: string, state: S, bars: { timeframeMs: number; ts: readonly number[] }): Promise<void> {
    const marks = bars.ts.map((ts): [string, number] => {
      const { key, bit } = this.seenKey(symbol, bars.timeframeMs, ts);
      return [key, bit];
    });
    return new Promise<void>((resolve, reject) => {
      const entry = this.dirty.get(symbol);
      if (entry === undefined) {
        this.dirty.set(symbol, { state, marks, waiters: [{ resolve, reject }], failures: 0, notBefore: 0 });
      } else {
        entry.state = state;
        entry.marks.push(...marks);
        entry.waiters.push({ resolve, reject });
      }
      this.schedule(0);
    });
  }

  /** Drops every state not yet written; their commits fail with {@link CommitSupersededError}. */
  discardPending(): void {
    const dropped = this.dirty;
    this.dirty = new Map();
    const err = new CommitSupersededError();
    for (const entry of dropped.values()) for (const w of entry.waiters) w.reject(err);
  }

  private schedule(delayMs: number): void {
    if (this.flushing !== null) return; // the running flush schedules the next one
    if (delayMs <= 0) {
      if (this.scheduled) return;
      this.scheduled = true;
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      // setImmediate, not a microtask: the bars of one burst of deliveries join one transaction.
      setImmediate(() => {
        this.scheduled = false;
        this.startFlush();
      });
      return;
    }
    if (this.timer !== null || this.scheduled) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.startFlush();
    }, delayMs);
    this.timer.unref();
  }

  private startFlush(): void {
    if (this.flushing !== null || this.dirty.size === 0) return;
    const now = Date.now();
    const batch = new Map<string, Dirty>();
    let nextDue = Infinity;
    for (const [symbol, entry] of this.dirty) {
      if (entry.notBefore > now) {
        nextDue = Math.min(nextDue, entry.notBefore);
        continue;
      }
      this.dirty.delete(symbol);
      try {
        this.options.faultCheck?.(`state:${symbol}`);
        batch.set(symbol, entry);
      } catch (err) {
        this.putBack(symbol, entry, err);
        nextDue = Math.min(nextDue, this.dirty.get(symbol)?.notBefore ?? now);
      }
    }
    if (batch.size === 0) {
      if (nextDue !== Infinity) this.schedule(Math.max(1, nextDue - Date.now()));
      return;
    }
    this.flushing = this.write(batch).finally(() => {
      this.flushing = null;
      if (this.dirty.size > 0) {
        let due = Infinity;
        for (const entry of this.dirty.values()) due = Math.min(due, entry.notBefore);
        this.schedule(due - Date.now());
      }
    });
  }

  /**
   * Writes a batch: one MULTI/EXEC on a single Redis; on a Redis Cluster one per hash slot (a MULTI
   * may only touch one slot; a symbol's keys share its slot), run together. A group that fails goes
   * back on its own; the others count as written.
   */
  private async write(batch: Map<string, Dirty>): Promise<void> {
    const groups: Map<string, Dirty>[] = [];
    if (this.redis.isCluster) {
      const bySlot = new Map<number, Map<string, Dirty>>();
      for (const [symbol, entry] of batch) {
        const slot = keySlot(this.stateKey(symbol));
        let group = bySlot.get(slot);
        if (group === undefined) bySlot.set(slot, (group = new Map<string, Dirty>()));
        group.set(symbol, entry);
      }
      groups.push(...bySlot.values());
    } else {
      groups.push(batch);
    }
    await Promise.all(groups.map((group) => this.writeGroup(group)));
  }

  private async writeGroup(batch: Map<string, Dirty>): Promise<void> {
    const multi = this.redis.multi();
    for (const [symbol, entry] of batch) {
      multi.set(this.stateKey(symbol), serialize(entry.state));
      for (const [key, bit] of entry.marks) multi.setbit(key, bit, 1);
    }
    try {
      const replies = await this.guard(() => multi.exec());
      if (replies === null) throw new StateStoreError('group commit was aborted');
      const failed = replies.find(([e]) => e !== null);
      if (failed !== undefined) throw new StateStoreError('group commit failed', { cause: failed[0] });
    } catch (err) {
      const wrapped = err instanceof StateStoreError ? err : new StateStoreError(`cannot commit ${this.options.stage} state`, { cause: err });
      for (const [symbol, entry] of batch) this.putBack(symbol, entry, wrapped);
      return;
    }
    for (const entry of batch.values()) for (const w of entry.waiters) w.resolve();
  }

  /** A failed entry goes back to the dirty set (merged under any newer state) to be tried later. */
  private putBack(symbol: string, entry: Dirty, err: unknown): void {
    const failures = entry.failures + 1;
    const delay = this.retryBackoff.delayMs(failures);
    if (failures === 1 || failures % 10 === 0) {
      this.options.log?.warn({ symbol, failures, delayMs: delay, err: (err as Error).message }, 'state commit failed; trying again');
    }
    const newer = this.dirty.get(symbol);
    if (newer === undefined) {
      this.dirty.set(symbol, { ...entry, failures, notBefore: Date.now() + delay });
    } else {
      // The newer snapshot already includes this entry's bars; keep its state, add the marks.
      newer.marks = [...entry.marks, ...newer.marks];
      newer.waiters = [...entry.waiters, ...newer.waiters];
      newer.failures = failures;
      newer.notBefore = Date.now() + delay;
    }
  }
}
