import type Redis from 'ioredis';
import type { StrategicContext } from '../../schemas/strategic-context.schema';
import { PipelineError, StateStoreError } from '../errors';

/** The buffer is closing: the bar is not decided now and the broker delivers it again later. */
export class ContextBufferClosedError extends PipelineError {
  constructor() {
    super('CONTEXT_BUFFER_CLOSED', 'context buffer closed while the bar waited for its context', true);
  }
}

/** What the buffer gives a bar: the context to use, and whether it is an older one than required. */
export interface ContextLookup {
  context: StrategicContext | null;
  stale: boolean;
}

/** Options of {@link ContextBufferFlow}. */
export interface ContextBufferFlowOptions {
  redis: Redis;
  /** Redis key prefix. */
  prefix: string;
  /** How long a bar waits for the context it needs; 0 waits without bound. */
  contextWaitMs: number;
  /** Contexts kept per symbol (older ones are trimmed). @defaultValue 64 */
  keepPerSymbol?: number;
}

interface SymbolContexts {
  byClose: Map<number, StrategicContext>;
  waiters: Map<number, (() => void)[]>;
  /** Required contexts whose wait ran out (later bars do not wait for them again). */
  timedOut: Set<number>;
}

/**
 * The strategic → tactical context buffer. Contexts arrive on their own queue and are stored in
 * Redis (hash `<prefix>ctx:<symbol>`, field = the 30m bar's close time) before they are acked, so a
 * restarted tactical worker finds them. A 5m bar asks for the context of the latest 30m bar that
 * closed at or before its own close ({@link requiredContextClose} decides which, from the bars alone)
 * and waits for it, up to `contextWaitMs`; past that it gets the newest older context, marked stale.
 * Which context a bar uses therefore depends only on the bars, never on how the two queues
 * interleave, unless a wait runs out.
 */
export class ContextBufferFlow {
  private readonly symbols = new Map<string, SymbolContexts>();
  private readonly loading = new Map<string, Promise<SymbolContexts>>();
  private readonly keep: number;
  private closed = false;

  constructor(private readonly options: ContextBufferFlowOptions) {
    this.keep = options.keepPerSymbol ?? 64;
  }

  private key(symbol: string): string {
    return `${this.options.prefix}ctx:${symbol}`;
  }

  private async symbolContexts(symbol: string): Promise<SymbolContexts> {
    const known = this.symbols.get(symbol);
    if (known !== undefined) return known;
    let loading = this.loading.get(symbol);
    if (loading === undefined) {
      loading = (async () => {
        let raw: Record<string, string>;
        try {
          raw = await this.options.redis.hgetall(this.key(symbol));
        } catch (err) {
          throw new StateStoreError(`cannot load strategic contexts of ${symbol}`, { cause: err });
        }
        const entry: SymbolContexts = this.symbols.get(symbol) ?? {
          byClose: new Map(),
          waiters: new Map(),
          timedOut: new Set(),
        };
        for (const [field, json] of Object.entries(raw)) {
          if (!entry.byClose.has(Number(field))) entry.byClose.set(Number(field), JSON.parse(json) as StrategicContext);
        }
        this.symbols.set(symbol, entry);
        this.loading.delete(symbol);
        return entry;
      })();
      this.loading.set(symbol, loading);
      loading.catch(() => this.loading.delete(symbol));
    }
    return loading;
  }

  /** Stores a context durably, then wakes the bars waiting for it. Idempotent. */
  async put(context: StrategicContext): Promise<void> {
    const key = this.key(context.symbol);
    const trimBelow = context.bar_close_ts - this.keep * 1_800_000;
    try {
      await this.options.redis.hset(key, String(context.bar_close_ts), JSON.stringify(context));
      const fields = await this.options.redis.hkeys(key);
      const old = fields.filter((f) => Number(f) < trimBelow);
      if (old.length > 0) await this.options.redis.hdel(key, ...old);
    } catch (err) {
      throw new StateStoreError(`cannot store strategic context of ${context.symbol}`, { cause: err });
    }
    const entry = this.symbols.get(context.symbol);
    if (entry === undefined) return; // loaded from Redis on the symbol's first bar
    entry.byClose.set(context.bar_close_ts, context);
    for (const closeTs of entry.byClose.keys()) if (closeTs < trimBelow) entry.byClose.delete(closeTs);
    const waiters = entry.waiters.get(context.bar_close_ts);
    if (waiters !== undefined) {
      entry.waiters.delete(context.bar_close_ts);
      for (const w of waiters) w();
    }
  }

  /**
   * The context a bar needs: the one of the 30m bar closing at `requiredCloseTs`, waiting for it
   * (bounded); `null` required means there is no earlier 30m bar yet.
   */
  async lookup(symbol: string, requiredCloseTs: number | null): Promise<ContextLookup> {
    if (requiredCloseTs === null) return { context: null, stale: false };
    const entry = await this.symbolContexts(symbol);
    const ready = entry.byClose.get(requiredCloseTs);
    if (ready !== undefined) return { context: ready, stale: false };
    if (!entry.timedOut.has(requiredCloseTs)) {
      const arrived = await this.waitFor(entry, requiredCloseTs);
      if (this.closed) throw new ContextBufferClosedError();
      const context = entry.byClose.get(requiredCloseTs);
      if (arrived && context !== undefined) return { context, stale: false };
      entry.timedOut.add(requiredCloseTs);
    }
    let best: StrategicContext | null = null;
    for (const [closeTs, ctx] of entry.byClose) {
      if (closeTs < requiredCloseTs && (best === null || closeTs > best.bar_close_ts)) best = ctx;
    }
    return { context: best, stale: true };
  }

  private waitFor(entry: SymbolContexts, closeTs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const waiter = (): void => {
        if (timer !== null) clearTimeout(timer);
        resolve(true);
      };
      const list = entry.waiters.get(closeTs) ?? [];
      list.push(waiter);
      entry.waiters.set(closeTs, list);
      if (this.options.contextWaitMs > 0) {
        timer = setTimeout(() => {
          const current = entry.waiters.get(closeTs);
          if (current !== undefined) {
            const i = current.indexOf(waiter);
            if (i >= 0) current.splice(i, 1);
          }
          resolve(false);
        }, this.options.contextWaitMs);
        timer.unref();
      }
    });
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

/**
 * Which 30m context the 5m bar opening at `ts` must use: the latest 30m period with data that closes
 * at or before the bar's close. `previousTs` is the symbol's previous accepted 5m bar and
 * `previousRequired` what it used. Pure: it depends on the accepted bars only.
 */
export function requiredContextClose(
  ts: number,
  previousTs: number | null,
  previousRequired: number | null,
): number | null {
  const period = 1_800_000;
  const barClose = ts + 300_000;
  if (barClose % period === 0) return barClose; // this bar completes its 30m bar
  if (previousTs === null) return null;
  const previousPeriodClose = Math.floor(previousTs / period) * period + period;
  if (previousPeriodClose <= barClose && previousPeriodClose !== Math.floor(ts / period) * period + period) {
    return previousPeriodClose;
  }
  return previousRequired;
}
