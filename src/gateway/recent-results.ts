import type { IntegratedResult } from '../../schemas/integrated-result.schema';

/** Options of {@link RecentResults}. */
export interface RecentResultsOptions {
  /** Results kept per symbol. @defaultValue 1000 */
  perSymbol: number;
  /** Symbols kept; past it the least recently updated one is dropped. @defaultValue 10000 */
  maxSymbols: number;
}

/** One result as received: the parsed body and its exact text. */
export interface StoredResult {
  result: IntegratedResult;
  /** The message body exactly as published (what /api/results and /ws send). */
  text: string;
}

/** Called for every result accepted, in `ts` order per symbol. */
export type ResultListener = (stored: StoredResult) => void;

class Ring {
  readonly items: (StoredResult | undefined)[];
  start = 0;
  size = 0;
  lastTs = -Infinity;

  constructor(capacity: number) {
    this.items = new Array<StoredResult | undefined>(capacity);
  }

  push(item: StoredResult): void {
    const capacity = this.items.length;
    if (this.size < capacity) {
      this.items[(this.start + this.size) % capacity] = item;
      this.size++;
    } else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % capacity;
    }
  }

  latest(n: number): StoredResult[] {
    const count = Math.min(n, this.size);
    const out: StoredResult[] = [];
    for (let i = this.size - count; i < this.size; i++) out.push(this.items[(this.start + i) % this.items.length] as StoredResult);
    return out;
  }
}

/**
 * The gateway's bounded memory of recent integrated results: a ring of `perSymbol` results per
 * symbol, at most `maxSymbols` symbols (least recently updated dropped first), so memory is bounded
 * whatever the feed. Results of a symbol are kept and announced in strictly increasing `ts`: a result
 * whose `ts` is not after the symbol's last one (a redelivered duplicate: the wire contract allows the same
 * result twice) is dropped. Emits nothing; listeners registered with {@link subscribe} are called
 * synchronously for each accepted result.
 */
export class RecentResults {
  private readonly symbols = new Map<string, Ring>();
  private readonly listeners = new Set<ResultListener>();
  /** Results accepted since start. */
  accepted = 0;
  /** Results dropped as duplicates or out of order. */
  dropped = 0;

  constructor(private readonly options: RecentResultsOptions) {
    for (const [name, v] of Object.entries(options)) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${String(v)}`);
    }
  }

  /** Adds a result; returns false when it was dropped (not after the symbol's last `ts`). */
  add(stored: StoredResult): boolean {
    const symbol = stored.result.symbol;
    let ring = this.symbols.get(symbol);
    if (ring !== undefined && stored.result.ts <= ring.lastTs) {
      this.dropped++;
      return false;
    }
    if (ring === undefined) {
      ring = new Ring(this.options.perSymbol);
      if (this.symbols.size >= this.options.maxSymbols) {
        const oldest = this.symbols.keys().next().value;
        if (oldest !== undefined) this.symbols.delete(oldest);
      }
    } else {
      this.symbols.delete(symbol); // re-insert: the Map's order is the update order
    }
    this.symbols.set(symbol, ring);
    ring.lastTs = stored.result.ts;
    ring.push(stored);
    this.accepted++;
    for (const listener of this.listeners) listener(stored);
    return true;
  }

  /** The latest `limit` results of `symbol`, oldest first. */
  latest(symbol: string, limit: number): StoredResult[] {
    return this.symbols.get(symbol)?.latest(limit) ?? [];
  }

  /** Symbols held, most recently updated last. */
  symbolList(): string[] {
    return [...this.symbols.keys()];
  }

  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: ResultListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
