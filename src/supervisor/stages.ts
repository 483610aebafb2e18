import type { PipelineConfig } from '../config/config';
import type { StrategicStage } from '../flows/strategic-flow';
import { StreamingIndicatorStage } from '../flows/indicator-stage';
import type { TacticalFlowStages } from '../flows/tactical-flow';
import type { WorkerRole } from './ipc';

/** The compute stages a worker plugs into its flows. A stage not built yet is absent. */
export interface WorkerStages {
  tactical?: TacticalFlowStages;
  strategic?: StrategicStage | null;
}

/** Builds the compute stages of a role. */
export async function buildStages(role: WorkerRole, config: PipelineConfig): Promise<WorkerStages> {
  void config;
  if (role === 'tactical') return { tactical: { indicators: new StreamingIndicatorStage() } };
  if (role === 'strategic') return { strategic: null };
  return Promise.resolve({});
}
