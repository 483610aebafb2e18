import type { ChannelModel } from 'amqplib';
import { inspect } from 'node:util';
import pino from 'pino';
import { connectFirstLive, redact } from '../broker/broker-connection';
import type { PipelineConfig } from '../config/config';
import { BrokerConnectionError, PipelineError } from '../errors';
import type { Logger } from '../observability/logger';
import { BarProducer, type BarProducerOptions } from '../producers/bar-producer';
import { loadShardLayout } from '../supervisor/shard-layout';

/** Exit codes of the CLI (sysexits-style where one fits). */
export const ExitCode = {
  Ok: 0,
  /** The command ran and something failed (a publish, a result count not reached, rejected rows). */
  Failure: 1,
  /** Bad flags or arguments. */
  Usage: 64,
  /**
   * Cannot start as configured: a bad or misspelt setting, an unknown vhost, refused credentials, an
   * unreachable broker. One line on stderr names the setting and the fix. Same code as `npm start`.
   */
  Config: 2,
  /** Interrupted by SIGINT after a clean stop. */
  Interrupted: 130,
} as const;

/** A command line the CLI cannot run; printed with the command's usage. */
export class CliUsageError extends PipelineError {
  constructor(message: string) {
    super('CLI_USAGE', message, false);
  }
}

/**
 * `-h`/`--help` on a command line: {@link parseCommandLine} throws it, and whoever runs the command
 * (the `pipeline` CLI, `npm run demo`) prints the command's usage and exits 0.
 */
export class HelpRequested extends Error {
  constructor() {
    super('help requested');
    this.name = 'HelpRequested';
  }
}

/** What every command receives. */
export interface CommandContext {
  config: PipelineConfig;
  /** Logger writing to stderr, so that stdout stays the command's output. */
  log: Logger;
  /** Human output (summaries, tables). */
  out: NodeJS.WritableStream;
  /** Diagnostics and progress. */
  err: NodeJS.WritableStream;
}

/** A subcommand: its usage text and its runner, which returns the exit code. */
export interface Command {
  usage: string;
  /** Needs no broker (e.g. `report` reads a file): the CLI skips its broker check. */
  offline?: boolean;
  run(args: string[], ctx: CommandContext): Promise<number>;
}

/**
 * The CLI's logger: pino JSON to stderr (stdout carries results), at `warn` unless `verbose`, when
 * it uses the configured `LOG_LEVEL`.
 */
export function cliLogger(config: PipelineConfig, verbose: boolean): Logger {
  return pino({ level: verbose ? config.logLevel : 'warn', base: { component: 'cli' } }, pino.destination(2));
}

/** Opens a plain connection for a short-lived command (no recovery: the command just fails). */
export async function connectBroker(config: PipelineConfig, connectionName: string): Promise<ChannelModel> {
  try {
    const model = await connectFirstLive(config.amqpUrl, {
      noDelay: true,
      clientProperties: { connection_name: connectionName },
    });
    model.on('error', () => undefined); // surfaced through the failing channel operation instead
    return model;
  } catch (err) {
    throw new BrokerConnectionError(`cannot connect to the broker at ${redact(config.amqpUrl)}`, { cause: err });
  }
}

/** Parses a non-negative number flag (`integer`: whole numbers only); `fallback` when absent. */
export function numberFlag(name: string, value: string | undefined, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(integer ? Number.isInteger(n) : Number.isFinite(n)) || n < 0) throw new CliUsageError(`--${name} must be a non-negative ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`);
  return n;
}

/** Parses a non-negative integer flag. */
export const intFlag = (name: string, value: string | undefined, fallback: number): number => numberFlag(name, value, fallback, true);

/** A message for a person: the error's message and its causes. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    parts.push(current instanceof Error ? current.message : typeof current === 'string' ? current : inspect(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}

/** Formats a number of milliseconds for a summary. */
export function ms(value: number | null): string {
  if (value === null || Number.isNaN(value)) return 'n/a';
  return value >= 100 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`;
}

/** True when the broker reports the queue does not exist (reply 404 on a passive declare). */
export function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 404;
}

/**
 * A bar producer on the pipeline's broker, settings and topology: it declares the pipeline's shard
 * count and recorded shard layout (read again on every reconnect), so the queues and bindings it
 * declares are the running pipeline's. The one place the CLI's producers are built.
 */
export function pipelineProducer(
  config: PipelineConfig,
  log: Logger,
  options: Pick<BarProducerOptions, 'connectionName'> & Partial<Pick<BarProducerOptions, 'maxUnconfirmed' | 'closeTimeoutMs'>>,
): BarProducer {
  return new BarProducer({
    url: config.amqpUrl,
    queueType: config.queueType,
    maxAttempts: config.maxAttempts,
    shards: config.shards,
    layout: () => loadShardLayout(config, log),
    confirmTimeoutMs: config.publishTimeoutMs,
    log,
    ...options,
  });
}
