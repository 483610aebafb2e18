import type { PipelineConfig } from '../config/config';
import { StartupError } from '../errors';
import { layoutMismatch, readLayout, type LayoutRedis, type ShardLayout } from '../broker/shard-generation';
import type { Logger } from '../observability/logger';
import { createRedis } from '../state/redis-client';

/**
 * The shard layout recorded in Redis (generation 0 with PIPELINE_SHARDS shards when none is), checked
 * against PIPELINE_SHARDS: a process configured for another shard count would bind another
 * generation's queues to the exchanges, so it does not start ({@link StartupError}, exit 2).
 * During a resize, PIPELINE_SHARDS may name the target count or the widest of the two (what the
 * supervisor gives the workers it runs for the old generation).
 */
export async function checkedLayout(redis: LayoutRedis, config: Pick<PipelineConfig, 'redisPrefix' | 'shards'>): Promise<ShardLayout> {
  const layout = await readLayout(redis, config.redisPrefix, config.shards);
  const mismatch = layoutMismatch(layout, config.shards);
  if (mismatch !== null) throw new StartupError('PIPELINE_SHARDS', mismatch);
  return layout;
}

/** {@link checkedLayout} on a connection of its own. */
export async function loadShardLayout(config: PipelineConfig, log: Logger): Promise<ShardLayout> {
  const redis = createRedis({ url: config.redisUrl, connectionName: 'pipeline-supervisor-layout', log });
  try {
    await redis.connect();
    return await checkedLayout(redis, config);
  } finally {
    redis.disconnect();
  }
}
