import { SingleBar, Presets } from 'cli-progress';
import type { Bar, Timeframe } from '../../schemas/bar.schema';
import { TIMEFRAME_MS } from '../../schemas/bar.schema';
import { bindings, EXCHANGE_BARS, routingKeys } from '../broker/topology';
import type { ShardLayout } from '../broker/shard-generation';
import { loadShardLayout } from '../supervisor/shard-layout';
import { describeBrokerTarget } from '../broker/preflight';
import type { PublishBarsResult } from '../producers/bar-producer';
import { countCsvRows, csvSymbolSource, interleaveByTs, readCsvBars, type InvalidCsvRow } from '../producers/csv-bars';
import { ValidationError } from '../errors';
import { generateSyntheticMarket } from '../producers/synthetic-market';
import { CliUsageError, ExitCode, connectBroker, decimal, defineCommand, describeError, integer, pipelineProducer, type CommandContext } from './common';

const HELP = `Sources: --csv <file> (repeatable), or --synthetic --symbols A,B,C --count N.

Publishes 5m (or 30m) bars to the exchange ${EXCHANGE_BARS}, routing key ${routingKeys.bar('<timeframe>', '<symbol>')},
persistent, messageId <symbol>:<timeframe>:<ts>, header x-published-at (epoch ms). Waits for the
broker to confirm every bar, then prints a summary.

Environment: AMQP_URL (a vhost in the path is honoured), PIPELINE_QUEUE_TYPE, PIPELINE_MAX_ATTEMPTS
(used when this command declares the pipeline's topology), PIPELINE_PUBLISH_TIMEOUT_MS (confirm wait).
Before publishing it checks the pipeline's queues for the timeframe and warns on stderr when no worker
consumes them (the bars would wait there; often a wrong vhost in AMQP_URL).
Exit status: 0 when every row was published and confirmed; 1 when a row was rejected (the valid rows
are still published) or publishing failed; 2 when AMQP_URL or another setting is wrong (one line
says which); 130 when interrupted (bars already sent are confirmed).`;

interface Source {
  bars: AsyncIterable<Bar>;
  total: number;
  describe: string;
}

const MAX_PRINTED_INVALID = 20;

/** `pipeline publish`. */
export const publishCommand = defineCommand({
  options: {
    csv: {
      type: 'string', multiple: true, value: 'file',
      description: 'CSV with header timestamp,open,high,low,close,volume; timestamp is the bar\'s OPEN time, "2025-04-03 17:05:00+00:00" or epoch milliseconds. Repeat for several files: their bars are interleaved in time order. Rows that fail the bar schema are reported on stderr with their line number and skipped.',
    },
    symbol: {
      type: 'string', value: 'S',
      description: 'symbol of the bars (one --csv only). Without it: the file\'s "symbol" column, else the file name when it is exactly a symbol, optionally with a timeframe (BTCUSDT.csv, BTCUSDT_5m.csv); any other name is refused',
    },
    synthetic: { type: 'boolean', description: 'generate a seeded regime-switching market instead' },
    symbols: { type: 'string', value: 'A,B,C', description: 'synthetic symbols; their bars are interleaved bar by bar in ts order' },
    count: { type: 'string', value: 'N', parse: integer(), description: 'synthetic bars per symbol' },
    seed: { type: 'string', value: 'n', parse: integer(), default: 1, description: 'synthetic seed (symbol i uses seed + i)' },
    timeframe: { type: 'string', value: '5m|30m', choices: Object.keys(TIMEFRAME_MS), default: '5m', description: 'timeframe of the bars' },
    rate: { type: 'string', value: 'bars/s', parse: decimal(), default: 0, description: 'publish rate, paced by absolute time; 0 = as fast as the broker confirms' },
    'max-unconfirmed': { type: 'string', value: 'N', parse: integer(1), default: 1000, description: 'bars awaiting a confirm before publishing waits' },
    json: { type: 'boolean', description: 'print the summary as one JSON object' },
  },
  help: HELP,
  async run({ values }, ctx: CommandContext): Promise<number> {
    const timeframe = values.timeframe as Timeframe; // one of the choices commander checked
    const { rate, 'max-unconfirmed': maxUnconfirmed } = values;

    const invalid: (InvalidCsvRow & { file: string })[] = [];
    let source: Source;
    const csvFiles = values.csv ?? [];
    if (csvFiles.length > 0 && values.synthetic === true) throw new CliUsageError('give either --csv or --synthetic, not both');
    if (csvFiles.length > 0) {
      if (values.symbol !== undefined && csvFiles.length > 1) throw new CliUsageError('--symbol needs exactly one --csv');
      if (values.symbols !== undefined || values.count !== undefined) throw new CliUsageError('--symbols and --count are for --synthetic');
      // Where each file's symbol comes from is settled before anything is published.
      for (const file of csvFiles) {
        try {
          await csvSymbolSource(file, values.symbol);
        } catch (err) {
          if (err instanceof ValidationError) throw new CliUsageError(err.message);
          throw err;
        }
      }
      const streams = csvFiles.map((file) =>
        readCsvBars(file, {
          symbol: values.symbol,
          timeframe,
          onInvalidRow: (row) => {
            invalid.push({ ...row, file });
            if (invalid.length <= MAX_PRINTED_INVALID) {
              ctx.err.write(`${file}:${row.line}: rejected: ${row.reason}\n`);
            } else if (invalid.length === MAX_PRINTED_INVALID + 1) {
              ctx.err.write('more rejected rows: only the count is shown from here on\n');
            }
          },
        }),
      );
      const counts = await Promise.all(csvFiles.map((f) => countCsvRows(f)));
      source = {
        bars: streams.length === 1 ? (streams[0] as AsyncIterable<Bar>) : interleaveByTs(streams),
        total: counts.reduce((a, b) => a + b, 0),
        describe: csvFiles.join(', '),
      };
    } else if (values.synthetic === true) {
      const symbols = (values.symbols ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (symbols.length === 0) throw new CliUsageError('--synthetic needs --symbols A,B,C');
      const { count, seed } = values;
      if (count === undefined) throw new CliUsageError('--synthetic needs --count N');
      if (timeframe !== '5m') throw new CliUsageError('--synthetic generates 5m bars only');
      const markets = symbols.map((symbol, i) => generateSyntheticMarket({ seed: seed + i, symbol, bars: count }).bars);
      source = {
        bars: interleaveByTs(markets),
        total: markets.reduce((n, m) => n + m.length, 0),
        describe: `synthetic ${symbols.join(',')} x ${count} (seed ${seed})`,
      };
    } else {
      throw new CliUsageError('give --csv <file> or --synthetic');
    }

    const producer = pipelineProducer(ctx.config, ctx.log, {
      connectionName: 'pipeline-cli-publish',
      maxUnconfirmed,
      closeTimeoutMs: ctx.config.closeTimeoutMs,
    });
    const progress = new SingleBar(
      {
        stream: process.stderr,
        format: 'publish |{bar}| {value}/{total} confirmed | {rate} bars/s | eta {eta_formatted}',
        hideCursor: true,
        etaBuffer: 200,
      },
      Presets.shades_classic,
    );
    const abort = new AbortController();
    const onSigint = (): void => abort.abort();
    process.once('SIGINT', onSigint);
    const perSymbol = new Map<string, number>();
    let firstTs = Infinity;
    let lastTs = -Infinity;
    const started = performance.now();
    let result: PublishBarsResult | null = null;
    let failure: unknown = null;
    progress.start(source.total, 0, { rate: '0' });
    try {
      await producer.start();
      const warning = await unconsumedWarning(ctx, timeframe);
      if (warning !== null) ctx.err.write(`${warning}\n`);
      result = await producer.publish(source.bars, {
        ratePerSecond: rate,
        signal: abort.signal,
        onSent: (bar) => {
          perSymbol.set(bar.symbol, (perSymbol.get(bar.symbol) ?? 0) + 1);
          if (bar.ts < firstTs) firstTs = bar.ts;
          if (bar.ts > lastTs) lastTs = bar.ts;
        },
        onProgress: (confirmed) => {
          const seconds = (performance.now() - started) / 1000;
          progress.update(confirmed, { rate: seconds > 0 ? Math.round(confirmed / seconds).toString() : '0' });
        },
      });
    } catch (err) {
      failure = err;
    } finally {
      progress.stop();
      process.removeListener('SIGINT', onSigint);
      await producer.stop();
    }
    if (failure !== null) throw failure instanceof Error ? failure : new Error(describeError(failure));
    const r = result as PublishBarsResult;
    const summary = {
      source: source.describe,
      exchange: EXCHANGE_BARS,
      published: r.published,
      confirmed: r.confirmed,
      resent: r.resent,
      rejected_rows: invalid.length,
      aborted: r.aborted,
      duration_ms: Math.round(r.durationMs),
      bars_per_second: r.durationMs > 0 ? Math.round((r.published / r.durationMs) * 1000) : 0,
      symbols: Object.fromEntries(perSymbol),
      first_ts: Number.isFinite(firstTs) ? new Date(firstTs).toISOString() : null,
      last_ts: Number.isFinite(lastTs) ? new Date(lastTs).toISOString() : null,
    };
    if (values.json === true) {
      ctx.out.write(`${JSON.stringify(summary)}\n`);
    } else {
      ctx.out.write(
        [
          `published ${summary.published} bars (${summary.confirmed} confirmed${summary.resent > 0 ? `, ${summary.resent} resent after a lost channel` : ''}) from ${summary.source}`,
          `  ${summary.duration_ms} ms, ${summary.bars_per_second} bars/s${rate > 0 ? ` (target ${rate})` : ''}`,
          `  symbols: ${[...perSymbol].map(([s, n]) => `${s}=${n}`).join(' ') || 'none'}`,
          `  bars from ${summary.first_ts ?? '-'} to ${summary.last_ts ?? '-'} (open times)`,
          invalid.length > 0 ? `  ${invalid.length} rows rejected (see stderr)` : '  no rows rejected',
          r.aborted ? '  interrupted: the remaining bars were not published' : '',
        ]
          .filter((l) => l !== '')
          .join('\n') + '\n',
      );
    }
    if (r.aborted) return ExitCode.Interrupted;
    return invalid.length > 0 ? ExitCode.Failure : ExitCode.Ok;
  },
});

/**
 * Queues that bars of `timeframe` are routed to from {@link EXCHANGE_BARS}, following the topology's
 * bindings for `shards` shards through exchange-to-exchange hops (a consistent-hash ring sends each
 * symbol to one of its queues, so every queue bound to a ring counts).
 */
export function barQueues(timeframe: string, shards: number, layout?: ShardLayout): string[] {
  const all = bindings(shards, layout);
  const key = routingKeys.bar(timeframe, 'X');
  const queues = new Set<string>();
  const visit = (exchange: string, matchAll: boolean, seen: Set<string>): void => {
    if (seen.has(exchange)) return;
    seen.add(exchange);
    for (const b of all) {
      if (b.source !== exchange || !(matchAll || topicMatches(b.pattern, key))) continue;
      if (b.exchangeToExchange === true) visit(b.destination, b.destination !== EXCHANGE_BARS, seen);
      else queues.add(b.destination);
    }
  };
  visit(EXCHANGE_BARS, false, new Set());
  return [...queues];
}

/** AMQP topic match of `pattern` (`*` one word, `#` zero or more) against `key`. */
function topicMatches(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  const go = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === '#') return go(i + 1, j) || (j < k.length && go(i, j + 1));
    return j < k.length && (p[i] === '*' || p[i] === k[j]) && go(i + 1, j + 1);
  };
  return go(0, 0);
}

/**
 * A warning when the bars about to be published reach no consuming queue: none of the pipeline's
 * queues for the timeframe exists or has a consumer in this vhost (a wrong vhost in AMQP_URL, or the
 * pipeline is not running). Null when some queue has a consumer; never throws.
 */
export async function unconsumedWarning(ctx: CommandContext, timeframe: string): Promise<string | null> {
  let model: Awaited<ReturnType<typeof connectBroker>> | null = null;
  try {
    // The recorded shard layout: after `pipeline shards resize` the queues have other names.
    const queues = barQueues(timeframe, ctx.config.shards, await loadShardLayout(ctx.config, ctx.log));
    if (queues.length === 0) return null;
    model = await connectBroker(ctx.config, 'pipeline-cli-publish-check');
    const counts: string[] = [];
    let consumers = 0;
    for (const queue of queues) {
      // A passive declare of a missing queue closes the channel: one channel per queue.
      const channel = await model.createChannel();
      channel.on('error', () => undefined);
      try {
        const ok = await channel.checkQueue(queue);
        consumers += ok.consumerCount;
        counts.push(`${queue}: ${ok.consumerCount} consumers, ${ok.messageCount} waiting`);
      } catch {
        counts.push(`${queue}: missing`);
      }
      await channel.close().catch(() => undefined);
    }
    if (consumers > 0) return null;
    return `warning: no pipeline worker consumes these bars on ${describeBrokerTarget(ctx.config.amqpUrl)} (${counts.join('; ')}); they will wait in the queues until a pipeline with this AMQP_URL runs. Is the vhost in AMQP_URL the pipeline's?`;
  } catch (err) {
    ctx.log.warn({ err }, 'could not check the consumers of the bar queues');
    return null;
  } finally {
    await model?.close().catch(() => undefined);
  }
}
