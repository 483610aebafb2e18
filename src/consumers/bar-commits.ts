import type { SymbolStateStore } from '../state/symbol-state-store';

/**
 * A message a bar stage asks to have published for one bar: the commit publishes it and sends it
 * again until the broker confirms it.
 */
export interface Emission {
  exchange: string;
  routingKey: string;
  body: unknown;
  messageId: string;
  /** Reject the publish when no queue is bound. */
  mandatory?: boolean;
  headers?: Record<string, unknown>;
  /** The queue an answer to this message must go to. */
  replyTo?: string;
}

/**
 * A write the stage started itself for one bar, which the commit must see confirmed: a message it
 * published early (a 30m bar while its 5m bar waits for the context, a batch's results, an
 * experience batch) or a disk write (the pattern store). `confirmed` is its first try. `again`
 * tries it once more after a failure and the commit keeps calling it until one is confirmed;
 * without `again`, its owner retries it itself and a failure of `confirmed` is final.
 */
export interface Confirmation {
  /** What it is, for the logs (a messageId). */
  what: string;
  confirmed: Promise<void>;
  again?: () => Promise<void>;
}

/** What a stage computed for one bar. */
export interface StageOutput<S> {
  state: S;
  /** Messages for the commit to publish. */
  emissions: Emission[];
  /** Writes the stage started that the commit must see confirmed. @defaultValue none */
  confirmations?: Confirmation[];
}

/**
 * The commit protocol of the bar stages, in one place: what must be confirmed before a bar's
 * message is acknowledged. For each bar, in order:
 *
 * 1. **computed**: the stage returned the next state, its {@link Emission}s and its {@link Confirmation}s;
 * 2. **confirmed**: every emission is confirmed by the broker (sent again until it is) and every
 *    confirmation is confirmed (tried `again` until it is);
 * 3. **handed over**: the previous bar of the same symbol was handed over, so a symbol's states
 *    reach the store in bar order (bars of other symbols never wait);
 * 4. **committed**: the state and the bar's dedupe mark are written by the store's group commit;
 * 5. **acked**: the consumer acknowledges the message (a batch once every bar of it committed).
 *
 * Outputs before state: a worker that dies between 2 and 4 sends identical outputs again when the
 * bar is redelivered, and never loses one. The next bar of the symbol is computed while this one
 * waits (the commit is pipelined), and a duplicate arriving meanwhile is recognised by
 * {@link isPending}. One instance serves one state generation: when the channel is lost the
 * consumer drops it ({@link BarStageConsumer} makes a new one), every commit not yet handed over
 * ends with `superseded`, nothing of it is acked, and the broker redelivers.
 */
export class BarCommits<S> {
  /** Bars computed but not yet committed, per symbol. */
  private readonly pending = new Map<string, Set<number>>();
  /** Per symbol: resolves when the previous bar's state has been handed to the store, rejects if it never will be. */
  private readonly handedOver = new Map<string, Promise<void>>();

  /**
   * @param isCurrent false once this generation ended (the handed-over step then fails with `superseded()`)
   * @param onFailed called with the symbol when a commit fails (its later bars must wait for the redelivery)
   */
  constructor(
    private readonly store: SymbolStateStore<S>,
    private readonly timeframeMs: number,
    private readonly isCurrent: () => boolean,
    private readonly superseded: () => Error,
    private readonly onFailed: (symbol: string) => void,
  ) {}

  /** True while the bar of `symbol` at `ts` is computed but not yet committed. */
  isPending(symbol: string, ts: number): boolean {
    return this.pending.get(symbol)?.has(ts) === true;
  }

  /**
   * Steps 3 and 4 for one computed bar, or a run of a replay batch's bars computed together (`ts`
   * in order, `state` the last one's), once `confirmed` (step 2: all their outputs) resolves.
   * Resolves when they are committed; the consumer acks then.
   */
  commit(symbol: string, ts: readonly number[], state: S, confirmed: Promise<void>): Promise<void> {
    let pendingSet = this.pending.get(symbol);
    if (pendingSet === undefined) {
      pendingSet = new Set();
      this.pending.set(symbol, pendingSet);
    }
    for (const t of ts) pendingSet.add(t);
    const previous = this.handedOver.get(symbol) ?? Promise.resolve();
    const handedOver = (async () => {
      await previous;
      await confirmed;
      if (!this.isCurrent()) throw this.superseded();
    })();
    const committed = handedOver.then(async () => {
      await this.store.commit(symbol, state, { timeframeMs: this.timeframeMs, ts });
      for (const t of ts) pendingSet.delete(t);
    });
    handedOver.catch(() => undefined); // the next bar of the symbol and `committed` observe it
    this.handedOver.set(symbol, handedOver);
    committed.catch(() => this.onFailed(symbol));
    return committed;
  }
}
