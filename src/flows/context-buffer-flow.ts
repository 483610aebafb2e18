import { symbolKeyPart } from '../state/keys';
import type Redis from 'ioredis';
import type { StrategicContext } from '../../schemas/strategic-context.schema';
import { PipelineError, StateStoreError } from '../errors';
import { periodsAfter, staleContext } from '../util/periods';

/** The buffer is closing: the bar is not decided now and the broker delivers it again later. */
export class ContextBufferClosedError extends PipelineError {
  constructor() {
    super('CONTEXT_BUFFER_CLOSED', 'context buffer closed while the bar waited for its context', true);
  }
}

/**
 * The bar's wait was abandoned because the delivery it serves is gone (its channel closed): the
 * broker delivers the bar again, and that delivery waits afresh. Not a timeout: nothing is recorded.
 */
export class WaitAbandonedError extends PipelineError {
  constructor() {
    super('WAIT_ABANDONED', 'the delivery waiting for its context is gone (channel lost); it is delivered again', true);
  }
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** What the buffer gives a bar: the context to use, and whether it is an older one than required. */
export interface ContextLookup {
  context: StrategicContext | null;
  stale: boolean;
}

/** What a {@link TimeKeyedBufferFlow} gives: the item to use, and whether it is older than required. */
export interface TimedLookup<T> {
  item: T | null;
  stale: boolean;
}

/** Options of {@link TimeKeyedBufferFlow}. */
export interface TimeKeyedBufferFlowOptions<T> extends ContextBufferFlowOptions {
  /** Redis hash name: `<prefix><name>:<symbol>`. */
  name: string;
  /** The time an item is keyed by (a 30m close time). */
  keyOf: (item: T) => number;
  symbolOf: (item: T) => string;
}

/** Options of {@link ContextBufferFlow}. */
export interface ContextBufferFlowOptions {
  redis: Redis;
  /** Redis key prefix. */
  prefix: string;
  /** How long a bar waits for the context it needs; 0 waits without bound. */
  contextWaitMs: number;
  /** Circuit breaker around every Redis call. @defaultValue none */
  guard?: <T>(call: () => Promise<T>) => Promise<T>;
  /**
   * 30m periods of contexts kept behind the newest one a bar has used (older ones are trimmed from
   * memory and Redis). Must exceed how far back a redelivery can go (prefetch / 6). @defaultValue 512
   */
  keepPerSymbol?: number;
}

interface SymbolContexts<T> {
  byClose: Map<number, T>;
  waiters: Map<number, (() => void)[]>;
  /** Required contexts whose wait ran out (later bars do not wait for them again). */
  timedOut: Set<number>;
  /** Resolves once the symbol's stored contexts have been merged in from Redis. */
  loaded: Promise<void> | null;
  /** True once they have been. */
  merged: boolean;
  /** The required close of the last trim pass (passes run every {@link TRIM_BATCH} periods, not every bar). */
  trimmedAt: number;
}

/** Periods between two trim passes, and the fewest old contexts a pass deletes. */
const TRIM_BATCH = 32;

/**
 * A buffer of per-symbol items keyed by a 30m close time, which ordered work waits for: the
 * strategic contexts of the tactical worker ({@link ContextBufferFlow}) and the feedback windows of
 * the strategic worker. Described here for contexts: they arrive on their own queue and are stored in
 * Redis (hash `<prefix>ctx:<symbol>`, field = the 30m bar's close time) before they are acked, so a
 * restarted tactical worker finds them. A 5m bar asks for the context of the latest 30m bar that
 * closed at or before its own close (`requiredContextClose` in src/util/periods.ts decides which,
 * from the bars alone) and waits for it, up to `contextWaitMs`; past that it gets the newest older context, marked stale.
 * Which context a bar uses therefore depends only on the bars, never on how the two queues
 * interleave, unless a wait runs out.
 */
export class TimeKeyedBufferFlow<T> {
  private readonly symbols = new Map<string, SymbolContexts<T>>();
  private readonly keep: number;
  private closed = false;

  constructor(private readonly options: TimeKeyedBufferFlowOptions<T>) {
    this.keep = options.keepPerSymbol ?? 512;
  }

  private guarded<R>(call: () => Promise<R>): Promise<R> {
    return this.options.guard === undefined ? call() : this.options.guard(call);
  }

  private key(symbol: string): string {
    return `${this.options.prefix}${this.options.name}:${symbolKeyPart(this.options.redis, symbol)}`;
  }

  private entry(symbol: string): SymbolContexts<T> {
    let entry = this.symbols.get(symbol);
    if (entry === undefined) {
      entry = { byClose: new Map(), waiters: new Map(), timedOut: new Set(), loaded: null, merged: false, trimmedAt: -Infinity };
      this.symbols.set(symbol, entry);
    }
    return entry;
  }

  /** Merges the contexts stored in Redis into memory, once per symbol (again after a failure). */
  private async ensureLoaded(symbol: string, entry: SymbolContexts<T>): Promise<void> {
    if (entry.loaded === null) {
      entry.loaded = (async () => {
        let raw: Record<string, string>;
        try {
          raw = await this.guarded(() => this.options.redis.hgetall(this.key(symbol)));
        } catch (err) {
          entry.loaded = null;
          throw new StateStoreError(`cannot load strategic contexts of ${symbol}`, { cause: err });
        }
        for (const [field, json] of Object.entries(raw)) {
          const closeTs = Number(field);
          if (!entry.byClose.has(closeTs)) entry.byClose.set(closeTs, JSON.parse(json) as T);
        }
        entry.merged = true;
      })();
    }
    return entry.loaded;
  }

  /**
   * Wakes the bars waiting for an item, then stores it durably; resolves once it is in Redis (the
   * message carrying it is acked only then). Waking first saves a Redis round trip on the path of
   * every bar that completes a 30m bar: a bar that used the item before the write landed is not
   * acked before it either (its commit comes later), and after a crash the item's message is
   * redelivered with the same content. Idempotent.
   */
  async put(item: T): Promise<void> {
    const symbol = this.options.symbolOf(item);
    const closeTs = this.options.keyOf(item);
    const entry = this.entry(symbol);
    entry.byClose.set(closeTs, item);
    const waiters = entry.waiters.get(closeTs);
    if (waiters !== undefined) {
      entry.waiters.delete(closeTs);
      for (const w of waiters) w();
    }
    try {
      await this.guarded(() => this.options.redis.hset(this.key(symbol), String(closeTs), JSON.stringify(item)));
    } catch (err) {
      throw new StateStoreError(`cannot store ${this.options.name} of ${symbol}`, { cause: err });
    }
  }

  /**
   * The context a bar needs: the one of the 30m bar closing at `requiredCloseTs`, waiting for it
   * (bounded); `null` required means there is no earlier 30m bar yet. `abandon` aborts when the
   * delivery of the bar is gone (its channel closed): the wait ends at once with
   * {@link WaitAbandonedError} and is not recorded as run out, so the redelivered bar waits again.
   * (Left waiting, the old delivery ran out its wait after a lost connection, its 30m bar having
   * been lost with the channel, and the period was recorded as timed out: the redelivered bar was
   * then decided at once with a stale context.)
   */
  async lookupItem(symbol: string, requiredCloseTs: number | null, abandon?: AbortSignal): Promise<TimedLookup<T>> {
    if (requiredCloseTs === null) return { item: null, stale: false };
    if (this.closed) throw new ContextBufferClosedError();
    if (isAborted(abandon)) throw new WaitAbandonedError();
    const entry = this.entry(symbol);
    await this.ensureLoaded(symbol, entry);
    const ready = this.ready(symbol, entry, requiredCloseTs);
    if (ready !== undefined) return ready;
    if (!entry.timedOut.has(requiredCloseTs)) {
      const arrived = await this.waitFor(entry, requiredCloseTs, abandon);
      if (this.closed) throw new ContextBufferClosedError();
      if (isAborted(abandon)) throw new WaitAbandonedError();
      const item = entry.byClose.get(requiredCloseTs);
      if (arrived && item !== undefined) return { item, stale: false };
      entry.timedOut.add(requiredCloseTs);
    }
    return { item: staleContext(entry.byClose, requiredCloseTs), stale: true };
  }

  /**
   * What {@link lookupItem} gives without waiting or loading: the item when it is in memory (or
   * none is required); undefined when the lookup would have to wait, load, throw or go stale.
   */
  lookupItemNow(symbol: string, requiredCloseTs: number | null, abandon?: AbortSignal): TimedLookup<T> | undefined {
    if (requiredCloseTs === null) return { item: null, stale: false };
    const entry = this.symbols.get(symbol);
    if (entry?.merged !== true || this.closed || isAborted(abandon)) return undefined;
    return this.ready(symbol, entry, requiredCloseTs);
  }

  private ready(symbol: string, entry: SymbolContexts<T>, requiredCloseTs: number): TimedLookup<T> | undefined {
    this.trim(symbol, entry, requiredCloseTs);
    const item = entry.byClose.get(requiredCloseTs);
    return item === undefined ? undefined : { item, stale: false };
  }

  /**
   * Drops contexts more than `keep` periods older than what the symbol's bars need now. The strategic
   * side may run far ahead of the tactical side, so trimming follows the bars, not the contexts.
   * The record of timed-out waits is trimmed by the same bound (a bar that old is never asked for
   * again), so neither grows with time: at most `keep` + 64 periods of each per symbol. A pass runs
   * once the bars have moved {@link TRIM_BATCH} periods on since the last one (a pass walks every
   * context of the symbol: every bar would be a walk of `keep` entries per bar).
   */
  private trim(symbol: string, entry: SymbolContexts<T>, requiredCloseTs: number): void {
    if (requiredCloseTs < periodsAfter(entry.trimmedAt, TRIM_BATCH)) return;
    entry.trimmedAt = requiredCloseTs;
    const below = periodsAfter(requiredCloseTs, -this.keep);
    if (entry.timedOut.size > 0) {
      const expired: number[] = [];
      for (const closeTs of entry.timedOut) if (closeTs < below) expired.push(closeTs);
      if (expired.length >= TRIM_BATCH) for (const closeTs of expired) entry.timedOut.delete(closeTs);
    }
    const old: number[] = [];
    for (const closeTs of entry.byClose.keys()) if (closeTs < below) old.push(closeTs);
    if (old.length < TRIM_BATCH) return; // trim in batches
    for (const closeTs of old) entry.byClose.delete(closeTs);
    // Best effort: a failed trim only leaves old fields behind for the next one.
    this.options.redis.hdel(this.key(symbol), ...old.map(String)).catch(() => undefined);
  }

  private waitFor(entry: SymbolContexts<T>, closeTs: number, abandon?: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const unlist = (): void => {
        const current = entry.waiters.get(closeTs);
        if (current !== undefined) {
          const i = current.indexOf(waiter);
          if (i >= 0) current.splice(i, 1);
          if (current.length === 0) entry.waiters.delete(closeTs); // no empty list per ended wait
        }
      };
      const end = (arrived: boolean): void => {
        if (timer !== null) clearTimeout(timer);
        abandon?.removeEventListener('abort', onAbandon);
        resolve(arrived);
      };
      const waiter = (): void => end(true);
      const onAbandon = (): void => {
        unlist();
        end(false);
      };
      const list = entry.waiters.get(closeTs) ?? [];
      list.push(waiter);
      entry.waiters.set(closeTs, list);
      abandon?.addEventListener('abort', onAbandon, { once: true });
      if (this.options.contextWaitMs > 0) {
        timer = setTimeout(() => {
          unlist();
          end(false);
        }, this.options.contextWaitMs);
        timer.unref();
      }
    });
  }

  /**
   * How much the buffer holds for a symbol (for tests and diagnostics): items in memory, periods
   * whose wait ran out, and periods bars are waiting for now. Each is bounded, not growing with time.
   */
  held(symbol: string): { items: number; timedOut: number; waitedFor: number } {
    const entry = this.symbols.get(symbol);
    return { items: entry?.byClose.size ?? 0, timedOut: entry?.timedOut.size ?? 0, waitedFor: entry?.waiters.size ?? 0 };
  }

  /** Fails every waiting bar with {@link ContextBufferClosedError} (shutdown: they are redelivered). */
  close(): void {
    this.closed = true;
    for (const entry of this.symbols.values()) {
      for (const list of entry.waiters.values()) for (const w of list) w();
      entry.waiters.clear();
    }
  }
}

/** The strategic → tactical context buffer (see {@link TimeKeyedBufferFlow}). */
export class ContextBufferFlow extends TimeKeyedBufferFlow<StrategicContext> {
  constructor(options: ContextBufferFlowOptions) {
    super({ ...options, name: 'ctx', keyOf: (c) => c.bar_close_ts, symbolOf: (c) => c.symbol });
  }

  /** The context a bar needs (see {@link TimeKeyedBufferFlow.lookupItem}). */
  async lookup(symbol: string, requiredCloseTs: number | null, abandon?: AbortSignal): Promise<ContextLookup> {
    const { item, stale } = await this.lookupItem(symbol, requiredCloseTs, abandon);
    return { context: item, stale };
  }

  /** {@link lookup} when it needs no wait (see {@link TimeKeyedBufferFlow.lookupItemNow}); undefined otherwise. */
  lookupNow(symbol: string, requiredCloseTs: number | null, abandon?: AbortSignal): ContextLookup | undefined {
    const found = this.lookupItemNow(symbol, requiredCloseTs, abandon);
    return found === undefined ? undefined : { context: found.item, stale: false };
  }
}
