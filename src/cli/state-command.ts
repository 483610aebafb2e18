import Redis from 'ioredis';
import { createClusterClient, isClusterSetting } from '../state/redis-client';
import { describeRedisTarget } from '../state/redis-preflight';
import { StateEpochStore } from '../state/state-epoch-store';
import { CliUsageError, ExitCode, defineCommand, type CommandContext, type ParsedCommandLine } from './common';

const HELP = `The pipeline's state (indicators, windows, buffers, dedupe marks of every symbol) lives in Redis. Its
epoch, a random id, is kept both in Redis (<prefix>epoch) and in PIPELINE_DATA_DIR/state-epoch; a
sequence that the running workers advance every second is kept in Redis (<prefix>epoch:seq) and in
PIPELINE_DATA_DIR/state-seq.<role>. When Redis no longer holds them (restarted without persistence,
flushed, failed over to an empty or lagging replica), the workers consume nothing and /health
answers 503 "redis state lost" until an operator acts. See docs/redis-loss.md.

  check        prints the epoch in Redis and in the data directory; exit 0 when they agree (or no
               epoch exists yet), 1 when Redis lost the state.
  accept-loss  accepts the loss: deletes every key under PIPELINE_REDIS_PREFIX and starts a new
               epoch. The workers then resume on their own and every symbol starts over from the
               next bar in its queue (indicators warm up again; bars older than that one are
               dead-lettered as out of order). Needs --yes. Do not run it if Redis can be restored
               from its persistence files: restore it instead and the workers resume where they were.
               Refuses when the state is intact, unless --force (which wipes a healthy state).

Environment: REDIS_URL, PIPELINE_REDIS_PREFIX, PIPELINE_DATA_DIR (those of the pipeline).`;

const OPTIONS = {
  json: { type: 'boolean', description: 'one JSON object instead of text' },
  yes: { type: 'boolean', description: 'do it (accept-loss deletes the state of every symbol)' },
  force: { type: 'boolean', description: 'accept the loss even when the state is intact (wipes a healthy state)' },
} as const;

async function run({ positionals: [sub], values }: ParsedCommandLine<typeof OPTIONS>, ctx: CommandContext): Promise<number> {
  if (sub === 'accept-loss' && values.yes !== true)
    throw new CliUsageError('accept-loss deletes the state of every symbol; add --yes to do it');
  const { config } = ctx;
  ctx.err.write(
    `pipeline state: ${describeRedisTarget(config.redisUrl)}, prefix ${config.redisPrefix}, data dir ${config.dataDir}\n`,
  );
  // A REDIS_URL listing several nodes is a Redis Cluster: its epoch copies live on every master.
  const redis = isClusterSetting(config.redisUrl)
    ? createClusterClient(config.redisUrl, { connectionName: 'pipeline-cli-state', lazyConnect: true })
    : new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectionName: 'pipeline-cli-state' });
  redis.on('error', () => undefined); // surfaced through the failing command instead
  try {
    await redis.connect();
    const store = new StateEpochStore(redis, {
      prefix: config.redisPrefix,
      dataDir: config.dataDir,
    });
    if (sub === 'accept-loss') {
      const before = await store.verify(false);
      if (before.kind === 'intact' && before.how !== 'created' && values.force !== true) {
        ctx.err.write(
          `the state epoch ${before.epoch} is intact: nothing to accept; add --force to delete the state of every symbol anyway\n`,
        );
        return ExitCode.Failure;
      }
      const { epoch, deletedKeys, replaced } = await store.acceptLoss();
      ctx.out.write(
        `new state epoch ${epoch} (replaces ${replaced.join(', ') || 'none'}); deleted ${deletedKeys} keys under ${config.redisPrefix}; the workers resume on their own and every symbol starts over\n`,
      );
      return ExitCode.Ok;
    }
    const status = await store.verify(false);
    const { record, seq } = await store.readRedis();
    const durable = store.readDurableEpoch();
    if (values.json === true) {
      ctx.out.write(
        `${JSON.stringify({ status: status.kind, ...status, redis: record, redisSeq: seq, durable, epochFile: store.epochFile })}\n`,
      );
    } else if (status.kind === 'lost') {
      ctx.out.write(
        `LOST (${status.cause}): ${status.message}\nfix: restore Redis from its persistence files, or run "pipeline state accept-loss --yes" (every symbol starts over)\n`,
      );
    } else {
      ctx.out.write(
        durable === null && record === null
          ? 'no state epoch yet: the pipeline has not run with this Redis, prefix and data directory\n'
          : `intact: epoch ${status.epoch || record?.id}, sequence ${seq} (Redis ${store.epochKey}; ${durable === null ? 'no durable copy in this data directory yet' : store.epochFile})\n`,
      );
    }
    return status.kind === 'lost' ? ExitCode.Failure : ExitCode.Ok;
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

/** `pipeline state`: checks the Redis state epoch, or accepts a loss of state. */
export const stateCommand = defineCommand({
  options: OPTIONS,
  subcommands: {
    check: { description: 'compare the epoch in Redis with the one in the data directory', options: ['json'] },
    'accept-loss': { description: 'delete the state and start a new epoch (needs --yes)', options: ['yes', 'force'] },
  },
  help: HELP,
  run,
});
