/**
 * Option parsing of every `pipeline` command, on commander. Commands declare their options in the
 * `node:util` `parseArgs` table shape (name → `{ type, short?, multiple?, default? }`) and get back the
 * same `{ values, positionals }` result, keyed by the option's own name (`'max-unconfirmed'`, not
 * commander's camel case). A command line commander refuses (unknown option, missing value, extra
 * argument) becomes a {@link CliUsageError}: the CLI prints it with the command's usage and exits 64.
 *
 * Every command also takes the common options, which it need not declare: `--verbose` (returned as
 * `values.verbose`) and `-h`/`--help`, which throws {@link HelpRequested} before anything else is
 * checked, so no command runs its work when asked for help.
 */
import { Command as Commander, CommanderError, Option } from 'commander';
import type { parseArgs } from 'node:util';
import { CliUsageError, HelpRequested } from './common';

/** The option table and flags {@link parseCommandLine} accepts (those of `parseArgs`). */
export type CommandLineConfig = NonNullable<Parameters<typeof parseArgs>[0]>;

/** The options every command takes without declaring them. */
const COMMON_OPTIONS: NonNullable<CommandLineConfig['options']> = { verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } };

/**
 * What {@link parseCommandLine} returns: the type `parseArgs` would give for the same table, plus
 * the common `--verbose` flag.
 */
export type ParsedCommandLine<T extends CommandLineConfig> = ReturnType<typeof parseArgs<T>> & { values: { verbose?: boolean } };

/** Parses `config.args` with commander; see the module comment. */
export function parseCommandLine<T extends CommandLineConfig>(config: T): ParsedCommandLine<T> {
  const cmd = new Commander()
    .exitOverride()
    .helpOption(false)
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined, outputError: () => undefined })
    .allowExcessArguments(false);
  if (config.allowPositionals === true) cmd.argument('[arguments...]');
  const declared: { name: string; option: Option; negated: boolean; hasDefault: boolean }[] = [];
  for (const [name, spec] of Object.entries({ ...COMMON_OPTIONS, ...config.options })) {
    const flags = `${spec.short === undefined ? '' : `-${spec.short}, `}--${name}${spec.type === 'string' ? ' <value>' : ''}`;
    const option = new Option(flags);
    if (spec.multiple === true) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    if (spec.default !== undefined) option.default(spec.default);
    cmd.addOption(option);
    // commander reads a boolean "--no-x" as x = false (default true); parseArgs as "no-x" = true.
    declared.push({ name, option, negated: option.negate, hasDefault: spec.default !== undefined });
  }
  try {
    cmd.parse(config.args ?? [], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new CliUsageError(err.message.replace(/^error: /, ''));
    throw err;
  }
  if (cmd.getOptionValue('help') === true) throw new HelpRequested();
  const values: Record<string, unknown> = {};
  for (const { name, option, negated, hasDefault } of declared) {
    const key = option.attributeName();
    const source = cmd.getOptionValueSource(key);
    if (source === 'cli') values[name] = negated ? cmd.getOptionValue(key) !== true : cmd.getOptionValue(key);
    else if (hasDefault) values[name] = cmd.getOptionValue(key);
  }
  return { values, positionals: [...cmd.args], tokens: undefined } as unknown as ParsedCommandLine<T>;
}
