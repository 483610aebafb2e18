/**
 * `pipeline <command>`: the one command line of the bar pipeline (publish bars, follow results,
 * replay recorded bars, manage dead letters, state and model versions, evaluate the agents). The
 * command tree is commander's; every command parses its own options with {@link parseCommandLine}
 * (also commander) and prints its own usage for `--help`, before anything else happens. Every
 * command reads its settings (AMQP_URL with its vhost, REDIS_URL, ...) through `loadConfig()`.
 */
import { Command as Commander, CommanderError } from 'commander';
import { brokerPreflight, describeBrokerTarget } from '../broker/preflight';
import { loadConfig } from '../config/config';
import { ConfigError, StartupError } from '../errors';
import { rootLogger } from '../observability/logger';
import { buildWasmCommand } from './build-dense-wasm';
import { confidenceTradeoffCommand } from './confidence-tradeoff';
import { CliUsageError, ExitCode, HelpRequested, cliLogger, describeError, type Command } from './common';
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
  /** Its subcommands (`pipeline dlq list`): each runs the command with its name first. */
  subcommands?: readonly string[];
}

/** Every `pipeline` command. */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'publish', summary: 'publish bars from CSV files or a synthetic market, with confirms and a progress bar', command: publishCommand },
  { name: 'feed', summary: 'publish live 5m bars from an exchange (binance: closed candles, warm-up and gaps from REST) until SIGTERM', command: feedCommand, subcommands: ['binance'] },
  { name: 'results', summary: 'follow the integrated results (consumes them unless --peek) as JSON lines or a table', command: resultsCommand },
  { name: 'replay', summary: 'push recorded CSV bars through the workers (own vhost, training off), results as JSON lines', command: replayCommand },
  { name: 'report', summary: 'write the self-contained HTML report of a results file (see docs/replay.md)', command: reportCommand },
  { name: 'dlq', summary: 'list, replay or purge dead letters', command: dlqCommand, subcommands: ['list', 'replay', 'purge'] },
  { name: 'state', summary: 'check the Redis state epoch, or accept a loss of Redis state (see docs/redis-loss.md)', command: stateCommand, subcommands: ['check', 'accept-loss'] },
  { name: 'shards', summary: 'change the number of shards with bars flowing (see docs/scaling.md)', command: shardsCommand, subcommands: ['status', 'resize'] },
  { name: 'models', summary: 'list, promote, roll back or train versions of the trading agents', command: modelsCommand, subcommands: ['list', 'promote', 'rollback', 'train'] },
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

function isHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** The `pipeline` command tree; `run` is called with the chosen entry and its arguments. */
function buildProgram(
  out: NodeJS.WritableStream,
  errOut: NodeJS.WritableStream,
  run: (entry: CommandEntry, args: string[]) => Promise<void>,
): Commander {
  const program = new Commander('pipeline')
    .description('The command line of the multi-timeframe market-bar pipeline.')
    .usage('<command> [options]')
    .exitOverride()
    .enablePositionalOptions()
    .helpCommand(false)
    .configureOutput({ writeOut: (s) => void out.write(s), writeErr: (s) => void errOut.write(s) })
    .configureHelp({ sortSubcommands: false, subcommandTerm: (c) => c.name() })
    .addHelpText('after', HELP_AFTER);
  // Options are the command's own (parseCommandLine): commander passes them on untouched.
  const passOn = (cmd: Commander): Commander =>
    cmd.helpOption(false).allowUnknownOption().allowExcessArguments().passThroughOptions().argument('[arguments...]');
  for (const entry of COMMANDS) {
    const cmd = passOn(program.command(entry.name, { hidden: entry.dev === true }).description(entry.summary));
    cmd.action(async (_args: unknown, _opts: unknown, self: Commander) => run(entry, [...self.args]));
    if (entry.subcommands !== undefined) {
      cmd.enablePositionalOptions();
      for (const name of entry.subcommands) {
        passOn(cmd.command(name)).action(async (_args: unknown, _opts: unknown, self: Commander) => run(entry, [name, ...self.args]));
      }
    }
  }
  program
    .command('help')
    .description("a command's options: pipeline help <command>")
    .argument('[command]')
    .action((name: string | undefined) => {
      const entry = COMMANDS.find((e) => e.name === name);
      if (name !== undefined && entry === undefined) throw new CliUsageError(`unknown command ${JSON.stringify(name)}`);
      out.write(entry === undefined ? program.helpInformation() : `${entry.command.usage}\n`);
    });
  program.addHelpText(
    'afterAll',
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
  const program = buildProgram(out, errOut, async (entry, args) => {
    code = await runCommand(entry, args, env, out, errOut);
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
      errOut.write(`${err.message}\n\n${program.helpInformation()}`);
      return ExitCode.Usage;
    }
    throw err;
  }
  return code;
}

async function runCommand(
  entry: CommandEntry,
  args: string[],
  env: NodeJS.ProcessEnv | undefined,
  out: NodeJS.WritableStream,
  errOut: NodeJS.WritableStream,
): Promise<number> {
  const { name, command } = entry;
  if (isHelp(args)) {
    // Help is printed before the settings are read or anything is connected, started or trained.
    out.write(`${command.usage}\n`);
    return ExitCode.Ok;
  }
  const [first] = args;
  if (entry.subcommands !== undefined && (first === undefined || (!first.startsWith('-') && !entry.subcommands.includes(first)))) {
    // Before any setting is read or the broker is checked: the command line cannot run.
    const which = first === undefined ? 'needs a subcommand' : `has no subcommand ${JSON.stringify(first)}`;
    errOut.write(`pipeline ${name} ${which}: use ${entry.subcommands.join(', ')}\n\n${command.usage}\n`);
    return ExitCode.Usage;
  }
  try {
    const config = loadConfig(env);
    rootLogger(config.logLevel); // the level of any module logger, as LOG_LEVEL says
    const log = cliLogger(config, args.includes('--verbose'));
    // `replay --dry-run` only reads files.
    if (command.offline !== true && !(name === 'replay' && args.includes('--dry-run'))) {
      // Say where we are talking to (a misspelt AMQP_URL publishing into vhost "/" must be visible),
      // then check that the broker takes us before doing anything (exit 2 with one line otherwise).
      errOut.write(`pipeline ${name}: ${describeBrokerTarget(config.amqpUrl)}\n`);
      await brokerPreflight({ url: config.amqpUrl, waitMs: config.startupWaitMs, connectionName: `pipeline-cli-${name}` });
    }
    return await command.run(args, { config, log, out, err: errOut });
  } catch (err) {
    if (err instanceof HelpRequested) {
      out.write(`${command.usage}\n`);
      return ExitCode.Ok;
    }
    if (err instanceof CliUsageError) {
      errOut.write(`pipeline ${name}: ${err.message}\n\n${command.usage}\n`);
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
