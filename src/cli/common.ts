import type { Channel, ChannelModel } from 'amqplib';
import { InvalidArgumentError, Option, type Command as Commander } from 'commander';
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

/** A command line the CLI cannot run: one line on stderr with how to get the command's help, exit 64. */
export class CliUsageError extends PipelineError {
  constructor(message: string) {
    super('CLI_USAGE', message, false);
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

/** One option of a command, declared to commander (which parses it and lists it in --help). */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Its line in --help. */
  description: string;
  /** A one-letter alias (`-p`). */
  short?: string;
  /** May be repeated: the values come as a list. */
  multiple?: boolean;
  /** Its value when absent (shown by --help); already parsed when the option has `parse`. */
  default?: unknown;
  /** Turns the text into the value (see {@link integer}, {@link decimal}); a bad value is refused before the command runs. */
  parse?: (value: string) => unknown;
  /** The name of its value in --help: `--count <N>`. @defaultValue value */
  value?: string;
  /** The values it accepts (commander refuses others). */
  choices?: readonly string[];
}

/** A command's options: name (`'max-unconfirmed'`, `'no-announce'`) → declaration. */
export type OptionTable = Readonly<Record<string, OptionSpec>>;

type OptionValue<S extends OptionSpec> = S extends { parse: (value: string) => infer T }
  ? T
  : S['type'] extends 'boolean'
    ? boolean
    : S extends { multiple: true }
      ? string[]
      : string;

/** An option's value: always there when it has a default. */
type OptionValues<O extends OptionTable> = { -readonly [K in keyof O as O[K] extends { default: unknown } ? K : never]: OptionValue<O[K]> } & {
  -readonly [K in keyof O as O[K] extends { default: unknown } ? never : K]?: OptionValue<O[K]>;
};

/** What a command receives: its options by their own names (absent when not given and without default), its arguments. */
export interface ParsedCommandLine<O extends OptionTable = OptionTable> {
  values: (string extends keyof O ? Record<string, unknown> : OptionValues<O>) & {
    verbose?: boolean;
  };
  /** The subcommand first (`list`), then the arguments. */
  positionals: string[];
}

/** A subcommand (`pipeline dlq list`): what --help says of it, its arguments and which of the command's options it takes. */
export interface Subcommand<O extends OptionTable = OptionTable> {
  description: string;
  /** Its arguments in commander syntax (`<version>`, `[files...]`); none when absent. */
  args?: string;
  /** The names of the command's options it takes. @defaultValue all of them */
  options?: readonly (keyof O & string)[];
}

/**
 * A `pipeline` command: its options and arguments (commander parses them and prints --help from
 * them; `--verbose` and `-h`/`--help` are common to all) and its runner, which returns the exit code.
 */
export interface Command<O extends OptionTable = OptionTable> {
  /** Its arguments in commander syntax (`<file>`, `[files...]`); none when absent. */
  args?: string;
  options?: O;
  subcommands?: Readonly<Record<string, Subcommand<O>>>;
  /** What --help prints after the options: what the command does, its exit status. */
  help?: string;
  /** Needs no broker (e.g. `report` reads a file): the CLI skips its broker check. */
  offline?: boolean;
  run(parsed: ParsedCommandLine<O>, ctx: CommandContext): Promise<number>;
}

/** A command with its option types inferred from its table. */
export function defineCommand<const O extends OptionTable>(command: Command<O>): Command {
  return command as unknown as Command;
}

/** Declares `options` on `cmd` (with the common --verbose); returns how to read them back under their own names. */
export function declareOptions(cmd: Commander, options: OptionTable): () => ParsedCommandLine['values'] {
  const declared: { name: string; option: Option; hasDefault: boolean }[] = [];
  for (const [name, spec] of Object.entries<OptionSpec>({ ...options, verbose: { type: 'boolean', description: 'log at LOG_LEVEL (default: warnings only) to stderr' } })) {
    const value = spec.type === 'string' ? ` <${spec.value ?? 'value'}>` : '';
    const option = new Option(`${spec.short === undefined ? '' : `-${spec.short}, `}--${name}${value}`, spec.description);
    const parse = spec.parse;
    if (spec.multiple === true) option.argParser((v: string, previous: string[] | undefined) => [...(previous ?? []), v]);
    else if (parse !== undefined) option.argParser((v: string) => parse(v));
    if (spec.choices !== undefined) option.choices(spec.choices);
    if (spec.default !== undefined) option.default(spec.default);
    cmd.addOption(option);
    declared.push({ name, option, hasDefault: spec.default !== undefined });
  }
  return () => {
    const values: ParsedCommandLine['values'] = {};
    for (const { name, option, hasDefault } of declared) {
      const key = option.attributeName();
      // commander reads a boolean "--no-x" as x = false; the command reads it as the flag no-x.
      if (cmd.getOptionValueSource(key) === 'cli') values[name] = option.negate ? cmd.getOptionValue(key) !== true : cmd.getOptionValue(key);
      else if (hasDefault) values[name] = cmd.getOptionValue(key);
    }
    return values;
  };
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

/** A value parser: a whole number from `min` to `max`. */
export function integer(min = 0, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `It must be an integer >= ${min}.` : `It must be an integer from ${min} to ${max}.`);
    return n;
  };
}

/** A value parser: a finite number from `min` to `max`. */
export function decimal(min = 0, max = Infinity): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max)
      throw new InvalidArgumentError(max === Infinity ? `It must be a number >= ${min}.` : `It must be a number from ${min} to ${max}.`);
    return n;
  };
}

/** Whether `queue` exists on the vhost; when not, says so on stderr with `hint` (what should have made it). */
export async function queueExists(channel: Channel, queue: string, ctx: CommandContext, hint: string): Promise<boolean> {
  try {
    await channel.checkQueue(queue);
    return true;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    ctx.err.write(`queue ${queue} does not exist on this vhost: ${hint}\n`);
    return false;
  }
}

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
