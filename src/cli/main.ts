/**
 * `pipeline <command>`: the one command line of the bar pipeline (publish bars, follow results,
 * replay recorded bars, manage dead letters, state and model versions, evaluate the agents). One
 * commander program: every command declares its options and arguments ({@link Command}), commander
 * parses them and prints `--help` from them before anything else happens. Every command reads its
 * settings (AMQP_URL with its vhost, REDIS_URL, ...) through `loadConfig()`.
 */
import { Command as Commander, CommanderError } from 'commander';
import { brokerPreflight, describeBrokerTarget } from '../broker/preflight';
import { loadConfig } from '../config/config';
import { ConfigError, StartupError } from '../errors';
import { rootLogger } from '../observability/logger';
import { buildWasmCommand } from './build-dense-wasm';
import { confidenceTradeoffCommand } from './confidence-tradeoff';
import { CliUsageError, ExitCode, cliLogger, declareOptions, describeError, type Command, type OptionTable, type ParsedCommandLine } from './common';
import { dlqCommand } from './dlq-command';
import { evalCommand } from './eval-command';
import { feedCommand } from './feed-command';
import { fitModelsCommand } from './fit-models';
import { mappoCheckCommand } from './mappo-check';
import { modelsCommand } from './models-command';
import { publishCommand } from './publish-command';
import { regimeReportCommand } from './regime-report';
import { replayCommand } from './replay-command';
import { reportCommand } from './report-command';
import { resampleCsvCommand } from './resample-csv';
import { resultsCommand } from './results-command';
import { shardsCommand } from './shards-command';
import { stateCommand } from './state-command';

/** A command of the tree: its name, the line `pipeline --help` shows, and the command itself. */
export interface CommandEntry {
  name: string;
  summary: string;
  command: Command;
  /** Listed under "Development tools" in `pipeline --help`. */
  dev?: boolean;
}

/** Every `pipeline` command. */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'publish', summary: 'publish bars from CSV files or a synthetic market, with confirms and a progress bar', command: publishCommand },
  { name: 'feed', summary: 'publish live 5m bars from an exchange (binance: closed candles, warm-up and gaps from REST) until SIGTERM', command: feedCommand },
  { name: 'results', summary: 'follow the integrated results (consumes them unless --peek) as JSON lines or a table', command: resultsCommand },
  { name: 'replay', summary: 'push recorded CSV bars through the workers (own vhost, training off), results as JSON lines', command: replayCommand },
  { name: 'report', summary: 'write the self-contained HTML report of a results file (see docs/replay.md)', command: reportCommand },
  { name: 'dlq', summary: 'list, replay or purge dead letters', command: dlqCommand },
  { name: 'state', summary: 'check the Redis state epoch, or accept a loss of Redis state (see docs/redis-loss.md)', command: stateCommand },
  { name: 'shards', summary: 'change the number of shards with bars flowing (see docs/scaling.md)', command: shardsCommand },
  { name: 'models', summary: 'list, promote, roll back or train versions of the trading agents', command: modelsCommand },
  { name: 'eval', summary: 'evaluate a model version against baselines on held-out bars (HTML and JSON report)', command: evalCommand },
  { name: 'mappo-check', summary: 'proof of learning: MAPPO on the two-step game for several seeds', command: mappoCheckCommand, dev: true },
  { name: 'regime-report', summary: 'how the regime model and its confidence do on market families and real bars', command: regimeReportCommand, dev: true },
  { name: 'fit-models', summary: 'refit the regime and confidence models (prints the weights to paste)', command: fitModelsCommand, dev: true },
  { name: 'confidence-tradeoff', summary: 'compare re-weighted and recalibrated confidence models on held-out markets', command: confidenceTradeoffCommand, dev: true },
  { name: 'resample-csv', summary: 'turn a CSV of 5m bars into one of 30m bars', command: resampleCsvCommand, dev: true },
  { name: 'build-wasm', summary: 'compile the dense-layer WebAssembly module from its .wat source', command: buildWasmCommand, dev: true },
];

const HELP_AFTER = `
Run "pipeline <command> --help" for a command's options (it has no other effect). The demo is "npm run demo".
Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672; a vhost in the path is honoured),
LOG_LEVEL (with --verbose), PIPELINE_* (see src/config/config.ts). Every command that talks to the
broker prints the broker and vhost it uses to stderr.
Exit status: 0 done; 1 the command failed; 2 bad or misspelt setting, unknown vhost, refused
credentials or unreachable broker (one line names the setting and the fix); 64 bad arguments.`;

/** Where {@link runCli} reads its environment and writes its output. */
export interface RunCliOptions {
  /** The settings; undefined: this process's environment (read by loadConfig). */
  env?: NodeJS.ProcessEnv;
  /** Command output. @defaultValue process.stdout */
  out?: NodeJS.WritableStream;
  /** Diagnostics. @defaultValue process.stderr */
  err?: NodeJS.WritableStream;
}

/** The `pipeline` command tree; `run` is called with the chosen entry and its parsed command line. */
function buildProgram(
  path: string,
  out: NodeJS.WritableStream,
  errOut: NodeJS.WritableStream,
  run: (entry: CommandEntry, parsed: ParsedCommandLine) => Promise<void>,
): Commander {
  const program = new Commander('pipeline')
    .description('The command line of the multi-timeframe market-bar pipeline.')
    .usage('<command> [options]')
    .exitOverride()
    .helpCommand(false)
    .configureOutput({
      writeOut: (s) => void out.write(s),
      writeErr: (s) => void errOut.write(s),
      // One line naming the command, what is wrong and where its options are.
      outputError: (s) => void errOut.write(`${path}: ${s.replace(/^error: /, '').trimEnd()} (see "${path} --help")\n`),
    })
    .configureHelp({ sortSubcommands: false, subcommandTerm: (c) => c.name(), helpWidth: 100 })
    .addHelpText('after', HELP_AFTER);
  const declare = (cmd: Commander, args: string | undefined, options: OptionTable, entry: CommandEntry, sub?: string): void => {
    const values = declareOptions(cmd, options);
    cmd.allowExcessArguments(false);
    if (args !== undefined) cmd.argument(args);
    cmd.action(async () => run(entry, { values: values(), positionals: [...(sub === undefined ? [] : [sub]), ...cmd.args] }));
  };
  for (const entry of COMMANDS) {
    const { name, command } = entry;
    const cmd = program.command(name, { hidden: entry.dev === true }).description(entry.summary);
    if (command.help !== undefined) cmd.addHelpText('after', `\n${command.help}`);
    const options = command.options ?? {};
    if (command.subcommands === undefined) {
      declare(cmd, command.args, options, entry);
      continue;
    }
    for (const [subName, sub] of Object.entries(command.subcommands)) {
      const own = Object.fromEntries(Object.entries(options).filter(([o]) => sub.options?.includes(o) ?? true));
      declare(cmd.command(subName).description(sub.description), sub.args, own, entry, subName);
    }
    // Before any setting is read or the broker is checked: the command line cannot run.
    const subs = Object.keys(command.subcommands).join(', ');
    cmd.usage('<subcommand> [options]').argument('[subcommand]').allowUnknownOption().allowExcessArguments().action((first: string | undefined) => {
      throw new CliUsageError(`pipeline ${name} ${first === undefined ? 'needs a subcommand' : `has no subcommand ${JSON.stringify(first)}`}: use ${subs}`);
    });
  }
  program
    .command('help')
    .description("a command's options: pipeline help <command>")
    .argument('[command...]')
    .action((names: string[]) => {
      if (names.length > 0 && !COMMANDS.some((e) => e.name === names[0])) throw new CliUsageError(`unknown command ${JSON.stringify(names[0])}`);
      const cmd = names.reduce<Commander | undefined>((c, n) => c?.commands.find((s) => s.name() === n), program);
      if (cmd === undefined) throw new CliUsageError(`unknown command ${JSON.stringify(names.join(' '))}`);
      cmd.outputHelp();
    });
  program.addHelpText(
    'after',
    `\nDevelopment tools (each with --help too):\n${COMMANDS.filter((e) => e.dev === true)
      .map((e) => `  ${e.name.padEnd(20)} ${e.summary}`)
      .join('\n')}\n`,
  );
  return program;
}

/** Runs the CLI with `argv` (without node and the script) and returns the exit code. */
export async function runCli(argv: string[], options: RunCliOptions = {}): Promise<number> {
  const env = options.env;
  const out = options.out ?? process.stdout;
  const errOut = options.err ?? process.stderr;
  let code: number = ExitCode.Ok;
  const entry = COMMANDS.find((e) => e.name === argv[0]);
  const sub = entry?.command.subcommands !== undefined && argv[1] !== undefined && argv[1] in entry.command.subcommands ? ` ${argv[1]}` : '';
  const path = entry === undefined ? 'pipeline' : `pipeline ${entry.name}${sub}`;
  const program = buildProgram(path, out, errOut, async (entry, parsed) => {
    code = await runCommand(entry, parsed, env, out, errOut);
  });
  if (argv.length === 0) {
    errOut.write(program.helpInformation());
    return ExitCode.Usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.Ok;
      if (err.code === 'commander.unknownCommand') errOut.write(`Run "pipeline --help" for the list of commands.\n`);
      return ExitCode.Usage;
    }
    if (err instanceof CliUsageError) {
      errOut.write(`${err.message} (see "pipeline ${argv[0] === 'help' ? '' : `${argv[0]} `}--help")\n`);
      return ExitCode.Usage;
    }
    throw err;
  }
  return code;
}

async function runCommand(
  entry: CommandEntry,
  parsed: ParsedCommandLine,
  env: NodeJS.ProcessEnv | undefined,
  out: NodeJS.WritableStream,
  errOut: NodeJS.WritableStream,
): Promise<number> {
  const { name, command } = entry;
  try {
    const config = loadConfig(env);
    rootLogger(config.logLevel); // the level of any module logger, as LOG_LEVEL says
    const log = cliLogger(config, parsed.values.verbose === true);
    // `replay --dry-run` only reads files.
    if (command.offline !== true && !(name === 'replay' && parsed.values['dry-run'] === true)) {
      // Say where we are talking to (a misspelt AMQP_URL publishing into vhost "/" must be visible),
      // then check that the broker takes us before doing anything (exit 2 with one line otherwise).
      errOut.write(`pipeline ${name}: ${describeBrokerTarget(config.amqpUrl)}\n`);
      await brokerPreflight({ url: config.amqpUrl, waitMs: config.startupWaitMs, connectionName: `pipeline-cli-${name}` });
    }
    return await command.run(parsed, { config, log, out, err: errOut });
  } catch (err) {
    if (err instanceof CliUsageError) {
      errOut.write(`pipeline ${name}: ${err.message} (see "pipeline ${name} --help")\n`);
      return ExitCode.Usage;
    }
    if (err instanceof ConfigError || err instanceof StartupError) {
      errOut.write(`${err.message}\n`);
      return ExitCode.Config;
    }
    errOut.write(`pipeline ${name} failed: ${describeError(err)}\n`);
    return ExitCode.Failure;
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${describeError(err)}\n`);
      process.exitCode = ExitCode.Failure;
    },
  );
}
