/**
 * `npm run demo`: the whole pipeline on this machine, end to end. Starts the supervisor and its
 * workers in-process, replays the bundled market (data/market, three symbols interleaved in time
 * order) through the real broker, waits for one integrated result per bar, prints what came out
 * and stops everything.
 *
 * Isolation: with a local broker and rabbitmqctl at hand it runs in a vhost of its own
 * (`pipeline-demo-<timestamp>`, deleted at the end), because the pipeline's queues are durable and
 * shared by every pipeline on a vhost. Without rabbitmqctl it uses the configured vhost, says so,
 * and counts only the results of the bars it published. Redis keys get a per-run prefix, removed at
 * the end; the pattern store and model registry go to a temporary directory.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MultiBar, Presets } from 'cli-progress';
import { barId } from '../../schemas/bar.schema';
import { IntegratedResultSchema, type IntegratedResult } from '../../schemas/integrated-result.schema';
import { QUEUE_DEAD_LETTERS } from '../broker/topology';
import { loadConfig, type PipelineConfig } from '../config/config';
import { ConfigError, PipelineError } from '../errors';
import { rootLogger } from '../observability/logger';
import type { PublishBarsResult } from '../producers/bar-producer';
import { countCsvRows, interleaveByTs, readCsvBars, symbolFromCsvPath, type InvalidCsvRow } from '../producers/csv-bars';
import { buildReportHtml } from '../report';
import { Command as Commander, CommanderError } from 'commander';
import { CliUsageError, ExitCode, cliLogger, decimal, declareOptions, describeError, integer, ms, pipelineProducer } from './common';
import { quantile } from '../util/quantile';
import { deadLetterInfo, fetchDeadLetters } from './dlq-command';
import { PrivatePipelineStartError, ResultCollector, runCleanup, startPrivatePipeline, type PrivatePipeline } from './private-pipeline';

const HELP = `Runs the supervisor and every worker, replays data/market/*_5m.csv (all symbols, interleaved in
time order) through the broker at AMQP_URL, waits for one integrated result per bar, prints a
summary (results, dead letters, regimes, actions, latency percentiles, throughput) and writes the
HTML report of the results (docs/replay.md) and its path.

The demo makes its own vhost with rabbitmqctl when the broker is local; otherwise it shares the
configured vhost's durable queues (it says so) and counts only the results of its own bars.
Exit status 0 when every bar produced a result, 1 otherwise.`;

const DATA_DIR = join(__dirname, '..', '..', 'data', 'market');

function count<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function formatCounts(map: Map<string | null, number>): string {
  if (map.size === 0) return 'none';
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k ?? 'null'}=${n}`)
    .join('  ');
}

async function main(args: readonly string[]): Promise<number> {
  const path = 'npm run demo --';
  const program = new Commander(path)
    .exitOverride()
    .allowExcessArguments(false)
    .configureHelp({ helpWidth: 100 })
    .configureOutput({ outputError: (s, write) => write(`demo: ${s.replace(/^error: /, '').trimEnd()} (see "${path} --help")\n`) })
    .addHelpText('after', `\n${HELP}`);
  const read = declareOptions(program, {
    rate: {
      type: 'string', value: 'bars/s', parse: decimal(), default: 250,
      description: 'publish rate; 0 = as fast as the broker confirms, which measures throughput but makes client latency mostly queueing time',
    },
    bars: { type: 'string', value: 'N', parse: integer(), default: 0, description: 'bars per symbol (0 = every row)' },
    'timeout-ms': { type: 'string', value: 'MS', parse: integer(), default: 60_000, description: 'give up waiting for results after MS of no progress' },
    report: { type: 'string', value: 'file', default: 'demo-report.html', description: 'where the HTML report goes' },
    keep: { type: 'boolean', description: 'keep the demo vhost, Redis keys and data directory for inspection' },
  });
  try {
    program.parse([...args], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.code === 'commander.helpDisplayed' ? ExitCode.Ok : ExitCode.Usage;
    throw err;
  }
  const values = read() as { rate: number; bars: number; 'timeout-ms': number; report: string; keep?: boolean; verbose?: boolean };
  // Below what the workers sustain on a 2-core machine (~430 results/s), so latency is not queueing.
  const { rate, bars: barsPerSymbol, 'timeout-ms': progressTimeoutMs } = values;
  const reportPath = resolve(values.report);
  const keep = values.keep === true;
  const say = (line: string): void => void process.stdout.write(`${line}\n`);

  let base: PipelineConfig;
  try {
    base = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return ExitCode.Config;
    }
    throw err;
  }
  // The supervisor logs through the root logger: keep it (and the workers) at warn so the
  // progress bars stay readable.
  rootLogger('warn');
  const log = cliLogger(base, values.verbose === true);

  let pipeline: PrivatePipeline;
  try {
    pipeline = await startPrivatePipeline(base, { label: 'demo', keep, say, log });
  } catch (err) {
    if (err instanceof PrivatePipelineStartError) {
      say(err.message);
      return err.configError ? ExitCode.Config : ExitCode.Failure;
    }
    throw err;
  }
  const config = pipeline.config;
  const producer = pipelineProducer(config, log, { connectionName: 'pipeline-demo-producer' });
  const publishedAt = new Map<string, number>();
  let onResult: () => void = () => undefined;
  // Results are followed from before the first publish, so none is missed.
  const collector = new ResultCollector(config, {
    connectionName: 'pipeline-demo-results',
    ownQueue: false,
    accept: pipeline.ownVhost ? undefined : (id) => publishedAt.has(id),
    onResult: () => onResult(),
  });
  const abort = new AbortController();
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    abort.abort();
  };
  process.on('SIGINT', onSigint);

  try {
    await collector.start();
    const files = (await readdir(DATA_DIR)).filter((f) => f.endsWith('_5m.csv')).sort();
    if (files.length === 0) {
      say(`no *_5m.csv files in ${DATA_DIR}`);
      return ExitCode.Failure;
    }
    const invalidRows: InvalidCsvRow[] = [];
    const sources = files.map((file) => {
      const path = join(DATA_DIR, file);
      return limit(
        readCsvBars(path, { symbol: symbolFromCsvPath(path), onInvalidRow: (row) => invalidRows.push(row) }),
        barsPerSymbol,
      );
    });
    const symbols = files.map((f) => symbolFromCsvPath(f));
    const total = barsPerSymbol > 0 ? barsPerSymbol * files.length : await countRows(files);
    say(`replaying ${symbols.join(', ')}: ${total} bars${rate > 0 ? ` at ${rate} bars/s` : ' as fast as the broker confirms'}`);

    // Progress bars on a terminal; on a pipe or log file a plain line every few seconds instead.
    const tty = process.stderr.isTTY === true;
    const bars = new MultiBar(
      { stream: process.stderr, format: '{name} |{bar}| {value}/{total}', hideCursor: true, clearOnComplete: false },
      Presets.shades_classic,
    );
    const publishBar = tty ? bars.create(total, 0, { name: 'confirmed' }) : null;
    const resultBar = tty ? bars.create(total, 0, { name: 'results  ' }) : null;
    onResult = () => resultBar?.update(collector.results.size);
    const plainProgress = tty
      ? null
      : setInterval(() => process.stderr.write(`progress: ${publishedAt.size}/${total} published, ${collector.results.size} results\n`), 5000);

    await producer.start();
    const publishStarted = Date.now();
    let publishResult: PublishBarsResult;
    try {
      publishResult = await producer.publish(interleaveByTs(sources), {
        ratePerSecond: rate,
        signal: abort.signal,
        onSent: (bar, at) => publishedAt.set(barId(bar), at),
        onProgress: (n) => publishBar?.update(n),
      });
    } finally {
      publishBar?.update(publishedAt.size);
    }
    const publishMs = Date.now() - publishStarted;
    resultBar?.setTotal(publishResult.published);

    // Wait for one result per bar; give up after progressTimeoutMs without a new result.
    await collector.waitFor(() => publishResult.published, progressTimeoutMs, publishStarted + publishMs, abort.signal);
    if (tty) bars.stop();
    if (plainProgress !== null) clearInterval(plainProgress);
    const doneAt = collector.lastAt;

    let deadLetters: number | null = null;
    const reasons = new Map<string | null, number>();
    try {
      const model = collector.connection;
      if (model === null) throw new PipelineError('DEMO_NO_CONNECTION', 'the results connection is closed', false);
      const dlqChannel = await model.createChannel();
      deadLetters = (await dlqChannel.checkQueue(QUEUE_DEAD_LETTERS)).messageCount;
      const messages = await fetchDeadLetters(dlqChannel, 1000);
      for (const m of messages) count(reasons, `${deadLetterInfo(m).stage}: ${deadLetterInfo(m).reason.slice(0, 80)}`);
      await dlqChannel.close(); // returns them to the queue
    } catch (err) {
      say(`could not read ${QUEUE_DEAD_LETTERS}: ${describeError(err)}`);
    }

    const regimes = new Map<string | null, number>();
    const actions = new Map<string | null, number>();
    const executions = new Map<string | null, number>();
    const degraded = new Map<string | null, number>();
    const clientLatency: number[] = [];
    const pipelineLatency: number[] = [];
    const results: IntegratedResult[] = [];
    let invalidResults = 0;
    let stale = 0;
    for (const [id, received] of collector.results) {
      let body: unknown;
      try {
        body = JSON.parse(received.body);
      } catch {
        invalidResults++;
        continue;
      }
      const parsed = IntegratedResultSchema.safeParse(body);
      if (!parsed.success) {
        invalidResults++;
        continue;
      }
      const r = parsed.data;
      results.push(r);
      count(regimes, r.strategic.regime);
      count(actions, r.actions.tactical);
      count(executions, r.actions.execution);
      for (const d of r.degraded) count(degraded, d);
      if (r.strategic.stale) stale++;
      const sent = publishedAt.get(id);
      if (sent !== undefined) clientLatency.push(received.receivedAt - sent);
      pipelineLatency.push(r.latency_ms);
    }
    clientLatency.sort((a, b) => a - b);
    pipelineLatency.sort((a, b) => a - b);
    const pct = (values: number[]): string =>
      `p50 ${ms(quantile(values, 0.5))}  p95 ${ms(quantile(values, 0.95))}  p99 ${ms(quantile(values, 0.99))}  max ${ms(values[values.length - 1] ?? null)}`;
    const endToEndS = Math.max(1, doneAt - publishStarted) / 1000;
    const received = collector.results.size;
    const missing = publishResult.published - received;

    say('');
    say('── demo summary ─────────────────────────────────────────────');
    say(`bars published     ${publishResult.published} (${publishResult.confirmed} confirmed) of ${symbols.length} symbols${invalidRows.length > 0 ? `; ${invalidRows.length} CSV rows rejected` : ''}`);
    say(`results received   ${received}${missing > 0 ? `  (${missing} MISSING)` : ''}${collector.duplicates > 0 ? `  + ${collector.duplicates} duplicate deliveries` : ''}${invalidResults > 0 ? `  (${invalidResults} failed the v1 schema)` : ''}`);
    say(`dead letters       ${deadLetters ?? 'unknown'}${reasons.size > 0 ? `  ${formatCounts(reasons)}` : ''}`);
    say(`regimes            ${formatCounts(regimes)}`);
    say(`actions            ${formatCounts(actions)}`);
    say(`execution          ${formatCounts(executions)}`);
    say(`stale contexts     ${stale}`);
    say(`degraded stages    ${formatCounts(degraded)}`);
    say(`latency, client    ${pct(clientLatency)}   (x-published-at -> receipt here)`);
    say(`latency, pipeline  ${pct(pipelineLatency)}   (latency_ms: tactical receipt -> publish)`);
    say(`throughput         publish ${Math.round(publishResult.published / Math.max(0.001, publishMs / 1000))} bars/s; end to end ${Math.round(received / endToEndS)} results/s (${endToEndS.toFixed(1)} s from first publish to last result)`);
    say('─────────────────────────────────────────────────────────────');
    if (results.length > 0) {
      const html = buildReportHtml(results, {
        title: 'Demo report',
        source: `npm run demo: data/market (${symbols.join(', ')})${rate > 0 ? ` at ${rate} bars/s` : ''}`,
        deadLetters,
        barsPublished: publishResult.published,
      });
      await writeFile(reportPath, html);
      say(`report             ${reportPath}`);
    }
    if (interrupted) return ExitCode.Interrupted;
    return missing === 0 ? ExitCode.Ok : ExitCode.Failure;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await runCleanup([
      { what: 'stop the producer', run: () => producer.stop() },
      { what: 'stop the result collector', run: () => collector.stop() },
      { what: 'stop the pipeline', run: () => pipeline.stop() },
    ]);
    say('stopped cleanly');
  }
}

async function countRows(files: string[]): Promise<number> {
  const counts = await Promise.all(files.map((f) => countCsvRows(join(DATA_DIR, f))));
  return counts.reduce((a, b) => a + b, 0);
}

async function* limit<T>(source: AsyncIterable<T>, max: number): AsyncGenerator<T> {
  if (max <= 0) {
    yield* source;
    return;
  }
  let n = 0;
  for await (const item of source) {
    yield item;
    if (++n >= max) return;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    rootLogger().flush();
    process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof CliUsageError) {
      process.stderr.write(`${err.message} (see "npm run demo -- --help")\n`);
      process.exit(ExitCode.Usage);
    }
    process.stderr.write(`demo failed: ${describeError(err)}\n`);
    process.exit(ExitCode.Failure);
  },
);
