import { inflateRawSync } from 'node:zlib';
import type { ConsumeMessage } from 'amqplib';
import { decodeExperienceFrame, EXPERIENCE_FRAME_CONTENT_TYPE, ExperienceFrameError } from '../../schemas/experience-frame';
import { EXPERIENCE_BATCH_CONTENT_TYPE, ExperienceBatchSchema, ExperienceSchema } from '../../schemas/experience.schema';
import type { ModelUpdate } from '../../schemas/model-update.schema';
import { BaseConsumer, type BaseConsumerOptions, type HandleResult } from '../broker/base-consumer';
import type { BrokerConnection } from '../broker/broker-connection';
import type { Publisher } from '../broker/publisher';
import { EXCHANGE_INTERNAL, messageIds, routingKeys } from '../broker/topology';
import { BrokerConnectionError, ValidationError } from '../errors';
import type { ExperienceTransition } from '../flows/agent-stage';
import type { TrainerFlow, TrainOutcome } from '../flows/trainer-flow';
import { EXPERIENCE_BATCH_CONTENT_ENCODING } from './experience-batcher';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import { parseMessage } from './parse-message';

interface Buffered {
  id: string;
  experience: ExperienceTransition;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** How many batches' message ids are remembered to ack redeliveries of trained messages. */
const REMEMBERED_BATCHES = 4;

/**
 * Batches cut and not yet trained (one training, one waiting) past which deliveries are left
 * unparsed until the training one finishes. Bounds the parsed transitions held in memory to about
 * two batches whatever the prefetch window holds.
 */
const MAX_PENDING_BATCHES = 2;

interface Waiting {
  run: () => void;
  reject: (err: unknown) => void;
}

/** Options of {@link TrainerConsumer}. */
export interface TrainerConsumerOptions extends BaseConsumerOptions {
  /** Share of one core the trainer averages at most (duty cycle), in (0, 1]. @defaultValue 1 */
  cpuShare?: number;
}

/**
 * The trainer worker's consumer of `tactical_experience`. Each message, one transition
 * (`ExperienceSchema`, JSON), a JSON batch of them (`ExperienceBatchSchema`, content type
 * `application/vnd.pipeline.experience-batch+json`, maybe DEFLATE-encoded) or a binary experience
 * frame (content type `application/vnd.pipeline.experience-frame`, schemas/experience-frame.ts, as
 * the tactical workers send it), is validated (a bad one, or a frame of an unknown version, is
 * dead-lettered with the reason) and its transitions buffered, the message unacknowledged; when `batchSize`
 * transitions are buffered the batch is handed to the {@link TrainerFlow}, and the batch's messages
 * are acknowledged only once the candidate version is saved (and, when it was promoted, the
 * announcement, `models.promoted` on `pipeline.internal`, is confirmed): a message's effect is durable before its ack.
 * Batches train one at a time. A failed batch fails each of its messages the BaseConsumer way:
 * retried (redelivered) when retriable, dead-lettered with the reason otherwise.
 *
 * The caller must set `prefetchCount` to at least the flow's `batchSize`, or a batch never fills.
 * Emits nothing itself (BaseConsumer's message events apply).
 */
export class TrainerConsumer extends BaseConsumer {
  private buffer: Buffered[] = [];
  private training: Promise<void> = Promise.resolve();
  /** Message ids of the batch being trained, with the promise their acks wait for. */
  private readonly inTraining = new Map<string, Promise<void>>();
  /** Ids of recently trained messages (a redelivery after a channel loss is acked, not trained twice). */
  private readonly trained: Set<string>[] = [];
  /** Batches handed to training and not finished yet. */
  private pendingBatches = 0;
  /** Deliveries not parsed yet because {@link MAX_PENDING_BATCHES} batches are pending, in delivery order. */
  private waiting: Waiting[] = [];

  /** Rest owed after the batch just trained (duty cycle), in ms. */
  private restMs = 0;
  /** Process CPU when the previous batch ended: the duty cycle counts from there (null before the first batch, which counts from its own start). */
  private cpuMark: NodeJS.CpuUsage | null = null;
  private readonly cpuShare: number;

  constructor(
    connection: BrokerConnection,
    publisher: Publisher,
    private readonly flow: TrainerFlow,
    options: TrainerConsumerOptions,
  ) {
    if (options.prefetchCount < flow.batchSize) {
      throw new RangeError(`prefetchCount (${options.prefetchCount}) must be at least the training batch size (${flow.batchSize})`);
    }
    super(connection, publisher, options);
    const share = options.cpuShare ?? 1;
    if (!(share > 0 && share <= 1)) throw new RangeError(`cpuShare must be in (0, 1], got ${share}`);
    this.cpuShare = share;
  }

  /** Messages buffered for the next batch. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** Deliveries held unparsed until training catches up (see {@link MAX_PENDING_BATCHES}). */
  get waitingMessages(): number {
    return this.waiting.length;
  }

  /** Batches handed to training and not finished yet (at most {@link MAX_PENDING_BATCHES}). */
  get pendingBatchCount(): number {
    return this.pendingBatches;
  }

  /**
   * Takes a delivery: parsed and buffered at once, or, while {@link MAX_PENDING_BATCHES} batches
   * wait for training, held as it came (its compressed body) and taken in delivery order once one
   * finishes. The prefetch window (in messages, each up to 256 transitions) would otherwise let
   * the trainer parse and queue batch after batch whenever it trains slower than the tactical
   * workers produce, holding tens of thousands of transitions as JS objects: the trainer's RSS
   * grew with the backlog (issue 12 part 4 soak).
   */
  protected handle(msg: ConsumeMessage): Promise<HandleResult> {
    if (this.pendingBatches < MAX_PENDING_BATCHES && this.waiting.length === 0) {
      try {
        return Promise.resolve(this.take(msg));
      } catch (err) {
        return Promise.reject(asError(err));
      }
    }
    return new Promise<HandleResult>((resolve, reject) =>
      this.waiting.push({
        run: () => {
          try {
            resolve(this.take(msg));
          } catch (err) {
            reject(asError(err));
          }
        },
        reject,
      }),
    );
  }

  /** Takes waiting deliveries, in order, while fewer than {@link MAX_PENDING_BATCHES} batches are pending. */
  private pump(): void {
    while (this.pendingBatches < MAX_PENDING_BATCHES && this.waiting.length > 0) (this.waiting.shift() as Waiting).run();
  }

  /** Fails the deliveries not taken yet (left unacknowledged: the broker redelivers them). */
  private releaseWaiting(err: unknown): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.reject(err);
  }

  private take(msg: ConsumeMessage): HandleResult {
    let transitions: ExperienceTransition[];
    // A lone JSON transition is known by its messageId (`<symbol>:experience:<ts>`); a transition of
    // a batch or frame by that same id built from its content, never by the batch's messageId (a
    // batch of one, what an idle batcher sends, would otherwise not match a re-send of its
    // transition in a larger batch).
    let single: string | null = null;
    const contentType: unknown = msg.properties.contentType;
    if (contentType === EXPERIENCE_FRAME_CONTENT_TYPE) {
      transitions = decodedFrame(inflated(msg, 'experience frames'));
    } else if (contentType === EXPERIENCE_BATCH_CONTENT_TYPE) {
      transitions = parseMessage(inflated(msg, 'experience batches as plain JSON'), ExperienceBatchSchema).transitions;
    } else {
      const experience = parseMessage(msg.content, ExperienceSchema) as ExperienceTransition;
      transitions = [experience];
      if (typeof msg.properties.messageId === 'string') single = msg.properties.messageId;
    }
    const waits: Promise<void>[] = [];
    for (const experience of transitions) {
      const id = single ?? `${experience.symbol}:experience:${experience.ts}`;
      if (this.trained.some((s) => s.has(id))) continue;
      const running = this.inTraining.get(id);
      if (running !== undefined) {
        waits.push(running);
        continue;
      }
      waits.push(new Promise<void>((resolve, reject) => this.buffer.push({ id, experience, resolve, reject })));
    }
    if (waits.length === 0) return { kind: 'done' };
    if (this.buffer.length >= this.flow.batchSize) {
      const batch = this.buffer;
      this.buffer = [];
      let finish: (err?: unknown) => void = () => undefined;
      const done = new Promise<void>((resolve, reject) => {
        finish = (err) => (err === undefined ? resolve() : reject(asError(err)));
      });
      done.catch(() => undefined); // awaited only by redeliveries of the batch's messages
      for (const b of batch) this.inTraining.set(b.id, done);
      this.pendingBatches++;
      pipelineEvents.emit(PipelineEvent.TrainerBatches, { pending: this.pendingBatches });
      // Chained: a batch trains only after the previous one has finished and rested.
      this.training = this.training.then(() => this.trainBatch(batch, finish)).then(() => this.rest());
    }
    return { kind: 'commit', committed: Promise.all(waits).then(() => undefined) };
  }

  private async trainBatch(batch: Buffered[], finish: (err?: unknown) => void): Promise<void> {
    let finished: 'promoted' | 'rejected' | 'failed' = 'failed';
    const cpuBefore = this.cpuMark ?? process.cpuUsage();
    try {
      const outcome = await this.flow.train(batch.map((b) => b.experience));
      finished = outcome.promoted ? 'promoted' : 'rejected';
      if (outcome.promoted) await this.announce(outcome);
      this.remember(batch.map((b) => b.id));
      finish();
      for (const b of batch) b.resolve();
    } catch (err) {
      this.log.error({ err, messages: batch.length }, 'training batch failed');
      finish(err);
      for (const b of batch) b.reject(err);
    } finally {
      for (const b of batch) this.inTraining.delete(b.id);
      this.pendingBatches--;
      pipelineEvents.emit(PipelineEvent.TrainerBatches, { pending: this.pendingBatches, finished });
      const now = process.cpuUsage();
      this.cpuMark = now;
      const usedMs = (now.user - cpuBefore.user + now.system - cpuBefore.system) / 1000;
      this.restMs = usedMs * (1 / this.cpuShare - 1);
      this.pump();
    }
  }

  /**
   * The duty cycle: after a batch that took C ms of CPU, the trainer rests C × (1 / share − 1) ms
   * before the next one, so that it averages at most `cpuShare` of a core whatever the machine's
   * load (its low priority alone still lets it take a whole idle core, and an idle core on a small
   * machine is the live path's headroom). C is the whole process's CPU (every thread) since the
   * previous batch ended: the inflating and parsing of the experience messages that filled the
   * batch (~5% of the trainer's time in a profile, done between batches) counts, not only the
   * update. The batch's messages are acknowledged before the rest.
   */
  private async rest(): Promise<void> {
    const ms = this.restMs;
    this.restMs = 0;
    if (ms >= 1 && !this.isStopping) {
      this.log.debug({ restMs: Math.round(ms), cpuShare: this.cpuShare }, 'trainer resting (duty cycle)');
      await this.pause(ms);
    }
  }

  private async announce(outcome: TrainOutcome): Promise<void> {
    const update: ModelUpdate = {
      v: 1,
      version: outcome.version,
      parent: outcome.parent,
      metrics: { sharpe: outcome.candidate.sharpe, window: outcome.candidate.window, parent_sharpe: outcome.parentMetrics?.sharpe ?? null },
      promoted_at: new Date().toISOString(),
    };
    await this.publisher.publish(EXCHANGE_INTERNAL, routingKeys.model(), Buffer.from(JSON.stringify(update)), { messageId: messageIds.model(outcome.version) });
    this.log.info({ version: outcome.version, parent: outcome.parent }, 'model update published');
  }

  private remember(ids: string[]): void {
    this.trained.push(new Set(ids));
    if (this.trained.length > REMEMBERED_BATCHES) this.trained.shift();
  }

  /** Unacknowledged messages are about to be redelivered: drop the partial batch. */
  protected reset(): void {
    const dropped = this.buffer;
    this.buffer = [];
    // The BaseConsumer ignores failures of a channel it has already dropped.
    const err = new BrokerConnectionError('channel closed before the batch was trained; the broker redelivers the message');
    for (const b of dropped) b.reject(err);
    this.releaseWaiting(err);
  }

  /**
   * Stops consuming: the partial batch is released at once (left unacknowledged, so closing the
   * channel requeues it), a batch being trained is waited for (bounded by `closeTimeoutMs`).
   */
  override stop(closeTimeoutMs: number, afterCancel?: () => void): Promise<void> {
    return super.stop(closeTimeoutMs, () => {
      afterCancel?.();
      const released = this.buffer;
      this.buffer = [];
      const err = new BrokerConnectionError('trainer stopping before the batch filled; the broker redelivers the message');
      for (const b of released) b.reject(err);
      this.releaseWaiting(err);
    });
  }
}

/** The transitions of an experience frame; a frame that does not decode is a validation error (dead-lettered with the reason). */
function decodedFrame(content: Buffer): ExperienceTransition[] {
  try {
    return decodeExperienceFrame(content);
  } catch (err) {
    if (err instanceof ExperienceFrameError) throw new ValidationError(err.message);
    throw err;
  }
}

/** The body of a batch, inflated when it is DEFLATE-encoded (JSON batches of older tactical workers). */
function inflated(msg: ConsumeMessage, plain: string): Buffer {
  const encoding: unknown = msg.properties.contentEncoding;
  if (encoding === undefined || encoding === null || encoding === '' || encoding === 'identity') return msg.content;
  if (encoding !== EXPERIENCE_BATCH_CONTENT_ENCODING) {
    throw new ValidationError(`unsupported content-encoding ${JSON.stringify(encoding)}: send ${plain} or raw DEFLATE ('deflate')`);
  }
  try {
    return inflateRawSync(msg.content);
  } catch (err) {
    throw new ValidationError(`body is not valid DEFLATE data (content-encoding deflate): ${(err as Error).message}`);
  }
}

/** What was thrown, as an Error (a promise rejects with errors only). */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
