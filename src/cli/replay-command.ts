/**
 * `pipeline replay`: recorded bars through the same workers and the real broker, every integrated
 * result written as a JSON line, optionally the HTML report. Without --attach it runs a private
 * pipeline (own vhost, Redis prefix and data directory, training off) and removes it at the end.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SingleBar } from 'cli-progress';
import { MAX_BATCH_BARS } from '../../schemas/bar-batch.schema';
import { inheritedEnv } from '../config/config';
import { PipelineError } from '../errors';
import { rootLogger } from '../observability/logger';
import type { Bar } from '../../schemas/bar.schema';
import { BarKeySet, buildReportHtml, readReportData } from '../report';
import {
  CliUsageError,
  ExitCode,
  describeError,
  integer,
  defineCommand,
  type ParsedCommandLine,
  type CommandContext,
} from './common';
import {
  PrivatePipelineStartError,
  ResultCollector,
  startPrivatePipeline,
  type PrivatePipeline,
} from './private-pipeline';
import {
  BatchedBarSink,
  OneBarPerMessageSink,
  barFileReplaySource,
  type ReplaySource,
  parseTimeFlag,
  type BarSink,
  type SymbolStats,
} from './replay-source';
import { RESULT_BYTES, lastReplayRate, recordReplayRate } from './replay-rate';
import { REPORT_FLAG_OPTIONS, reportFlags } from './report-command';

const HELP = `Pushes recorded 5m bars through the pipeline's workers and the real broker and writes every
integrated result as one JSON line (to --out, else to stdout). It reads our CSV (BTCUSDT_5m.csv: the
symbol is the name up to its first "_") and Binance's kline archives as downloaded
(BTCUSDT-5m-2024-01.zip or the CSV inside it: the symbol is the name up to its first "-"; open times
in ms, or µs as in files from 2025 on). A folder stands for its *_5m.csv and SYMBOL-5m-*.zip|csv
files; a quoted glob ('data/BTCUSDT-5m-2024-*.zip') for the files it matches. Several files of one
symbol (months of an archive) are joined in time order: bars a file repeats are skipped and gaps
counted, and both are reported, not fatal. Bars go out per symbol
in ts order, in batches of consecutive bars of one symbol (one message each, on the pipeline's
internal exchange, with publisher confirms); the tactical worker processes every bar of a batch as if
it had come alone, so the results are those of one bar per message.

Without --attach it starts the supervisor and the workers (all but the gateway, unless PIPELINE_ROLES
says otherwise) in this process on a vhost of its own made with rabbitmqctl, a private Redis key
prefix and a temporary data directory, with PIPELINE_TRAINING=off unless the environment sets it and
PIPELINE_CONTEXT_WAIT_MS=0 and PIPELINE_FEEDBACK_WAIT_MS=0 (results that do not depend on the
machine's speed), and removes them at the end. When it cannot make that vhost (AMQP_URL not on this
machine, rabbitmqctl missing or refused) or the vhost already has consumers, it refuses (exit 2)
rather than put historic bars into a pipeline others use. With --attach it publishes to the pipeline
at AMQP_URL and reads results through a temporary queue bound to pipeline.results (integrated_results
is left to its users); bars that pipeline already accepted give no second result.

Results are written as they arrive and not kept: memory stays flat however long the replay. The
report (--report) is drawn afterwards from the results file, read line by line.

The last line on stdout is {"bars":n,"results":n,"seconds":s}: seconds from the first bar
published to the last result received. A progress bar with ETA goes to stderr.

Exit status: 0 one result per bar; 1 results missing (the summary says how many) or a failure;
2 the pipeline cannot run as configured; 64 bad arguments; 130 interrupted.`;

/** The stdout summary line. */
export interface ReplaySummary {
  bars: number;
  results: number;
  seconds: number;
}

/** Progress on stderr: a bar with ETA on a terminal, a line every 5 s otherwise. */
class Progress {
  private readonly bar: SingleBar | null;
  private readonly timer: NodeJS.Timeout | null;
  private startedAt = 0;
  private value = 0;

  constructor(
    private readonly err: NodeJS.WritableStream,
    private readonly total: number,
  ) {
    const tty = (err as { isTTY?: boolean }).isTTY === true;
    this.bar = tty
      ? new SingleBar({
          stream: err,
          format:
            'replay |{bar}| {value}/{total} results | {speed} results/s | ETA {eta_formatted}',
          hideCursor: true,
          etaBuffer: 200,
        })
      : null;
    this.timer = tty ? null : setInterval(() => this.line(), 5000);
    this.timer?.unref();
  }

  begin(): void {
    this.startedAt = Date.now();
    this.bar?.start(this.total, 0, { speed: '0' });
  }

  update(value: number): void {
    this.value = value;
    if (this.bar !== null && (value === this.total || value % 50 === 0))
      this.bar.update(value, { speed: this.speed().toFixed(0) });
  }

  private speed(): number {
    const s = (Date.now() - this.startedAt) / 1000;
    return s > 0 ? this.value / s : 0;
  }

  private line(): void {
    if (this.startedAt === 0) return;
    const speed = this.speed();
    const eta = speed > 0 ? Math.round((this.total - this.value) / speed) : null;
    this.err.write(
      `replay: ${this.value}/${this.total} results, ${speed.toFixed(0)} results/s, ETA ${eta === null ? 'n/a' : `${eta} s`}\n`,
    );
  }

  end(): void {
    if (this.timer !== null) clearInterval(this.timer);
    if (this.bar !== null) {
      this.bar.update(this.value, { speed: this.speed().toFixed(0) });
      this.bar.stop();
    } else if (this.startedAt !== 0) this.line();
  }
}

/** One line on how a symbol's files were joined: overlapping bars skipped, gaps. */
function joinNote(st: SymbolStats): string {
  return `${st.symbol}: ${st.files.length} file${st.files.length === 1 ? '' : 's'} joined; ${st.overlapping} overlapping bars skipped, ${st.gaps} gaps (${st.missingBars} bars missing)`;
}

const iso = (ts: number | null): string => (ts === null ? '-' : new Date(ts).toISOString().replace(':00.000Z', 'Z'));

/** `--dry-run`: what a replay of these files would do, without a broker. */
async function dryRun(source: ReplaySource, ctx: CommandContext): Promise<void> {
  const stats = await source.stats();
  const w = (line: string): void => void ctx.out.write(`${line}\n`);
  w('symbol      bars       first bar          last bar           files  overlapping  gaps (bars missing)');
  let first: number | null = null;
  let last: number | null = null;
  let total = 0;
  for (const st of stats) {
    total += st.bars;
    if (st.firstTs !== null) first = first === null ? st.firstTs : Math.min(first, st.firstTs);
    if (st.lastTs !== null) last = last === null ? st.lastTs : Math.max(last, st.lastTs);
    w(
      `${st.symbol.padEnd(11)} ${String(st.bars).padStart(9)}  ${iso(st.firstTs).padEnd(17)}  ${iso(st.lastTs).padEnd(17)}  ${String(st.files.length).padStart(5)}  ${String(st.overlapping).padStart(11)}  ${st.gaps} (${st.missingBars})`,
    );
  }
  const days = first !== null && last !== null ? (last - first) / 86_400_000 : 0;
  w(`total: ${total} bars of ${stats.length} symbols, ${iso(first)} to ${iso(last)} (${days.toFixed(1)} days)`);
  const rate = await lastReplayRate();
  const seconds = total / rate.barsPerSecond;
  w(
    `estimated time: ${formatDuration(seconds)} at ${Math.round(rate.barsPerSecond)} bars/s (${rate.source}), plus about 10 s to start`,
  );
  w(
    `estimated results: ${(total * RESULT_BYTES / 1024 ** 2).toFixed(0)} MB (${RESULT_BYTES} bytes a result) in --out; memory stays flat whatever the length`,
  );
}

function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/**
 * The source's bars, read no further than `maxAhead` bars past the results received, so that what
 * waits in the broker and the workers stays bounded. Ends early (the summary then counts fewer bars
 * published) when no result comes for `idleMs` while it waits.
 */
async function* aheadBounded(
  bars: AsyncIterable<Bar>,
  collector: ResultCollector,
  maxAhead: number,
  idleMs: number,
  signal: AbortSignal,
  say: (line: string) => void,
): AsyncGenerator<Bar> {
  let read = 0;
  for await (const bar of bars) {
    if (read - collector.count >= maxAhead) {
      const target = read - maxAhead + 1;
      const reached = await collector.waitFor(() => target, idleMs, Date.now(), signal);
      if (!reached) {
        if (!signal.aborted)
          say(`replay: no result for ${idleMs} ms with ${read - collector.count} bars ahead; publishing no more`);
        return;
      }
    }
    read++;
    yield bar;
  }
}

const OPTIONS = {
  symbols: { type: 'string', value: 'A,B', description: 'replay only these symbols' },
  from: { type: 'string', value: 'T', description: 'bars with ts >= T (epoch ms, or a date/time such as 2025-04-03T18:00:00Z)' },
  to: { type: 'string', value: 'T', description: 'bars with ts < T' },
  out: { type: 'string', value: 'file', description: 'write the results there instead of stdout' },
  report: { type: 'string', value: 'file', description: 'also write the HTML report (docs/replay.md; its options as for "pipeline report")' },
  attach: { type: 'boolean', description: 'use the pipeline at AMQP_URL instead of a private one' },
  'max-in-flight': { type: 'string', value: 'N', parse: integer(1), default: 1000, description: 'unconfirmed messages at most' },
  'max-ahead-bars': {
    type: 'string',
    value: 'N',
    parse: integer(1),
    description: "bars read but without a result yet, at most: the broker's queues and the workers' memory stay flat however long the replay (default: 2 x batch bars x symbols, at least 10000)",
  },
  'batch-bars': {
    type: 'string',
    value: 'N',
    parse: integer(1, MAX_BATCH_BARS),
    default: 256,
    description: 'bars per batch message; 1 publishes one bar per message to market.bars, the public input',
  },
  'timeout-ms': { type: 'string', value: 'MS', parse: integer(), default: 60_000, description: 'give up after MS without a new result once all is published' },
  keep: { type: 'boolean', description: 'keep the private vhost, Redis keys and data directory' },
  'dry-run': {
    type: 'boolean',
    description:
      'read the files and print, per symbol, the bars, their span, the files joined, overlaps and gaps; then the estimated time (from the last measured rate) and size of the results; publish nothing (needs no broker)',
  },
  ...REPORT_FLAG_OPTIONS,
} as const;

async function run({ values, positionals }: ParsedCommandLine<typeof OPTIONS>, ctx: CommandContext): Promise<number> {
  const { 'max-in-flight': maxInFlight, 'batch-bars': batchBars, 'timeout-ms': idleMs } = values;
  const attach = values.attach === true;
  const reportOptions = reportFlags(values);
  const symbols = values.symbols
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  // A count and the first one, not a list: a bad export can have millions of bad rows.
  const invalidRows = { count: 0, first: '' };
  const source = await barFileReplaySource(positionals, {
    symbols,
    from: parseTimeFlag('from', values.from),
    to: parseTimeFlag('to', values.to),
    onInvalidRow: (file, line, reason) => {
      if (invalidRows.count++ === 0) invalidRows.first = `${file}:${line}: ${reason}`;
    },
  });
  const stats = await source.stats();
  const total = stats.reduce((n, st) => n + st.bars, 0);
  if (values['dry-run'] === true) {
    await dryRun(source, ctx);
    return ExitCode.Ok;
  }
  for (const st of stats)
    if (st.overlapping > 0 || st.gaps > 0)
      ctx.err.write(`${joinNote(st)}\n`);
  if (total === 0)
    throw new CliUsageError(
      `no bar of ${source.symbols.join(', ')} falls in the --from/--to range`,
    );
  const say = (line: string): void => void ctx.err.write(`${line}\n`);
  if (values.verbose !== true) rootLogger('warn');

  const abort = new AbortController();
  // A path that cannot be written fails now, not after a long replay.
  for (const [flag, path] of [
    ['out', values.out],
    ['report', values.report],
  ] as const) {
    if (path === undefined) continue;
    try {
      await writeFile(path, '');
    } catch (err) {
      throw new CliUsageError(`--${flag} ${path}: cannot write there (${(err as Error).message})`);
    }
  }
  let pipeline: PrivatePipeline | null = null;
  let collector: ResultCollector | null = null;
  let sink: BarSink | null = null;
  let outputError: Error | null = null;
  // The report is drawn from a results file read back line by line, never from results kept in
  // memory: with results on stdout they also go to a temporary file for it.
  let tempDir: string | null = null;
  let resultsFile = values.out;
  if (resultsFile === undefined && values.report !== undefined) {
    tempDir = await mkdtemp(join(tmpdir(), 'pipeline-replay-'));
    resultsFile = join(tempDir, 'replay-output.jsonl');
  }
  const output: WriteStream | null =
    resultsFile !== undefined ? createWriteStream(resultsFile, { highWaterMark: 1 << 20 }) : null;
  output?.on('error', (e) => {
    outputError ??= e;
    abort.abort();
  });
  const toStdout = values.out === undefined;
  const write = (line: string): void => {
    output?.write(`${line}\n`);
    if (toStdout) ctx.out.write(`${line}\n`);
  };
  const onSigint = (): void => abort.abort();
  process.on('SIGINT', onSigint);
  try {
    let config = ctx.config;
    if (!attach) {
      try {
        pipeline = await startPrivatePipeline(ctx.config, {
          label: 'replay',
          keep: values.keep === true,
          say,
          log: ctx.log,
          requireOwnVhost: true,
          // No gateway unless asked for: nobody reads a private pipeline's API, and its own results
          // queue would double the broker's work per result.
          env: { PIPELINE_ROLES: inheritedEnv().PIPELINE_ROLES ?? 'strategic,tactical,trainer' },
        });
      } catch (err) {
        if (err instanceof PrivatePipelineStartError) {
          say(err.message);
          return err.configError ? ExitCode.Config : ExitCode.Failure;
        }
        throw err;
      }
      config = pipeline.config;
    }
    // A bit per bar, not a string: a year of 50 symbols is 5 million bars.
    const published = new BarKeySet();
    const progress = new Progress(ctx.err, total);
    const mustFilter = attach || pipeline?.ownVhost !== true;
    // A private pipeline sends the results of each batch as one message to this run's own queue;
    // with --attach they go to pipeline.results, one per bar, as for any other publisher.
    const resultsTo =
      attach || batchBars === 1 ? undefined : `replay.results.${process.pid}-${Date.now()}`;
    const c = new ResultCollector(config, {
      ...(resultsTo === undefined ? {} : { resultsKey: resultsTo }),
      connectionName: 'pipeline-replay-results',
      ownQueue: attach,
      keepBodies: false,
      accept: mustFilter ? (_id, symbol, ts) => published.has(symbol, ts) : undefined,
      onResult: (r) => {
        write(r.body);
        progress.update(c.count);
      },
    });
    collector = c;
    await c.start();
    sink =
      batchBars === 1
        ? new OneBarPerMessageSink(config, ctx.log, maxInFlight)
        : new BatchedBarSink(config, ctx.log, batchBars, maxInFlight);
    await sink.start();
    say(`replaying ${total} bars of ${source.symbols.join(', ')}: ${sink.description}`);

    let firstSentAt = 0;
    progress.begin();
    // Without a bound every bar would be in the broker within seconds (1000 messages of 256 bars):
    // at 200,000 bars its confirms to the tactical worker took over 10 s and the results came
    // several times over. A batch of each symbol must be able to fill, hence the symbols in it.
    const maxAhead = values['max-ahead-bars'] ?? Math.max(10_000, 2 * batchBars * source.symbols.length);
    if (maxAhead < batchBars * source.symbols.length)
      throw new CliUsageError(
        `--max-ahead-bars must be at least --batch-bars x symbols (${batchBars * source.symbols.length}), or batches never fill`,
      );
    const sent = await sink.publish(aheadBounded(source.bars(), c, maxAhead, idleMs, abort.signal, say), {
      signal: abort.signal,
      ...(resultsTo === undefined ? {} : { resultsTo }),
      onSent: (bar, at) => {
        if (firstSentAt === 0) firstSentAt = at;
        published.add(bar.symbol, bar.ts);
      },
    });
    const publishedAt = Date.now();
    const complete = await c.waitFor(() => sent.published, idleMs, publishedAt, abort.signal);
    progress.end();
    const resultCount = c.count;
    const seconds =
      resultCount > 0 && firstSentAt > 0 ? Math.round(c.lastAt - firstSentAt) / 1000 : 0;
    const deadLetters = attach ? null : await c.deadLetterCount();

    const missing = sent.published - resultCount;
    if (!attach && missing === 0 && seconds > 0 && sent.published >= 10_000)
      await recordReplayRate({ barsPerSecond: sent.published / seconds, bars: sent.published, symbols: source.symbols.length });
    say(
      `replay: ${sent.published} bars published (${sent.confirmed} confirmed), ${resultCount} results${missing > 0 ? `, ${missing} MISSING` : ''}` +
        `${c.duplicates > 0 ? `, ${c.duplicates} repeated deliveries dropped` : ''}, dead letters ${deadLetters ?? 'not counted (--attach)'}` +
        `; ${seconds > 0 ? Math.round(sent.published / seconds) : 0} bars/s end to end${invalidRows.count > 0 ? `; ${invalidRows.count} rows skipped, first: ${invalidRows.first}` : ''}`,
    );
    if (!complete && !abort.signal.aborted)
      say(`replay: no new result for ${idleMs} ms; giving up on the missing ones`);

    if (output !== null && outputError === null)
      await new Promise<void>((resolve, reject) =>
        output.end((e?: Error | null) => (e ? reject(e) : resolve())),
      );
    if (outputError !== null)
      throw new PipelineError(
        'REPLAY_OUTPUT',
        `writing ${resultsFile}: ${(outputError as Error).message}`,
        false,
      );
    if (values.report !== undefined && resultsFile !== undefined) {
      let data;
      try {
        data = await readReportData(resultsFile);
      } catch (err) {
        say(`replay: no report: ${describeError(err)}`);
        return ExitCode.Failure;
      }
      let html: string;
      try {
        html = buildReportHtml(data, {
          ...reportOptions,
          source: `pipeline replay ${positionals.join(' ')}`,
          deadLetters,
          barsPublished: sent.published,
        });
      } finally {
        data.close();
      }
      await writeFile(values.report, html);
      say(`report written to ${values.report}`);
    }
    const summary: ReplaySummary = { bars: sent.published, results: resultCount, seconds };
    ctx.out.write(`${JSON.stringify(summary)}\n`);
    if (abort.signal.aborted) return ExitCode.Interrupted;
    return missing === 0 && invalidRows.count === 0 ? ExitCode.Ok : ExitCode.Failure;
  } finally {
    process.removeListener('SIGINT', onSigint);
    for (const [what, step] of [
      ['stop the producer', () => sink?.stop()],
      ['stop the result collector', () => collector?.stop()],
      ['stop the private pipeline', () => pipeline?.stop()],
    ] as const) {
      try {
        await step();
      } catch (err) {
        say(`cleanup: could not ${what}: ${describeError(err)}`);
      }
    }
    if (output !== null && !output.closed) output.end();
    if (tempDir !== null) await rm(tempDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export const replayCommand = defineCommand({ args: '[file, folder or glob...]', options: OPTIONS, help: HELP, run });
