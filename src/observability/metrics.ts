import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PipelineEvent, pipelineEvents } from './events';

/** This process's Prometheus registry; the supervisor aggregates those of all workers. */
export const registry = new Registry();

let installed = false;

/**
 * Creates the pipeline's metrics and subscribes them to {@link pipelineEvents}. Idempotent.
 * Names follow `pipeline_<area>_<what>_<unit>`; labels stay low-cardinality.
 */
export function installMetrics(worker: string): void {
  if (installed) return;
  installed = true;
  registry.setDefaultLabels({ worker });
  collectDefaultMetrics({ register: registry, prefix: 'pipeline_process_' });

  const handled = new Counter({
    name: 'pipeline_messages_handled_total',
    help: 'Messages handled, by queue and outcome',
    labelNames: ['queue', 'outcome'],
    registers: [registry],
  });
  const handleSeconds = new Histogram({
    name: 'pipeline_message_handle_seconds',
    help: 'Time from delivery of a message to its ack (or dead letter)',
    labelNames: ['queue'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [registry],
  });
  const results = new Counter({
    name: 'pipeline_results_published_total',
    help: 'Results computed and handed to the publisher, by stage and staleness',
    labelNames: ['stage', 'stale'],
    registers: [registry],
  });
  const resultLatency = new Histogram({
    name: 'pipeline_result_latency_seconds',
    help: 'latency_ms of published results',
    labelNames: ['stage'],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [registry],
  });
  const dead = new Counter({
    name: 'pipeline_dead_letters_total',
    help: 'Messages dead-lettered, by queue and stage',
    labelNames: ['queue', 'stage'],
    registers: [registry],
  });
  const breaker = new Gauge({
    name: 'pipeline_breaker_state',
    help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open',
    labelNames: ['stage'],
    registers: [registry],
  });
  const breakerTransitions = new Counter({
    name: 'pipeline_breaker_transitions_total',
    help: 'Circuit breaker state changes',
    labelNames: ['stage', 'state'],
    registers: [registry],
  });
  const fallbacks = new Counter({
    name: 'pipeline_breaker_fallbacks_total',
    help: 'Calls served by a fallback',
    labelNames: ['stage'],
    registers: [registry],
  });
  const blocked = new Gauge({
    name: 'pipeline_broker_blocked',
    help: '1 while the broker blocks this connection (resource alarm)',
    registers: [registry],
  });
  const resends = new Counter({
    name: 'pipeline_results_resent_total',
    help: 'Redelivered inputs that produced output again (an upper bound of identical re-sends)',
    labelNames: ['stage'],
    registers: [registry],
  });
  const reconnects = new Counter({
    name: 'pipeline_broker_reconnects_total',
    help: 'Broker reconnects',
    labelNames: ['component'],
    registers: [registry],
  });

  const regimes = new Counter({
    name: 'pipeline_result_regimes_total',
    help: 'Published results by the regime and confidence of their strategic context (none: warm-up or no context)',
    labelNames: ['regime', 'confidence'],
    registers: [registry],
  });
  const decisions = new Counter({
    name: 'pipeline_result_decisions_total',
    help: 'Published results by the tactical direction and execution style decided (none: warm-up)',
    labelNames: ['tactical', 'execution'],
    registers: [registry],
  });
  const modelVersion = new Gauge({
    name: 'pipeline_model_version_number',
    help: 'Number of the tactical policy version this worker decides with (v0012 is 12; 0 is the seeded initial policy); a drop is a rollback',
    registers: [registry],
  });
  const trainerPending = new Gauge({
    name: 'pipeline_trainer_pending_batches',
    help: 'Training batches cut (full) and not finished yet',
    registers: [registry],
  });
  const trainerBatches = new Counter({
    name: 'pipeline_trainer_batches_total',
    help: 'Training batches finished, by outcome (promoted, rejected, failed)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const trainerLastBatch = new Gauge({
    name: 'pipeline_trainer_last_batch_timestamp_seconds',
    help: 'Unix time the trainer last finished a batch (until its first one: when it cut its first batch)',
    registers: [registry],
  });

  pipelineEvents.on(PipelineEvent.ModelVersion, (e) => modelVersion.set(versionNumber(e.version)));
  pipelineEvents.on(PipelineEvent.TrainerBatches, (e) => {
    trainerPending.set(e.pending);
    if (e.finished !== undefined) {
      trainerBatches.inc({ outcome: e.finished });
      trainerLastBatch.setToCurrentTime();
    } else if (!trainerStarted) {
      trainerStarted = true;
      trainerLastBatch.setToCurrentTime();
      for (const outcome of ['promoted', 'rejected', 'failed']) trainerBatches.inc({ outcome }, 0);
    }
  });
  const handledBy = children((queue: string, outcome: string) => handled.labels(queue, outcome));
  const handleSecondsBy = children((queue: string) => handleSeconds.labels(queue));
  pipelineEvents.on(PipelineEvent.MessageHandled, (e) => {
    handledBy(e.queue, e.outcome).inc();
    handleSecondsBy(e.queue).observe(e.durationMs / 1000);
  });
  // Every result and every message: the labelled children are looked up once per label set, not
  // hashed from a label object each time.
  const resultsBy = children((stage: string, stale: string) => results.labels(stage, stale));
  const latencyBy = children((stage: string) => resultLatency.labels(stage));
  const regimesBy = children((regime: string, confidence: string) => regimes.labels(regime, confidence));
  const decisionsBy = children((tactical: string, execution: string) => decisions.labels(tactical, execution));
  pipelineEvents.on(PipelineEvent.ResultPublished, (e) => {
    resultsBy(e.stage, e.stale ? 'true' : 'false').inc();
    latencyBy(e.stage).observe(e.latencyMs / 1000);
    if (e.regime !== undefined) regimesBy(e.regime ?? 'none', e.confidence ?? 'none').inc();
    if (e.tactical !== undefined) decisionsBy(e.tactical ?? 'none', e.execution ?? 'none').inc();
  });
  pipelineEvents.on(PipelineEvent.DeadLettered, (e) => dead.inc({ queue: e.queue, stage: e.stage }));
  pipelineEvents.on(PipelineEvent.BreakerState, (e) => {
    breaker.set({ stage: e.stage }, e.state === 'closed' ? 0 : e.state === 'half_open' ? 1 : 2);
    breakerTransitions.inc({ stage: e.stage, state: e.state });
  });
  pipelineEvents.on(PipelineEvent.BreakerFallback, (e) => fallbacks.inc({ stage: e.stage }));
  pipelineEvents.on(PipelineEvent.Blocked, (e) => blocked.set(e.blocked ? 1 : 0));
  pipelineEvents.on(PipelineEvent.Resend, (e) => resends.inc({ stage: e.stage }));
  pipelineEvents.on(PipelineEvent.Reconnect, (e) => reconnects.inc({ component: e.component }));
}

/**
 * Memoises a metric's `labels(...)` per label values: prom-client hashes the label set on every
 * `inc({...})`, which on the path of every bar is a string build and a map lookup per metric.
 */
function children<V extends string[], C>(make: (...values: V) => C): (...values: V) => C {
  const cache = new Map<string, C>();
  return (...values: V): C => {
    const key = values.length === 1 ? (values[0] as string) : values.join('\u0000');
    let child = cache.get(key);
    if (child === undefined) {
      child = make(...values);
      cache.set(key, child);
    }
    return child;
  };
}

let trainerStarted = false;

/** `v0012` → 12; the seeded initial policy (null, `initial-<seed>`) → 0. */
export function versionNumber(version: string | null): number {
  const m = version === null ? null : /^v(\d+)$/.exec(version);
  return m === null ? 0 : Number(m[1]);
}
