/** Start-up checks and the exit-2 path shared by the supervisor and worker entry points. */
import { brokerPreflight } from '../broker/preflight';
import type { PipelineConfig } from '../config/config';
import { EXIT_STARTUP, StartupError } from '../errors';
import { componentLogger, rootLogger } from '../observability/logger';
import { redisPreflight } from '../state/redis-preflight';

/** Whether the configuration needs the consistent-hash exchange plugin: more than one shard. */
export function needsConsistentHash(config: PipelineConfig): boolean {
  return config.shards > 1;
}

/** Checks RabbitMQ and Redis before anything starts; rejects with a {@link StartupError}. */
export async function preflight(config: PipelineConfig, connectionName: string): Promise<void> {
  await Promise.all([
    brokerPreflight({
      url: config.amqpUrl,
      needsConsistentHash: needsConsistentHash(config),
      waitMs: config.startupWaitMs,
      connectionName,
    }),
    redisPreflight({ url: config.redisUrl, waitMs: config.startupWaitMs, connectionName }),
  ]);
}

/** Prints the one line of a start-up error and exits {@link EXIT_STARTUP}; other errors exit 1. */
export function exitOnStartError(err: unknown, what: string): never {
  if (err instanceof StartupError) {
    process.stderr.write(`${err.message}\n`);
    componentLogger(what).fatal(
      { setting: err.setting, err: err.message },
      'cannot start as configured',
    );
    rootLogger().flush();
    process.exit(EXIT_STARTUP);
  }
  componentLogger(what).fatal({ err }, 'failed to start');
  rootLogger().flush();
  process.exit(1);
}
