import Redis from 'ioredis';
import type { Logger } from '../observability/logger';

/** Options of {@link createRedis}. */
export interface RedisClientOptions {
  url: string;
  /** Connection name shown by CLIENT LIST. */
  connectionName: string;
  log: Logger;
}

/**
 * An ioredis client with auto-pipelining (a worker's many small writes share round trips) and a
 * short per-command retry budget, so that an unreachable Redis fails calls quickly and the consumer
 * stops and retries rather than piling up unacknowledged messages.
 */
export function createRedis(options: RedisClientOptions): Redis {
  const client = new Redis(options.url, {
    connectionName: options.connectionName,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    // A frozen or unreachable Redis must fail calls (and trip the redis breaker), not hang them.
    commandTimeout: 2000,
    enableOfflineQueue: true,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(2000, 50 * 2 ** Math.min(times, 10)),
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
