import { EventEmitter } from 'node:events';

/** Names of the pipeline's observable events (business code emits, metrics subscribes). */
export const PipelineEvent = {
  MessageHandled: 'message.handled',
  ResultPublished: 'result.published',
  DeadLettered: 'message.dead_lettered',
  BreakerState: 'breaker.state',
  BreakerFallback: 'breaker.fallback',
  Blocked: 'broker.blocked',
  Resend: 'result.resend',
  Reconnect: 'broker.reconnect',
  ModelVersion: 'model.version',
  TrainerBatches: 'trainer.batches',
} as const;

/** Payloads of {@link PipelineEvent}s. */
export interface PipelineEvents {
  [PipelineEvent.MessageHandled]: { queue: string; outcome: 'ok' | 'duplicate' | 'dead_lettered' | 'retried'; durationMs: number };
  [PipelineEvent.ResultPublished]: {
    stage: string;
    latencyMs: number;
    stale: boolean;
    /** The result's regime call and decisions (null in warm-up), for the regime and decision counts. */
    regime?: string | null;
    confidence?: string | null;
    tactical?: string | null;
    execution?: string | null;
  };
  [PipelineEvent.DeadLettered]: { queue: string; stage: string; reason: string };
  [PipelineEvent.BreakerState]: { stage: string; state: 'closed' | 'open' | 'half_open' };
  [PipelineEvent.BreakerFallback]: { stage: string };
  [PipelineEvent.Blocked]: { blocked: boolean };
  [PipelineEvent.Resend]: { stage: string };
  [PipelineEvent.Reconnect]: { component: string };
  /** The tactical policy version a worker decides with (null: the seeded initial policy), at start and on each swap. */
  [PipelineEvent.ModelVersion]: { version: string | null };
  /** The trainer's batches: `pending` cut and not finished; `finished` set when one just ended. */
  [PipelineEvent.TrainerBatches]: { pending: number; finished?: 'promoted' | 'rejected' | 'failed' };
}

/** A typed event emitter. */
export class TypedEmitter<E extends object> {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(100);
  }

  on<K extends keyof E & string>(event: K, listener: (payload: E[K]) => void): this {
    this.emitter.on(event, listener);
    return this;
  }

  off<K extends keyof E & string>(event: K, listener: (payload: E[K]) => void): this {
    this.emitter.off(event, listener);
    return this;
  }

  emit<K extends keyof E & string>(event: K, payload: E[K]): void {
    this.emitter.emit(event, payload);
  }
}

/** The process-wide bus of pipeline events. */
export const pipelineEvents = new TypedEmitter<PipelineEvents>();
