/**
 * Start-up checks of the broker, run by the supervisor, every worker and every CLI command before
 * anything else: can we reach it, log in, open the vhost, and (when the configuration needs it) use
 * the consistent-hash exchange? Each failure becomes a {@link StartupError} with one line that names
 * the setting and the fix, so that a wrong vhost or password stops the process with exit code 2
 * instead of a reconnect loop (amqplib retries an unknown vhost like a network error).
 */
import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { errorMessage, StartupError } from '../errors';
import { brokerUrls, connectFirstLive, redact } from './broker-connection';
import { RING_EXCHANGE_TYPE } from './topology';
import { isTransientSocketError, retryWhileTransient } from '../util/retry-while-transient';

/** Options of {@link brokerPreflight}. */
export interface BrokerPreflightOptions {
  /** Broker URL (AMQP_URL), or several separated by commas (the nodes of one cluster). */
  url: string;
  /**
   * Whether the configuration needs the `rabbitmq_consistent_hash_exchange` plugin (more than one
   * shard). Checked by declaring and deleting a throwaway `x-consistent-hash` exchange.
   * @defaultValue false
   */
  needsConsistentHash?: boolean;
  /**
   * How long to keep trying while the broker is merely unreachable (connection refused, reset,
   * timed out: a broker still starting). Wrong credentials, vhost or URL fail at once. @defaultValue 5000
   */
  waitMs?: number;
  /** Name shown in the broker's connection list. @defaultValue `'pipeline-preflight'` */
  connectionName?: string;
}

/** Where a broker URL points, for the "talking to" line (never the password). */
export interface BrokerTarget {
  /** `host:port`. */
  broker: string;
  vhost: string;
  user: string;
}

/** Host, port, vhost and user of an AMQP URL (amqplib's defaults: port 5672/5671, vhost `/`, guest). */
export function brokerTarget(url: string): BrokerTarget {
  const u = new URL(url);
  const port = u.port !== '' ? u.port : u.protocol === 'amqps:' ? '5671' : '5672';
  const path = u.pathname;
  return {
    broker: `${u.hostname}:${port}`,
    vhost: path === '' || path === '/' ? '/' : decodeURIComponent(path.slice(1)),
    user: u.username === '' ? 'guest' : decodeURIComponent(u.username),
  };
}

/**
 * One line for a person: `broker 127.0.0.1:5672, vhost "x", user guest`; for a cluster
 * `brokers 127.0.0.1:5681,127.0.0.1:5682, vhost "x", user guest`.
 */
export function describeBrokerTarget(url: string): string {
  try {
    const urls = brokerUrls(url);
    const t = brokerTarget(urls[0] ?? url);
    if (urls.length > 1) {
      return `brokers ${urls.map((u) => brokerTarget(u).broker).join(',')}, vhost ${JSON.stringify(t.vhost)}, user ${t.user}`;
    }
    return `broker ${t.broker}, vhost ${JSON.stringify(t.vhost)}, user ${t.user}`;
  } catch {
    return `broker ${redact(url)}`;
  }
}

/**
 * Connects once (retrying only while the broker is unreachable, up to `waitMs`), opens a channel,
 * checks the consistent-hash plugin when asked, and closes. Rejects with a {@link StartupError}.
 */
export async function brokerPreflight(options: BrokerPreflightOptions): Promise<void> {
  const setting = options.url;
  const urls = brokerUrls(setting);
  for (const one of urls.length > 0 ? urls : [setting]) parseTarget(one);
  // With several nodes, the first that answers is checked (a node down does not stop a start).
  const url = urls[0] ?? setting;
  const target = urls.length > 1 ? { ...parseTarget(url), broker: urls.map((u) => brokerTarget(u).broker).join(',') } : parseTarget(url);
  let model: amqp.ChannelModel;
  try {
    model = await retryWhileTransient(
      () =>
        connectFirstLive(setting, {
          timeout: 5000,
          clientProperties: { connection_name: options.connectionName ?? 'pipeline-preflight' },
        }),
      isTransientSocketError,
      options.waitMs ?? 5000,
    );
  } catch (err) {
    throw classifyBrokerError(err, target, setting);
  }
  // Errors surface through the failing call below; without a listener one would crash the process.
  model.on('error', () => undefined);
  try {
    const channel = await model.createChannel();
    channel.on('error', () => undefined);
    if (options.needsConsistentHash === true) await checkConsistentHash(channel, target);
  } catch (err) {
    throw err instanceof StartupError ? err : classifyBrokerError(err, target, setting);
  } finally {
    await model.close().catch(() => undefined);
  }
}

async function checkConsistentHash(channel: amqp.Channel, target: BrokerTarget): Promise<void> {
  const name = `pipeline.preflight.${randomUUID()}`;
  try {
    await channel.assertExchange(name, RING_EXCHANGE_TYPE, { durable: false, autoDelete: true });
  } catch (err) {
    // 503 COMMAND_INVALID - unknown exchange type 'x-consistent-hash' (closes the connection)
    throw new StartupError(
      'PIPELINE_SHARDS',
      `PIPELINE_SHARDS: more than one shard needs the RabbitMQ plugin rabbitmq_consistent_hash_exchange, which broker ${target.broker} does not have; enable it (rabbitmq-plugins enable rabbitmq_consistent_hash_exchange) or set PIPELINE_SHARDS=1`,
      { cause: err },
    );
  }
  await channel.deleteExchange(name);
}

function parseTarget(url: string): BrokerTarget {
  try {
    const u = new URL(url);
    if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:')
      throw new Error(`protocol ${u.protocol}`);
    return brokerTarget(url);
  } catch (err) {
    throw new StartupError(
      'AMQP_URL',
      `AMQP_URL: ${redact(url)} is not a valid broker URL; use amqp://user:password@host:5672/vhost (percent-encode a "/" in the vhost as %2F)`,
      { cause: err },
    );
  }
}

/** Turns an amqplib connect or channel error into one actionable line. */
export function classifyBrokerError(err: unknown, target: BrokerTarget, url: string): StartupError {
  const message = errorMessage(err);
  const code = (err as { code?: unknown } | null)?.code;
  const at = `broker ${target.broker}`;
  const vhost = JSON.stringify(target.vhost);
  const make = (text: string): StartupError =>
    new StartupError('AMQP_URL', `AMQP_URL: ${text}`, { cause: err });
  // amqplib reports the broker closing the connection at connection.open (530 NOT_ALLOWED) without
  // its reply text: the vhost does not exist, or the user has no permissions on it.
  if (code === 530 || /NOT_ALLOWED|Expected ConnectionOpenOk; got <ConnectionClose/.test(message)) {
    return make(
      `${at} refused vhost ${vhost} for user ${target.user}: it does not exist or the user has no permissions on it; create it (rabbitmqctl add_vhost ${target.vhost} && rabbitmqctl set_permissions -p ${target.vhost} ${target.user} ".*" ".*" ".*") or fix the vhost in AMQP_URL`,
    );
  }
  if (code === 403 || /ACCESS[-_]REFUSED/.test(message)) {
    return make(
      `${at} refused the login of user ${target.user} (wrong user or password, or a user such as guest that may only connect from localhost); fix the credentials in AMQP_URL`,
    );
  }
  if (code === 'ECONNREFUSED') {
    return make(
      `nothing accepts connections at ${at} (${redact(url)}); start RabbitMQ or fix the host and port in AMQP_URL`,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return make(
      `host ${target.broker.replace(/:\d+$/, '')} not found (DNS); fix the host in AMQP_URL`,
    );
  }
  if (code === 'ETIMEDOUT' || /timeout/i.test(message)) {
    return make(
      `no answer from ${at} in time; check that RabbitMQ runs there and that no firewall drops the connection, or fix AMQP_URL`,
    );
  }
  if (/Expected amqp: or amqps:|Invalid URL|URI malformed/i.test(message)) {
    return make(
      `${redact(url)} is not a valid broker URL; use amqp://user:password@host:5672/vhost`,
    );
  }
  if (/wrong version|SSL|TLS|certificate/i.test(message)) {
    return make(
      `TLS handshake with ${at} failed (${message}); use amqp:// for a plain port or amqps:// with the TLS port`,
    );
  }
  return make(`cannot use ${at}, vhost ${vhost}: ${message}; check AMQP_URL and the broker's log`);
}

/**
 * One line for a broker error that no reconnect fixes, met after the start (a worker declaring its
 * topology or consuming): 403, 404, 406, 503 or 530. Names the setting to look at.
 */
export function describeFatalBrokerError(err: Error): string {
  const code = (err as { code?: unknown }).code;
  const text = err.message.replace(/\s+/g, ' ');
  if (code === 406 || /PRECONDITION/.test(text)) {
    return `PIPELINE_QUEUE_TYPE: a queue exists with other arguments than this configuration declares (PIPELINE_QUEUE_TYPE or PIPELINE_MAX_ATTEMPTS changed on a vhost that has the queues); use a new vhost in AMQP_URL, set the values the queues were made with, or delete the queues (broker said: ${text})`;
  }
  if (code === 503 || /unknown exchange type/.test(text)) {
    return `PIPELINE_SHARDS: the broker does not know an exchange type the pipeline declares (more than one shard needs the plugin rabbitmq_consistent_hash_exchange); enable it (rabbitmq-plugins enable rabbitmq_consistent_hash_exchange) or set PIPELINE_SHARDS=1 (broker said: ${text})`;
  }
  if (code === 403 || /ACCESS[-_]REFUSED/.test(text)) {
    return `AMQP_URL: the user lacks a permission on this vhost (configure, write or read); grant it (rabbitmqctl set_permissions -p <vhost> <user> ".*" ".*" ".*") or use another user in AMQP_URL (broker said: ${text})`;
  }
  if (code === 530 || /NOT_ALLOWED/.test(text)) {
    return `AMQP_URL: the broker refused the vhost (deleted, or the permissions were revoked); recreate it or fix the vhost in AMQP_URL (broker said: ${text})`;
  }
  return `AMQP_URL: the broker refused an operation no retry can fix; check the vhost in AMQP_URL and the broker's log (broker said: ${text})`;
}
