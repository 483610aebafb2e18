import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PipelineConfig } from '../config/config';
import { StartupError } from '../errors';
import { LAYOUT_KEY, layoutMismatch, parseLayout, readLayout, writeLayout, type LayoutRedis, type ShardLayout } from '../broker/shard-generation';
import { writeFileAtomic } from '../state/atomic-file';
import type { Logger } from '../observability/logger';
import { createRedis } from '../state/redis-client';

/**
 * The shard layout recorded in Redis (generation 0 with PIPELINE_SHARDS shards when none is), checked
 * against PIPELINE_SHARDS: a process configured for another shard count would bind another
 * generation's queues to the exchanges, so it does not start ({@link StartupError}, exit 2).
 * During a resize, PIPELINE_SHARDS may name the target count or the widest of the two (what the
 * supervisor gives the workers it runs for the old generation).
 */
export async function checkedLayout(redis: LayoutRedis, config: Pick<PipelineConfig, 'redisPrefix' | 'shards' | 'dataDir'>): Promise<ShardLayout> {
  const layout = await restoredLayout(redis, config);
  const mismatch = layoutMismatch(layout, config.shards);
  if (mismatch !== null) throw new StartupError('PIPELINE_SHARDS', mismatch);
  return layout;
}

/**
 * The layout recorded in Redis; when Redis lost the record (a Redis loss, or `pipeline state
 * accept-loss`), the copy in the data directory is written back, which keeps the pipeline on its
 * generation instead of falling back to generation 0.
 */
export async function restoredLayout(redis: LayoutRedis, config: Pick<PipelineConfig, 'redisPrefix' | 'shards' | 'dataDir'>): Promise<ShardLayout> {
  if ((await redis.get(`${config.redisPrefix}${LAYOUT_KEY}`)) === null) {
    const saved = await readLayoutFile(config.dataDir);
    if (saved !== null) await writeLayout(redis, config.redisPrefix, saved);
  }
  return readLayout(redis, config.redisPrefix, config.shards);
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

/** The copy of the layout in the data directory, written by `pipeline shards resize`. */
export function layoutFile(dataDir: string): string {
  return join(dataDir, 'shard-layout.json');
}

async function readLayoutFile(dataDir: string): Promise<ShardLayout | null> {
  let raw: string;
  try {
    raw = await readFile(layoutFile(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return parseLayout(raw);
}

/** Records the layout in Redis and in the data directory. */
export async function recordLayout(redis: LayoutRedis, config: Pick<PipelineConfig, 'redisPrefix' | 'dataDir'>, layout: ShardLayout): Promise<void> {
  await mkdir(config.dataDir, { recursive: true });
  await writeFileAtomic(layoutFile(config.dataDir), `${JSON.stringify(layout)}\n`);
  await writeLayout(redis, config.redisPrefix, layout);
}
