/** Messages a worker sends its supervisor over the fork IPC channel. */
export type WorkerToSupervisor =
  | { type: 'status'; consuming: boolean; reason: string | null; details?: Record<string, unknown> }
  | { type: 'metrics'; requestId: number; metrics: unknown };

/** Messages the supervisor sends a worker. */
export type SupervisorToWorker = { type: 'metrics'; requestId: number } | { type: 'shutdown' };

/** The worker roles the supervisor runs (the trainer only with online training on). */
export const WORKER_ROLES = ['resampler', 'strategic', 'tactical', 'trainer'] as const;
export type WorkerRole = (typeof WORKER_ROLES)[number];

/** The roles to run for a configuration. */
export function rolesFor(config: { training: boolean }): WorkerRole[] {
  return WORKER_ROLES.filter((r) => r !== 'trainer' || config.training);
}
