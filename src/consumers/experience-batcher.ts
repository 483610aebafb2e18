import { deflateRaw } from 'node:zlib';
import { EXPERIENCE_FRAME_CONTENT_TYPE, encodeExperienceFrame } from '../../schemas/experience-frame';
import { EXPERIENCE_BATCH_CONTENT_TYPE, type ExperienceBatch } from '../../schemas/experience.schema';
import type { Publisher } from '../broker/publisher';
import { EXCHANGE_INTERNAL, messageIds, routingKeys } from '../broker/topology';
import type { ExperienceTransition } from '../flows/agent-stage';

/** Options of {@link ExperienceBatcher}. */
export interface ExperienceBatcherOptions {
  /** Transitions per message at most. @defaultValue 256 */
  maxBatch?: number;
  /** How long a transition waits for others at most when the batcher is not idle. @defaultValue 10 */
  maxDelayMs?: number;
  /**
   * Wire format: `frame`, the binary experience frame (content type
   * `application/vnd.pipeline.experience-frame`, schemas/experience-frame.ts), or `json`, the
   * JSON batch compressed with raw DEFLATE, for a trainer older than the frame. @defaultValue 'frame'
   */
  format?: 'frame' | 'json';
}

/** Content encoding of the batches: raw DEFLATE (RFC 1951) of the JSON body. */
export const EXPERIENCE_BATCH_CONTENT_ENCODING = 'deflate';

/**
 * Sends experience to the trainer in batches: transitions added within `maxDelayMs` (or up to
 * `maxBatch` of them) leave as one message on `pipeline.internal` (`experience.batch`), a binary
 * experience frame (412 bytes a transition plus the symbol table, float32 observations, no
 * `global_state`: the trainer rebuilds it), encoded on the event loop in about a microsecond a
 * transition. The JSON batch it replaces cost the tactical worker tens of microseconds a transition
 * to build, serialise and DEFLATE (BENCHMARKS.md, experience frame); `format: 'json'` still sends
 * it, compressed (content encoding `deflate`, level 1, on libuv's thread pool). `add()`
 * resolves on the broker's confirm of the message holding the transition; the bar that produced it
 * is acknowledged only after that, so a transition is never lost, and a re-send after a crash is
 * dropped by the trainer by the transition's id. Emits nothing.
 *
 * When to send (no timer on the path of a bar at low load, few messages under load): a transition
 * that finds the batcher idle (no batch awaiting its confirm, none sent in the last `maxDelayMs`)
 * leaves at once, with whatever else was added in the same turn of the event loop (setImmediate);
 * otherwise transitions gather for `maxDelayMs`, or until `maxBatch` are waiting. Sending every
 * transition at once under load cost the tactical worker a message, a compression and a publish per
 * bar instead of per ~4 bars at 400 bars/s, which measured slower than the timer.
 */
export class ExperienceBatcher {
  private batch: { transition: ExperienceTransition; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  /** Batches being compressed or awaiting their confirm. */
  private inFlight = 0;
  private lastFlushAt = -Infinity;
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly format: 'frame' | 'json';

  constructor(
    private readonly publisher: Publisher,
    options: ExperienceBatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 256;
    this.maxDelayMs = options.maxDelayMs ?? 10;
    this.format = options.format ?? 'frame';
  }

  /** Queues one or more transitions (a bar's, a replay batch's); resolves when the batches holding them are confirmed. */
  add(...transitions: ExperienceTransition[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let left = transitions.length;
      const one = (): void => {
        if (--left === 0) resolve();
      };
      for (const transition of transitions) this.batch.push({ transition, resolve: one, reject });
      while (this.batch.length >= this.maxBatch) this.flush();
      if (this.batch.length === 0 || this.immediate !== null) return;
      if (this.timer === null && this.inFlight === 0 && performance.now() - this.lastFlushAt >= this.maxDelayMs) {
        this.immediate = setImmediate(() => this.flush());
      } else if (this.timer === null) {
        this.timer = setTimeout(() => this.flush(), this.maxDelayMs);
        this.timer.unref();
      }
    });
  }

  /** Sends what is queued now. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    const batch = this.batch.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    this.lastFlushAt = performance.now();
    this.inFlight++;
    const settled = (): void => {
      this.inFlight--;
    };
    const first = batch[0]!.transition;
    const messageId = messageIds.experienceBatch(first.symbol, first.ts, batch.length);
    const send = (content: Buffer, contentType: string, contentEncoding?: string): void => {
      this.publisher
        .publish(EXCHANGE_INTERNAL, routingKeys.experience('batch'), content, {
          messageId,
          contentType,
          ...(contentEncoding === undefined ? {} : { contentEncoding }),
          mandatory: true,
        })
        .then(
          () => batch.forEach((b) => b.resolve()),
          (err: unknown) => batch.forEach((b) => b.reject(err)),
        )
        .finally(settled);
    };
    if (this.format === 'frame') {
      let frame: Buffer;
      try {
        frame = encodeExperienceFrame(batch.map((b) => b.transition));
      } catch (err) {
        batch.forEach((b) => b.reject(err));
        settled();
        return;
      }
      send(frame, EXPERIENCE_FRAME_CONTENT_TYPE);
      return;
    }
    const body: ExperienceBatch = { v: 1, transitions: batch.map((b) => b.transition) };
    deflateRaw(Buffer.from(JSON.stringify(body)), { level: 1 }, (zipErr, content) => {
      if (zipErr !== null) {
        batch.forEach((b) => b.reject(zipErr));
        settled();
        return;
      }
      send(content, EXPERIENCE_BATCH_CONTENT_TYPE, EXPERIENCE_BATCH_CONTENT_ENCODING);
    });
  }
}
