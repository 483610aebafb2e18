import type { Bar } from '../../schemas/bar.schema';
import { EXCHANGE_BARS, routingKeys } from '../broker/topology';
import { ValidationError } from '../errors';
import type { PublishBarsResult } from '../producers/bar-producer';
import type { BarSource } from '../producers/bar-source';
import { BINANCE_REST_URL, BINANCE_WS_URL, BinanceKlineSource } from '../producers/binance-kline-source';
import { CliUsageError, ExitCode, defineCommand, describeError, integer, pipelineProducer, type CommandContext } from './common';
import { unconsumedWarning } from './publish-command';

const HELP = `Publishes live 5m bars from an exchange's public market data to the exchange ${EXCHANGE_BARS}
(routing key ${routingKeys.bar('5m', '<symbol>')}, persistent, messageId <symbol>:5m:<ts>, with confirms),
until SIGTERM or Ctrl-C; then it waits for the last confirm and exits 0.

binance: Binance's combined kline stream (<symbol lower case>@kline_5m, no API key). Only closed
candles (k.x true) become bars, with the candle's open time as ts. After a disconnect it reconnects
with backoff and jitter; when a closed candle arrives more than 5 minutes after the symbol's last
published one, the missing candles are fetched from REST (/api/v3/klines, by candle time) and
published first, in order. No bar is published twice. Candle times are never compared with this
machine's clock, so a mirror or a recorded stream may run at any speed.

Each published bar is reported on stderr as one line. Environment: AMQP_URL (a vhost in the path is
honoured), PIPELINE_QUEUE_TYPE, PIPELINE_MAX_ATTEMPTS, PIPELINE_PUBLISH_TIMEOUT_MS, as for
"pipeline publish".
Exit status: 0 after SIGTERM or Ctrl-C once every bar sent is confirmed; 1 when publishing failed or
the exchange rejected a request during the run; 2 when a setting is wrong or the exchange cannot be
reached at start (one line says which); 64 bad arguments.`;

/** `pipeline feed <exchange>`. */
export const feedCommand = defineCommand({
  options: {
    symbols: { type: 'string', value: 'A,B,C', description: 'Binance spot symbols (required), e.g. BTCUSDT,ETHUSDT' },
    'warmup-bars': {
      type: 'string', value: 'N', parse: integer(), default: 0,
      description: 'first publish the last N closed candles of each symbol from REST, so the pipeline has its history before the first live bar; the regime needs about 25 h (300 bars), similar patterns about 48 h (576)',
    },
    'ws-url': { type: 'string', value: 'url', default: BINANCE_WS_URL, description: 'stream endpoint' },
    'rest-url': { type: 'string', value: 'url', default: BINANCE_REST_URL, description: 'REST endpoint' },
    'reconnect-delay-ms': { type: 'string', value: 'ms', parse: integer(1), default: 1000, description: 'first reconnect delay, doubled per failed attempt up to 30 s' },
    'max-unconfirmed': { type: 'string', value: 'N', parse: integer(1), default: 1000, description: 'bars awaiting a confirm before publishing waits' },
    json: { type: 'boolean', description: 'print the final summary as one JSON object' },
  },
  subcommands: { binance: { description: "Binance's combined kline stream (closed 5m candles, no API key)" } },
  help: HELP,
  async run({ values, positionals: [exchange] }, ctx): Promise<number> {
    const symbols = (values.symbols ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (symbols.length === 0) throw new CliUsageError('--symbols is required, e.g. --symbols BTCUSDT,ETHUSDT');
    const { 'warmup-bars': warmupBars, 'reconnect-delay-ms': reconnectDelayMs, 'max-unconfirmed': maxUnconfirmed } = values;

    let source: BinanceKlineSource;
    try {
      source = new BinanceKlineSource({
        symbols,
        warmupBars,
        reconnectDelayMs,
        maxReconnectDelayMs: Math.max(30_000, reconnectDelayMs),
        log: ctx.log.child({ component: 'binance-feed' }),
        ...(values['ws-url'] === undefined ? {} : { wsUrl: values['ws-url'] }),
        ...(values['rest-url'] === undefined ? {} : { restUrl: values['rest-url'] }),
      });
    } catch (err) {
      if (err instanceof ValidationError) throw new CliUsageError(err.message);
      throw err;
    }
    const producer = pipelineProducer(ctx.config, ctx.log, {
      connectionName: `pipeline-feed-${exchange}`,
      maxUnconfirmed,
      closeTimeoutMs: ctx.config.closeTimeoutMs,
    });
    const result = await runFeed(source, producer, ctx);
    const c = source.counts;
    const summary = {
      exchange,
      symbols: source.symbolList.length,
      published: result.published,
      confirmed: result.confirmed,
      warmup: c.warmup,
      live: c.live,
      gap_filled: c.gapFilled,
      invalid: c.invalid,
      reconnects: c.reconnects,
      resent: result.resent,
    };
    ctx.out.write(
      values.json === true
        ? `${JSON.stringify(summary)}\n`
        : `published ${summary.published} bars (${summary.confirmed} confirmed): ${c.warmup} warm-up, ${c.live} live, ${c.gapFilled} from REST to fill gaps; ${c.invalid} invalid candles skipped; ${c.reconnects} reconnects\n`,
    );
    return ExitCode.Ok;
  },
});

/**
 * Publishes what `source` yields through `producer` until SIGTERM or SIGINT, then lets the last
 * bars be confirmed and stops the producer. Rejects with the source's or the producer's failure.
 */
async function runFeed(source: BarSource, producer: ReturnType<typeof pipelineProducer>, ctx: CommandContext): Promise<PublishBarsResult> {
  const err = ctx.err;
  const abort = new AbortController();
  const onSignal = (): void => {
    if (!abort.signal.aborted) err.write(`pipeline feed: stopping; waiting for the last confirms\n`);
    abort.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let result: PublishBarsResult | null = null;
  let failure: unknown = null;
  try {
    await producer.start();
    // Bars nobody consumes wait in the queues: say so at once (often a wrong vhost in AMQP_URL).
    const warning = await unconsumedWarning(ctx, '5m');
    if (warning !== null) err.write(`${warning}\n`);
    result = await producer.publish(source.bars(abort.signal), {
      signal: abort.signal,
      onSent: (bar: Bar) => err.write(`${bar.symbol} ${new Date(bar.ts).toISOString()} close ${bar.close}\n`),
    });
  } catch (e) {
    failure = e;
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    abort.abort(); // ends the source (closes its stream) whatever stopped the run
    await producer.stop();
  }
  if (failure !== null) throw failure instanceof Error ? failure : new Error(describeError(failure));
  return result as PublishBarsResult;
}
