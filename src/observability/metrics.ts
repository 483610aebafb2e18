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
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers });
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
  /** Both histograms are of seconds, on the same buckets. */
  const histogram = (name: string, help: string, labelNames: string[]) =>
    new Histogram({ name, help, labelNames, buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers });

  const handled = counter('pipeline_messages_handled_total', 'Messages handled, by queue and outcome', ['queue', 'outcome']);
  const handleSeconds = histogram('pipeline_message_handle_seconds', 'Time from delivery of a message to its ack (or dead letter)', ['queue']);
  const results = counter('pipeline_results_published_total', 'Results computed and handed to the publisher, by stage and staleness', ['stage', 'stale']);
  const resultLatency = histogram('pipeline_result_latency_seconds', 'latency_ms of published results', ['stage']);
  const dead = counter('pipeline_dead_letters_total', 'Messages dead-lettered, by queue and stage', ['queue', 'stage']);
  const breaker = gauge('pipeline_breaker_state', 'Circuit breaker state: 0 closed, 1 half-open, 2 open', ['stage']);
  const breakerTransitions = counter('pipeline_breaker_transitions_total', 'Circuit breaker state changes', ['stage', 'state']);
  const fallbacks = counter('pipeline_breaker_fallbacks_total', 'Calls served by a fallback', ['stage']);
  const blocked = gauge('pipeline_broker_blocked', '1 while the broker blocks this connection (resource alarm)');
  const resends = counter('pipeline_results_resent_total', 'Redelivered inputs that produced output again (an upper bound of identical re-sends)', ['stage']);
  const reconnects = counter('pipeline_broker_reconnects_total', 'Broker reconnects', ['component']);

  const regimes = counter('pipeline_result_regimes_total', 'Published results by the regime and confidence of their strategic context (none: warm-up or no context)', ['regime', 'confidence']);
  const decisions = counter('pipeline_result_decisions_total', 'Published results by the tactical direction and execution style decided (none: warm-up)', ['tactical', 'execution']);
  const modelVersion = gauge('pipeline_model_version_number', 'Number of the tactical policy version this worker decides with (v0012 is 12; 0 is the seeded initial policy); a drop is a rollback');
  const trainerPending = gauge('pipeline_trainer_pending_batches', 'Training batches cut (full) and not finished yet');
  const trainerBatches = counter('pipeline_trainer_batches_total', 'Training batches finished, by outcome (promoted, rejected, failed)', ['outcome']);
  const trainerLastBatch = gauge('pipeline_trainer_last_batch_timestamp_seconds', 'Unix time the trainer last finished a batch (until its first one: when it cut its first batch)');

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
