import * as amqp from 'amqplib';
import type { ChannelModel, RecoveringChannelModel } from 'amqplib';
import { BrokerConnectionError } from '../errors';
import { PipelineEvent, pipelineEvents } from '../observability/events';
import type { Logger } from '../observability/logger';
import { declareTopology, type TopologyOptions } from './topology';

/** Something that opens its channels on every (re)connect and forgets them on disconnect. */
export interface ConnectionAttachment {
  /** Called after every successful connect, after the topology is declared. */
  attach(model: ChannelModel): Promise<void>;
  /** Called when the connection is lost; channels are already dead. */
  detach(): void;
}

/** Options of {@link BrokerConnection}. */
export interface BrokerConnectionOptions extends TopologyOptions {
  /** Broker URL (a vhost in the path is honoured). */
  url: string;
  /** Name shown in the broker's connection list. */
  connectionName: string;
  /** Heartbeat interval. @defaultValue 10 */
  heartbeatSeconds?: number;
  /** Reconnect attempts before the first successful connect. @defaultValue 10 */
  initialMaxRetries?: number;
  /** Called when recovery gives up; defaults to {@link BrokerConnection.onFatal}. */
  onFatalReconnect?: (err: Error) => void;
  log: Logger;
}

/**
 * Broker errors that no reconnect will fix: access refused, not found, precondition failed, not
 * allowed, and command invalid (503: an exchange type the broker does not know, i.e. the
 * consistent-hash plugin is not enabled).
 */
const FATAL_REPLY_CODES = new Set([403, 404, 406, 503, 530]);

/** True for a broker error that no reconnect or restart will fix (see {@link FATAL_REPLY_CODES}). */
export function isFatalBrokerError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && FATAL_REPLY_CODES.has(code);
}

/**
 * One AMQP connection per process, using amqplib's own recovery (amqplib >= 1.1): on every connect
 * the topology is declared again and every attachment reopens its channels. Emits nothing itself;
 * reconnects and `blocked` go to {@link pipelineEvents}. A fatal broker error (access refused, not
 * found, precondition failed) is reported through `onFatal`, which crashes the worker.
 */
export class BrokerConnection {
  private model: RecoveringChannelModel | null = null;
  private readonly attachments: ConnectionAttachment[] = [];
  private blocked = false;
  private unblockWaiters: (() => void)[] = [];
  private stopPromise: Promise<void> | null = null;
  private connectedOnce = false;
  /** Called with an error no reconnect can fix. */
  onFatal: (err: Error) => void = () => undefined;

  constructor(private readonly options: BrokerConnectionOptions) {}

  /** Registers a component whose channels follow the connection. Call before {@link start}. */
  attach(attachment: ConnectionAttachment): void {
    this.attachments.push(attachment);
  }

  /** True while the broker has blocked this connection (memory or disk alarm). */
  get isBlocked(): boolean {
    return this.blocked;
  }

  /** Resolves when the connection is not blocked. */
  whenUnblocked(): Promise<void> {
    if (!this.blocked) return Promise.resolve();
    return new Promise((resolve) => this.unblockWaiters.push(resolve));
  }

  /** Connects (retrying with backoff), declares the topology and attaches every component. */
  async start(): Promise<void> {
    const { log } = this.options;
    const setup = async (model: ChannelModel): Promise<void> => {
      const channel = await model.createChannel();
      channel.on('error', (err: Error) => log.warn({ err }, 'topology channel error'));
      try {
        await declareTopology(channel, this.options);
      } catch (err) {
        this.reportIfFatal(err);
        throw err;
      }
      await channel.close().catch(() => undefined);
      for (const attachment of this.attachments) await attachment.attach(model);
      if (this.connectedOnce) pipelineEvents.emit(PipelineEvent.Reconnect, { component: this.options.connectionName });
      this.connectedOnce = true;
      log.info('broker connected and topology declared');
    };
    try {
      this.model = await amqp.connect(withHeartbeat(this.options.url, this.options.heartbeatSeconds ?? 10), {
        noDelay: true, // Nagle adds ~40 ms to a lone publish (DESIGN.md section 4)
        clientProperties: { connection_name: this.options.connectionName },
        recovery: {
          initialDelay: 100,
          maxDelay: 5000,
          factor: 2,
          jitter: 0.2,
          maxRetries: Infinity,
          initialMaxRetries: this.options.initialMaxRetries ?? 10,
          setup,
        },
      });
    } catch (err) {
      throw new BrokerConnectionError(`cannot connect to the broker at ${redact(this.options.url)}`, {
        cause: err,
      });
    }
    const model = this.model;
    model.on('error', (err: Error) => {
      log.warn({ err }, 'broker connection error');
      this.reportIfFatal(err);
    });
    model.on('handler-error', (err: Error, event: string) => log.error({ err, event }, 'broker handler threw'));
    model.on('disconnect', (err: Error) => {
      log.warn({ err: err?.message }, 'broker disconnected; recovering');
      for (const attachment of this.attachments) attachment.detach();
    });
    model.on('reconnect-failed', (err: Error) => this.options.onFatalReconnect?.(err) ?? this.onFatal(err));
    model.on('blocked', (reason: string) => {
      this.blocked = true;
      log.warn({ reason }, 'broker blocked the connection');
      pipelineEvents.emit(PipelineEvent.Blocked, { blocked: true });
    });
    model.on('unblocked', () => {
      this.blocked = false;
      log.info('broker unblocked the connection');
      pipelineEvents.emit(PipelineEvent.Blocked, { blocked: false });
      const waiters = this.unblockWaiters;
      this.unblockWaiters = [];
      for (const w of waiters) w();
    });
  }

  private reportIfFatal(err: unknown): void {
    if (isFatalBrokerError(err)) {
      this.onFatal(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Closes the connection (idempotent). */
  stop(): Promise<void> {
    if (this.stopPromise === null) {
      this.stopPromise = (async () => {
        const model = this.model;
        this.model = null;
        if (model !== null) await model.close().catch(() => undefined);
      })();
    }
    return this.stopPromise;
  }
}

/** The URL without its password, for logs and errors. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}

/** Adds `?heartbeat=` to the URL unless it already sets one. */
function withHeartbeat(url: string, heartbeatSeconds: number): string {
  const u = new URL(url);
  if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(heartbeatSeconds));
  return u.toString();
}
