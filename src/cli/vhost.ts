import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { inheritedEnv } from '../config/config';

const execFileAsync = promisify(execFile);
/** rabbitmqctl with this process's environment (its PATH decides which rabbitmqctl runs). */
const run = (file: string, args: string[], options: { timeout: number }): Promise<{ stdout: string }> =>
  execFileAsync(file, args, { ...options, env: inheritedEnv() });

/** Options of {@link createVhost}. */
export interface CreateVhostOptions {
  /** Broker URL whose host and credentials are reused; only its vhost changes. */
  baseUrl: string;
  /** Name of the vhost to create. */
  vhost: string;
  /** The rabbitmqctl binary. @defaultValue `'rabbitmqctl'` */
  rabbitmqctl?: string;
}

/** A vhost made for one run, and how to remove it. */
export interface TemporaryVhost {
  vhost: string;
  /** `baseUrl` pointing at the new vhost. */
  url: string;
  /** Deletes the vhost and everything in it. Idempotent. */
  remove(): Promise<void>;
}

/** True when `url` points at a broker on this machine, where rabbitmqctl can manage it. */
export function isLocalBroker(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '[::1]';
  } catch {
    return false;
  }
}

/** `url` with its vhost replaced by `vhost` (percent-encoded, so `/` in a name survives). */
export function withVhost(url: string, vhost: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(vhost)}`;
  return u.toString();
}

/**
 * Creates a vhost with `rabbitmqctl add_vhost` and gives the URL's user every permission on it.
 * Used by the demo and the integration tests so that their durable queues never mix with a real
 * pipeline's. Needs rabbitmqctl and the right to run it (the Erlang cookie); rejects otherwise.
 */
export async function createVhost(options: CreateVhostOptions): Promise<TemporaryVhost> {
  const ctl = options.rabbitmqctl ?? 'rabbitmqctl';
  const user = decodeURIComponent(new URL(options.baseUrl).username) || 'guest';
  await run(ctl, ['add_vhost', options.vhost], { timeout: 30_000 });
  let removed: Promise<void> | null = null;
  const remove = (): Promise<void> => {
    removed ??= run(ctl, ['delete_vhost', options.vhost], { timeout: 30_000 }).then(() => undefined);
    return removed;
  };
  try {
    await run(ctl, ['set_permissions', '-p', options.vhost, user, '.*', '.*', '.*'], { timeout: 30_000 });
  } catch (err) {
    await remove().catch(() => undefined);
    throw err;
  }
  return { vhost: options.vhost, url: withVhost(options.baseUrl, options.vhost), remove };
}

/**
 * The number of consumers on `vhost` (`rabbitmqctl list_consumers`). `rabbitmqctl add_vhost` succeeds
 * on a vhost that already exists, so a private run checks this before it publishes: a consumer there
 * means someone else's pipeline would take its bars.
 */
export async function vhostConsumerCount(vhost: string, rabbitmqctl = 'rabbitmqctl'): Promise<number> {
  const { stdout } = await run(rabbitmqctl, ['list_consumers', '-p', vhost, '-q', '--no-table-headers'], {
    timeout: 30_000,
  });
  return stdout.split('\n').filter((line) => line.trim() !== '').length;
}
