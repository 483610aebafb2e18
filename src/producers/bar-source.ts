import type { Bar } from '../../schemas/bar.schema';

/**
 * A live source of bars for `pipeline feed`: an exchange's market data turned into the wire
 * contract's bars. The feed publishes what {@link BarSource.bars} yields through the one
 * {@link BarProducer} every producer uses (confirms, `mandatory`, persistent, `messageId`), so a new
 * exchange is one class implementing this interface and nothing in the publishing changes.
 */
export interface BarSource {
  /** Name for logs and summaries, e.g. `binance`. */
  readonly name: string;
  /**
   * Closed bars only, each symbol's in `ts` order, none twice, until `signal` aborts: then the
   * iterable ends (it does not throw). A failure the source cannot recover from (a rejected symbol, a
   * wrong endpoint at start) rejects the iteration. Called once per source.
   */
  bars(signal: AbortSignal): AsyncIterable<Bar>;
}
