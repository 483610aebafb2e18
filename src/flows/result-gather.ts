import type { IntegratedResult } from '../../schemas/integrated-result.schema';
import type { ResultBatch } from '../../schemas/result-batch.schema';

/**
 * The results of one bar batch that asked for them batched (a private replay): gathered as its bars
 * are computed, then sent as one message once all are, by one send-until-confirmed for the whole
 * batch. Each bar's result waits for {@link confirmed} before its state is committed; none of them
 * sends anything itself, so a failed publish goes out again once, not once per bar, and only one
 * publish of the batch's messageId is in flight at a time.
 */
export class ResultGather {
  private readonly results = new Map<number, IntegratedResult>();
  private release: (sent: Promise<void>) => void = () => undefined;
  /** Resolves once the batch is confirmed; rejects once its sender gives up. */
  readonly confirmed: Promise<void>;

  constructor() {
    this.confirmed = new Promise<Promise<void>>((resolve) => (this.release = resolve)).then((sent) => sent);
    this.confirmed.catch(() => undefined); // awaited by the bars' commits
  }

  /** Adds the result of one bar of the batch. */
  add(result: IntegratedResult): void {
    this.results.set(result.ts, result);
  }

  /**
   * Once every bar of the batch was computed (or failed): `sendUntilConfirmed` gets the message
   * body and must send it until confirmed (or give up); {@link confirmed} follows it.
   */
  send(sendUntilConfirmed: (body: Buffer) => Promise<void>): void {
    const batch: ResultBatch = { v: 1, results: [...this.results.values()] };
    this.release(sendUntilConfirmed(Buffer.from(JSON.stringify(batch))));
  }
}
