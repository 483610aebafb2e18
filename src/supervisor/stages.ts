import { join } from 'node:path';
import type { PipelineConfig } from '../config/config';
import type { AgentStage } from '../flows/agent-stage';
import { FaultInjector } from '../flows/fault-injection';
import { StreamingIndicatorStage } from '../flows/indicator-stage';
import type { StrategicStage } from '../flows/strategic-flow';
import type { TacticalFlowStages } from '../flows/tactical-flow';
import type { TacticalPolicy } from '../learning/policy';
import { componentLogger } from '../observability/logger';
import type { WorkerRole } from './ipc';

/** The compute stages a worker plugs into its flows. A stage not built yet is absent. */
export interface WorkerStages {
  tactical?: TacticalFlowStages & { agents?: AgentStage };
  strategic?: StrategicStage | null;
}

/** Seed of the initial policy used when the registry has no promoted version. */
export const INITIAL_POLICY_SEED = 1;

/**
 * The tactical policy a worker starts with: the pinned version (`PIPELINE_MODEL_VERSION`), else the
 * latest promoted one in `<dataDir>/models`, else the seeded initial policy.
 */
export async function loadStartingPolicy(config: PipelineConfig): Promise<TacticalPolicy> {
  const { openModelRegistry, BUNDLED_MODEL_DIR } = await import('../state/model-files');
  const { TacticalPolicy } = await import('../learning/policy');
  const registry = openModelRegistry(join(config.dataDir, 'models'), { keepVersions: config.modelKeep, seedFrom: BUNDLED_MODEL_DIR });
  if (config.modelVersion !== null) return TacticalPolicy.load(registry, config.modelVersion);
  const promoted = await registry.latestPromoted().catch(() => null);
  return promoted === null ? TacticalPolicy.initial(INITIAL_POLICY_SEED) : TacticalPolicy.load(registry, promoted);
}

/** What worker-main runs for a role: the gateway or a broker {@link Worker}. */
export interface RoleProcess {
  readonly consuming: boolean;
  readonly inFlight: number;
  onFatal: (err: Error) => void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The gateway role (HTTP API, WebSocket, live page), loaded only in its own process so that the
 * workers never load Fastify.
 */
export async function buildGateway(config: PipelineConfig): Promise<RoleProcess> {
  const { GatewayWorker } = await import('../gateway/gateway-worker');
  return new GatewayWorker(config);
}

/** Builds the compute stages of a role. */
export async function buildStages(role: WorkerRole, config: PipelineConfig): Promise<WorkerStages> {
  // Each role imports only its own compute: the strategic worker never loads the learning code. No
  // worker loads tfjs or onnxruntime (test/integration/worker-modules.test.ts).
  if (role === 'tactical') {
    const { AgentStage } = await import('../flows/agent-stage');
    const policy = await loadStartingPolicy(config);
    const log = componentLogger('agents');
    log.info({ modelVersion: policy.version }, 'tactical policy loaded');
    return {
      tactical: {
        indicators: new StreamingIndicatorStage(),
        agents: new AgentStage(policy, log, config.training, new FaultInjector(config.faultFile)),
      },
    };
  }
  if (role === 'strategic') {
    const { AnalyticsStage } = await import('../flows/analytics-stage');
    return {
      strategic: new AnalyticsStage({
        dir: join(config.dataDir, 'patterns'),
        retention: { maxCount: config.patternMaxPerSymbol, maxAgeMs: config.patternMaxAgeDays * 86_400_000 },
        // The context leaves before the store's fdatasync; the commit waits for it (StrategicConsumer).
        overlapSync: true,
        faults: new FaultInjector(config.faultFile),
        log: componentLogger('analytics'),
      }),
    };
  }
  return {};
}
