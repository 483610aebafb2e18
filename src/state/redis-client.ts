import Redis, { Cluster } from 'ioredis';
import type { Logger } from '../observability/logger';
import { Backoff } from '../util/backoff';
import { urlList } from '../util/url-list';

/**
 * The pause before ioredis's reconnection try `times` (from 1): 100 ms doubling up to 2 s, with
 * jitter so that the workers of a pipeline do not reconnect in step after Redis comes back.
 */
const RECONNECT = new Backoff({ initialDelayMs: 100, maxDelayMs: 2000 });
export const reconnectDelay = (times: number): number => RECONNECT.delayMs(times);

/** Options of {@link createRedis}. */
export interface RedisClientOptions {
  /**
   * Redis URL, or several separated by commas: seed nodes of a Redis Cluster (any of its nodes; the
   * client learns every master from them), which switches to the Redis Cluster protocol.
   */
  url: string;
  /** Speak Redis Cluster. @defaultValue true when `url` lists several addresses */
  cluster?: boolean;
  /** Connection name shown by CLIENT LIST. */
  connectionName: string;
  log: Logger;
}

/** The addresses of a REDIS_URL setting (one, or several separated by commas). */
export function redisUrls(setting: string): string[] {
  return urlList(setting, 'redis');
}

/** True when REDIS_URL lists several addresses: the seed nodes of a Redis Cluster. */
export function isClusterSetting(setting: string): boolean {
  return redisUrls(setting).length > 1;
}

/** Seed nodes of a cluster, with the password of the first URL that has one. */
function clusterSeeds(setting: string): { nodes: { host: string; port: number }[]; username?: string; password?: string; tls: boolean } {
  const urls = redisUrls(setting).map((u) => new URL(u));
  const withAuth = urls.find((u) => u.password !== '' || u.username !== '');
  return {
    nodes: urls.map((u) => ({ host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 6379 : Number(u.port) })),
    ...(withAuth !== undefined && withAuth.username !== '' ? { username: decodeURIComponent(withAuth.username) } : {}),
    ...(withAuth !== undefined && withAuth.password !== '' ? { password: decodeURIComponent(withAuth.password) } : {}),
    tls: urls.some((u) => u.protocol === 'rediss:'),
  };
}

/**
 * A client for a Redis Cluster, typed as the single-node client: the pipeline uses the same commands
 * on both (ioredis's Cluster routes each by its key's slot; `isCluster` tells them apart).
 */
export function createClusterClient(setting: string, options: { connectionName: string; commandTimeout?: number; lazyConnect?: boolean; maxRetriesPerRequest?: number }): Redis {
  const seeds = clusterSeeds(setting);
  const cluster = new Cluster(seeds.nodes, {
    enableAutoPipelining: true,
    enableOfflineQueue: true,
    lazyConnect: options.lazyConnect ?? true,
    // A failover moves slots: ask the cluster again and retry the command a moment later.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 100,
    clusterRetryStrategy: reconnectDelay,
    redisOptions: {
      connectionName: options.connectionName,
      maxRetriesPerRequest: options.maxRetriesPerRequest ?? 1,
      ...(options.commandTimeout !== undefined ? { commandTimeout: options.commandTimeout } : {}),
      ...(seeds.username !== undefined ? { username: seeds.username } : {}),
      ...(seeds.password !== undefined ? { password: seeds.password } : {}),
      ...(seeds.tls ? { tls: {} } : {}),
    },
  });
  return cluster as unknown as Redis;
}

/**
 * An ioredis client with auto-pipelining (a worker's many small writes share round trips) and a
 * short per-command retry budget, so that an unreachable Redis fails calls quickly and the consumer
 * stops and retries rather than piling up unacknowledged messages. With `cluster`, a Redis Cluster
 * client with the same budget.
 */
export function createRedis(options: RedisClientOptions): Redis {
  const client =
    (options.cluster ?? isClusterSetting(options.url))
      ? createClusterClient(options.url, { connectionName: options.connectionName, commandTimeout: 2000 })
      : new Redis(options.url, {
          connectionName: options.connectionName,
          enableAutoPipelining: true,
          maxRetriesPerRequest: 1,
          // A frozen or unreachable Redis must fail calls (and trip the redis breaker), not hang them.
          commandTimeout: 2000,
          enableOfflineQueue: true,
          lazyConnect: true,
          retryStrategy: reconnectDelay,
        });
  let down = false;
  client.on('error', (err: Error) => {
    if (!down) options.log.warn({ err: err.message }, 'redis error');
    down = true;
  });
  client.on('ready', () => {
    if (down) options.log.info('redis ready again');
    down = false;
  });
  return client;
}

export type { Redis };
