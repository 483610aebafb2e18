/**
 * Start-up check of Redis, run by the supervisor and every worker before anything else: reach it,
 * authenticate, select the database of REDIS_URL, PING. A failure becomes a {@link StartupError} with
 * one line that names REDIS_URL and the fix (exit code 2), instead of a worker that reconnects forever.
 */
import Redis from 'ioredis';
import { createClusterClient, isClusterSetting, redisUrls } from './redis-client';
import { errorMessage, StartupError } from '../errors';
import { isTransientSocketError, retryWhileTransient } from '../util/retry-while-transient';

/** Options of {@link redisPreflight}. */
export interface RedisPreflightOptions {
  /** REDIS_URL. */
  url: string;
  /**
   * How long to keep trying while Redis is merely unreachable (connection refused or reset, a
   * Redis still starting or loading its data). Wrong password or database fail at once. @defaultValue 5000
   */
  waitMs?: number;
  /** Name shown by CLIENT LIST. @defaultValue `'pipeline-preflight'` */
  connectionName?: string;
}

/** `host:port` and database of a Redis URL, for messages (never the password). */
export function describeRedisTarget(url: string): string {
  if (isClusterSetting(url)) {
    try {
      return `redis cluster ${redisUrls(url).map((one) => { const u = new URL(one); return `${u.hostname}:${u.port === '' ? '6379' : u.port}`; }).join(',')}`;
    } catch {
      return 'redis <unparseable REDIS_URL>';
    }
  }
  try {
    const u = new URL(url);
    const db = u.pathname === '' || u.pathname === '/' ? '0' : u.pathname.slice(1);
    return `redis ${u.hostname}:${u.port === '' ? '6379' : u.port}, db ${db}`;
  } catch {
    return 'redis <unparseable REDIS_URL>';
  }
}

/** Connects (retrying only while Redis is unreachable, up to `waitMs`), PINGs and quits. */
export async function redisPreflight(options: RedisPreflightOptions): Promise<void> {
  if (isClusterSetting(options.url)) return clusterPreflight(options);
  const { url } = options;
  let parsed: URL;
  try {
    parsed = new URL(url);
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
      throw new Error(`protocol ${parsed.protocol}`);
    const db = parsed.pathname === '' || parsed.pathname === '/' ? '0' : parsed.pathname.slice(1);
    if (!/^\d+$/.test(db)) throw new Error(`database ${db}`);
  } catch (err) {
    throw new StartupError(
      'REDIS_URL',
      'REDIS_URL: not a valid Redis URL; use redis://[:password@]host:6379[/db] (db a number, 0 by default)',
      { cause: err },
    );
  }
  const target = describeRedisTarget(url);
  try {
    await retryWhileTransient(
      () => pingOnce(url, options.connectionName ?? 'pipeline-preflight'),
      (err) => isTransientSocketError(err) || (err instanceof Error && /^LOADING/.test(err.message)),
      options.waitMs ?? 5000,
    );
  } catch (err) {
    throw classifyRedisError(err, target);
  }
}

/**
 * REDIS_URL listing several nodes: a Redis Cluster. Every address must be a valid URL without a
 * database (a cluster has database 0 only); the cluster must answer and report `cluster_state:ok`.
 */
async function clusterPreflight(options: RedisPreflightOptions): Promise<void> {
  for (const one of redisUrls(options.url)) {
    let bad = false;
    try {
      const u = new URL(one);
      const db = u.pathname === '' || u.pathname === '/' ? '0' : u.pathname.slice(1);
      bad = (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || db !== '0';
    } catch {
      bad = true;
    }
    if (bad) {
      throw new StartupError(
        'REDIS_URL',
        'REDIS_URL: several addresses name the nodes of a Redis Cluster; write each as redis://[:password@]host:port with no database (a cluster has database 0 only), separated by commas',
      );
    }
  }
  const target = describeRedisTarget(options.url);
  const attempt = async (): Promise<void> => {
    const client = createClusterClient(options.url, {
      connectionName: options.connectionName ?? 'pipeline-preflight',
      commandTimeout: 5000,
      maxRetriesPerRequest: 0,
    });
    let lastError: unknown = null;
    client.on('error', (err: unknown) => {
      lastError = err;
    });
    try {
      await client.connect();
      const info = String(await client.cluster('INFO'));
      if (!/cluster_state:ok/.test(info)) {
        throw new StartupError(
          'REDIS_URL',
          `REDIS_URL: the Redis Cluster at ${target} is not ready (${/cluster_state:\w+/.exec(info)?.[0] ?? 'no cluster_state'}); wait until every slot is served (redis-cli --cluster check) or fix REDIS_URL`,
        );
      }
    } catch (err) {
      const inner = (err as { lastNodeError?: unknown }).lastNodeError ?? lastError;
      throw err instanceof StartupError ? err : (isTransientSocketError(inner) ? inner : err);
    } finally {
      client.disconnect();
    }
  };
  try {
    await retryWhileTransient(attempt, (err) => isTransientSocketError(err) || (err instanceof Error && /^(LOADING|CLUSTERDOWN)/.test(err.message)), options.waitMs ?? 5000);
  } catch (err) {
    throw err instanceof StartupError ? err : classifyRedisError(err, target);
  }
}

/** One connection, one PING, quit. Rejects with the underlying socket error when there is one. */
async function pingOnce(url: string, connectionName: string): Promise<void> {
  const client = new Redis(url, {
    connectionName,
    lazyConnect: true,
    connectTimeout: 5000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    reconnectOnError: () => false,
  });
  let lastError: unknown = null;
  client.on('error', (err: unknown) => {
    lastError = err;
  });
  try {
    await client.connect();
    await client.ping();
    await client.quit().catch(() => undefined);
  } catch (err) {
    client.disconnect();
    // ioredis reports a refused connection as "Connection is closed."; the socket error says why.
    throw (err as Error).message === 'Connection is closed.' && lastError !== null ? lastError : err;
  }
}

/** Turns an ioredis connect or command error into one actionable line. */
export function classifyRedisError(err: unknown, target: string): StartupError {
  const message = errorMessage(err);
  const code = (err as { code?: unknown } | null)?.code;
  const make = (text: string): StartupError =>
    new StartupError('REDIS_URL', `REDIS_URL: ${text}`, { cause: err });
  if (code === 'ECONNREFUSED')
    return make(
      `nothing accepts connections at ${target}; start Redis or fix the host and port in REDIS_URL`,
    );
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return make(`host of ${target} not found (DNS); fix the host in REDIS_URL`);
  if (/WRONGPASS|NOAUTH|invalid password|invalid username/i.test(message)) {
    return make(
      `${target} refused the credentials (${message.split('\n')[0]}); fix the user and password in REDIS_URL (redis://user:password@host:6379)`,
    );
  }
  if (/DB index is out of range/i.test(message)) {
    return make(
      `${target}: the database number is out of range for this Redis (see its "databases" setting); fix the /db part of REDIS_URL`,
    );
  }
  if (code === 'ETIMEDOUT' || /timeout|timed out/i.test(message)) {
    return make(
      `no answer from ${target} in time; check that Redis runs there and no firewall drops the connection, or fix REDIS_URL`,
    );
  }
  return make(`cannot use ${target}: ${message}; check REDIS_URL and the Redis log`);
}
