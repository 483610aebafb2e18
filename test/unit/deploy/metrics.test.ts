import { PipelineEvent, pipelineEvents } from '../../../src/observability/events';
import { installMetrics, registry, versionNumber } from '../../../src/observability/metrics';

/** The value of one series in this process's registry. */
async function value(
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const series = (metric?.values ?? []) as {
    value: number;
    labels: Record<string, string | number>;
  }[];
  return series.find((s) => Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v))
    ?.value;
}

describe('metrics the alerts and the dashboard need', () => {
  beforeAll(() => installMetrics('tactical.1'));

  it('versionNumber: v0012 is 12, the seeded initial policy 0', () => {
    expect(versionNumber('v0012')).toBe(12);
    expect(versionNumber('v1')).toBe(1);
    expect(versionNumber('initial-1')).toBe(0);
    expect(versionNumber(null)).toBe(0);
  });

  it('the model version gauge follows the version a worker decides with (a drop is a rollback)', async () => {
    pipelineEvents.emit(PipelineEvent.ModelVersion, { version: 'v0007' });
    expect(await value('pipeline_model_version_number')).toBe(7);
    pipelineEvents.emit(PipelineEvent.ModelVersion, { version: 'v0005' });
    expect(await value('pipeline_model_version_number')).toBe(5);
  });

  it('trainer batches: pending count, outcomes (zero until seen), last finished batch time', async () => {
    pipelineEvents.emit(PipelineEvent.TrainerBatches, { pending: 1 });
    expect(await value('pipeline_trainer_pending_batches')).toBe(1);
    expect(await value('pipeline_trainer_batches_total', { outcome: 'failed' })).toBe(0);
    const cut = await value('pipeline_trainer_last_batch_timestamp_seconds');
    expect(Math.abs(cut! - Date.now() / 1000)).toBeLessThan(5);
    pipelineEvents.emit(PipelineEvent.TrainerBatches, { pending: 0, finished: 'promoted' });
    expect(await value('pipeline_trainer_pending_batches')).toBe(0);
    expect(await value('pipeline_trainer_batches_total', { outcome: 'promoted' })).toBe(1);
    expect(await value('pipeline_trainer_batches_total', { outcome: 'rejected' })).toBe(0);
  });

  it('results count by regime and decision, "none" in warm-up', async () => {
    pipelineEvents.emit(PipelineEvent.ResultPublished, {
      stage: 'tactical',
      latencyMs: 3,
      stale: false,
      regime: 'BULL',
      confidence: 'HIGH',
      tactical: 'LONG',
      execution: 'LIMIT',
    });
    pipelineEvents.emit(PipelineEvent.ResultPublished, {
      stage: 'tactical',
      latencyMs: 3,
      stale: false,
      regime: null,
      confidence: null,
      tactical: null,
      execution: null,
    });
    expect(
      await value('pipeline_result_regimes_total', { regime: 'BULL', confidence: 'HIGH' }),
    ).toBe(1);
    expect(
      await value('pipeline_result_regimes_total', { regime: 'none', confidence: 'none' }),
    ).toBe(1);
    expect(
      await value('pipeline_result_decisions_total', { tactical: 'LONG', execution: 'LIMIT' }),
    ).toBe(1);
    expect(
      await value('pipeline_result_decisions_total', { tactical: 'none', execution: 'none' }),
    ).toBe(1);
    expect(
      await value('pipeline_results_published_total', { stage: 'tactical', stale: 'false' }),
    ).toBe(2);
  });

  it('every series carries the worker label of its shard', async () => {
    const metric = (await registry.getMetricsAsJSON()).find(
      (m) => m.name === 'pipeline_model_version_number',
    );
    expect((metric!.values[0] as { labels: Record<string, string> }).labels.worker).toBe(
      'tactical.1',
    );
  });
});
