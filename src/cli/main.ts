/**
 * `pipeline <command>`: the command line of the bar pipeline (publish bars, follow results, manage
 * dead letters). Every command reads AMQP_URL (vhost included) through `loadConfig()`.
 */
import { brokerPreflight, describeBrokerTarget } from '../broker/preflight';
import { loadConfig, type PipelineConfig } from '../config/config';
import { ConfigError, StartupError } from '../errors';
import { CliUsageError, ExitCode, cliLogger, describeError, type Command } from './common';
import { dlqCommand } from './dlq-command';
import { publishCommand } from './publish-command';
import { replayCommand } from './replay-command';
import { reportCommand } from './report-command';
import { resultsCommand } from './results-command';
import { stateCommand } from './state-command';

const COMMANDS: Record<string, Command> = {
  publish: publishCommand,
  results: resultsCommand,
  dlq: dlqCommand,
  state: stateCommand,
  replay: replayCommand,
  report: reportCommand,
};

const USAGE = `Usage: pipeline <command> [options]

Commands:
  publish   publish bars from CSV files or a synthetic market, with confirms and a progress bar
  results   follow the integrated results (consumes them unless --peek) as JSON lines or a table
  dlq       list, replay or purge dead letters
  state     check the Redis state epoch, or accept a loss of Redis state (see docs/redis-loss.md)
  replay    push recorded CSV bars through the workers (own vhost, training off), results as JSON lines
  report    write the self-contained HTML report of a results file (see docs/replay.md)

Run "pipeline <command> --help" for a command's options. The demo is "npm run demo".
Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672; a vhost in the path is honoured),
LOG_LEVEL (with --verbose), PIPELINE_* (see src/config/config.ts). Every command prints the broker and
vhost it uses to stderr.
Exit status: 0 done; 1 the command failed; 2 bad or misspelt setting, unknown vhost, refused
credentials or unreachable broker (one line names the setting and the fix); 64 bad arguments.`;

/** Where {@link runCli} reads its environment and writes its output. */
export interface RunCliOptions {
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Command output. @defaultValue process.stdout */
  out?: NodeJS.WritableStream;
  /** Diagnostics. @defaultValue process.stderr */
  err?: NodeJS.WritableStream;
}

/** Runs the CLI with `argv` (without node and the script) and returns the exit code. */
export async function runCli(argv: string[], options: RunCliOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const out = options.out ?? process.stdout;
  const errOut = options.err ?? process.stderr;
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out.write(`${USAGE}\n`);
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    errOut.write(`unknown command ${JSON.stringify(name)}\n\n${USAGE}\n`);
    return ExitCode.Usage;
  }
  let config: PipelineConfig;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      errOut.write(`${err.message}\n`);
      return ExitCode.Config;
    }
    throw err;
  }
  const log = cliLogger(config, args.includes('--verbose'));
  if (command.offline !== true && !args.includes('--help') && !args.includes('-h')) {
    // Say where we are talking to (a misspelt AMQP_URL publishing into vhost "/" must be visible),
    // then check that the broker takes us before doing anything (exit 2 with one line otherwise).
    errOut.write(`pipeline ${name}: ${describeBrokerTarget(config.amqpUrl)}\n`);
    try {
      await brokerPreflight({ url: config.amqpUrl, waitMs: config.startupWaitMs, connectionName: `pipeline-cli-${name}` });
    } catch (err) {
      if (err instanceof StartupError) {
        errOut.write(`${err.message}\n`);
        return ExitCode.Config;
      }
      throw err;
    }
  }
  try {
    return await command.run(args, { config, log, out, err: errOut });
  } catch (err) {
    if (err instanceof CliUsageError || (err as { code?: unknown }).code?.toString().startsWith('ERR_PARSE_ARGS')) {
      errOut.write(`${(err as Error).message}\n\n${command.usage}\n`);
      return ExitCode.Usage;
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
