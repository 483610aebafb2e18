/** Messages a worker sends its supervisor over the fork IPC channel. */
export type WorkerToSupervisor =
  | { type: 'status'; consuming: boolean; reason: string | null; details?: Record<string, unknown> }
  | { type: 'metrics'; requestId: number; metrics: unknown };

/** Messages the supervisor sends a worker. */
export type SupervisorToWorker = { type: 'metrics'; requestId: number } | { type: 'shutdown' };

/**
 * The worker roles the supervisor runs (the trainer only with online training on). The tactical
 * worker builds the 30m bars itself (there is no resampler role any more).
 */
export const WORKER_ROLES = ['strategic', 'tactical', 'trainer', 'gateway'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

/**
 * The roles to run for a configuration: those of PIPELINE_ROLES (all by default), the trainer only
 * with online training on.
 */
export function rolesFor(config: { training: boolean; roles?: readonly string[] }): WorkerRole[] {
  return WORKER_ROLES.filter((r) => (r !== 'trainer' || config.training) && (config.roles === undefined || config.roles.includes(r)));
}

/** Roles that run one worker per shard (PIPELINE_SHARDS); the others run one worker. */
export function isShardedRole(role: WorkerRole): boolean {
  return role === 'tactical' || role === 'strategic';
}

/**
 * Name of the worker of `role` serving `shard`: the role itself for shard 0 (so that a pipeline of
 * one shard looks as it always did), `<role>.<shard>` for the others.
 */
export function workerName(role: WorkerRole, shard: number): string {
  return shard === 0 ? role : `${role}.${shard}`;
}
