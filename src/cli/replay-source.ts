/**
 * The two halves of a replay that a faster path can replace on its own: where the bars come from
 * ({@link ReplaySource}, recorded CSV files) and how they enter the pipeline ({@link BarSink}; today
 * {@link OneBarPerMessageSink}, the public input of one bar per message with confirms). A batched sink
 * (DESIGN.md "Replay": batches of bars as one message on the internal exchange) implements the same
 * interface and the replay command does not change.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Bar } from '../../schemas/bar.schema';
import { HEADER_RESULTS_TO } from '../../schemas/result-batch.schema';
import type { PipelineConfig } from '../config/config';
import type { Logger } from '../observability/logger';
import type { BarProducer } from '../producers/bar-producer';
import {
  interleaveByTs,
  parseCsvTimestamp,
  readCsvBars,
  symbolFromCsvPath,
} from '../producers/csv-bars';
import { CliUsageError, pipelineProducer } from './common';

/** Recorded bars to replay: per symbol in `ts` order, interleaved across symbols by `ts`. */
export interface ReplaySource {
  /** The symbols the replay covers, sorted. */
  readonly symbols: readonly string[];
  /** How many bars {@link bars} yields (reads the files once). */
  count(): Promise<number>;
  /** The bars, per symbol in `ts` order, interleaved across symbols by `ts` (ties by symbol). */
  bars(): AsyncIterable<Bar>;
}

/** What a sink reports when its input is exhausted (or aborted). */
export interface SinkResult {
  published: number;
  confirmed: number;
  aborted: boolean;
}

/** Options of {@link BarSink.publish}. */
export interface SinkPublishOptions {
  signal?: AbortSignal;
  /** Called once per bar when it leaves for the broker. */
  onSent?: (bar: Bar, atMs: number) => void;
  /** Called with the number of bars the broker confirmed so far. */
  onProgress?: (confirmed: number) => void;
  /**
   * Batched sinks: the routing key on `pipeline.internal` the results of each batch go to, as one
   * message per batch (the collector's own queue), instead of one message each on `pipeline.results`.
   */
  resultsTo?: string;
}

/** How bars enter the pipeline. */
export interface BarSink {
  /** Shown in the replay's summary. */
  readonly description: string;
  start(): Promise<void>;
  /** Publishes every bar of `bars`, in order, and resolves once the broker confirmed them all. */
  publish(bars: AsyncIterable<Bar>, options: SinkPublishOptions): Promise<SinkResult>;
  stop(): Promise<void>;
}

/**
 * The public input (wire contract section 2): one persistent JSON message per bar to `market.bars`,
 * publisher confirms, at most `maxInFlight` unconfirmed, no pacing. Each bar is then one hop into
 * the tactical worker, which bounds throughput well below a batched path.
 */
export class OneBarPerMessageSink implements BarSink {
  readonly description: string;
  private readonly producer: BarProducer;

  constructor(
    config: PipelineConfig,
    log: Logger,
    maxInFlight: number,
    connectionName = 'pipeline-replay-producer',
  ) {
    this.description = `one bar per message to market.bars, confirms, at most ${maxInFlight} in flight`;
    this.producer = pipelineProducer(config, log, { connectionName, maxUnconfirmed: maxInFlight });
  }

  start(): Promise<void> {
    return this.producer.start();
  }

  async publish(bars: AsyncIterable<Bar>, options: SinkPublishOptions): Promise<SinkResult> {
    const { resultsTo: _results, ...rest } = options; // results of single bars go to pipeline.results
    const r = await this.producer.publish(bars, { ratePerSecond: 0, ...rest });
    return { published: r.published, confirmed: r.confirmed, aborted: r.aborted };
  }

  stop(): Promise<void> {
    return this.producer.stop();
  }
}

/**
 * DESIGN.md "Replay": consecutive bars of one symbol travel as one message (content type
 * `application/vnd.pipeline.bar-batch+json`) on `pipeline.internal` as `bars.5m.<symbol>`, which
 * routes it to the symbol's tactical shard; the tactical worker takes it as one delivery and processes
 * its bars exactly as if each had come alone. Bars are gathered per symbol from the interleaved
 * source and a symbol's batch leaves when it holds `batchBars` bars (and at the end), so per symbol
 * the order is the source's. The results are the pipeline's ordinary ones, one per bar.
 */
export class BatchedBarSink implements BarSink {
  readonly description: string;
  private readonly producer: BarProducer;

  constructor(
    config: PipelineConfig,
    log: Logger,
    private readonly batchBars: number,
    maxInFlightMessages: number,
    connectionName = 'pipeline-replay-producer',
  ) {
    if (!Number.isInteger(batchBars) || batchBars < 1) throw new RangeError(`batchBars must be a positive integer, got ${batchBars}`);
    this.description = `batches of up to ${batchBars} bars of one symbol per message on pipeline.internal, confirms, at most ${maxInFlightMessages} messages in flight`;
    this.producer = pipelineProducer(config, log, { connectionName, maxUnconfirmed: maxInFlightMessages });
  }

  start(): Promise<void> {
    return this.producer.start();
  }

  async publish(bars: AsyncIterable<Bar>, options: SinkPublishOptions): Promise<SinkResult> {
    const { resultsTo, ...rest } = options;
    const r = await this.producer.publishBatches(batchBySymbol(bars, this.batchBars), {
      ratePerSecond: 0,
      ...rest,
      ...(resultsTo === undefined ? {} : { headers: { [HEADER_RESULTS_TO]: resultsTo } }),
    });
    return { published: r.published, confirmed: r.confirmed, aborted: r.aborted };
  }

  stop(): Promise<void> {
    return this.producer.stop();
  }
}

/**
 * Groups an interleaved stream of bars into per-symbol batches of `size` bars, each batch in the
 * source's order; a batch leaves as soon as it is full, the rest at the end (symbols sorted).
 */
export async function* batchBySymbol(bars: AsyncIterable<Bar> | Iterable<Bar>, size: number): AsyncGenerator<Bar[]> {
  const open = new Map<string, Bar[]>();
  for await (const bar of bars) {
    let batch = open.get(bar.symbol);
    if (batch === undefined) {
      batch = [];
      open.set(bar.symbol, batch);
    }
    batch.push(bar);
    if (batch.length >= size) {
      open.delete(bar.symbol);
      yield batch;
    }
  }
  for (const symbol of [...open.keys()].sort()) yield open.get(symbol) as Bar[];
}

/** Options of {@link csvReplaySource}. */
export interface CsvReplayOptions {
  /** Keep only these symbols (the symbol is the file name up to its first `_`). */
  symbols?: readonly string[];
  /** Keep bars with `ts >= from` (epoch ms). */
  from?: number;
  /** Keep bars with `ts < to` (epoch ms). */
  to?: number;
  /** Called for every CSV row that is not a valid bar (the row is skipped). */
  onInvalidRow?: (file: string, line: number, reason: string) => void;
}

/** `--from`/`--to`: epoch milliseconds or an ISO-8601 date(-time), UTC when no zone is given. */
export function parseTimeFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = /^\d{4}-\d{2}-\d{2}$/.test(value.trim()) ? `${value.trim()}T00:00:00Z` : value;
  const t = parseCsvTimestamp(v);
  if (typeof t === 'string')
    throw new CliUsageError(
      `--${name}: ${t} (give epoch milliseconds or a date like 2025-04-03 or 2025-04-03T17:05:00Z)`,
    );
  return t;
}

/**
 * Expands the command's paths: a file is taken as it is, a folder stands for its `*_5m.csv` files.
 * Two files of one symbol are refused (the bars of a symbol must come in one `ts` order).
 */
export async function resolveCsvFiles(paths: readonly string[]): Promise<Map<string, string>> {
  if (paths.length === 0)
    throw new CliUsageError('give at least one CSV file or folder of *_5m.csv files');
  const bySymbol = new Map<string, string>();
  for (const path of paths) {
    let files: string[];
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new CliUsageError(`${path}: no such file or folder`);
    }
    if (info.isDirectory()) {
      files = (await readdir(path))
        .filter((f) => f.endsWith('_5m.csv'))
        .sort()
        .map((f) => join(path, f));
      if (files.length === 0) throw new CliUsageError(`${path}: the folder has no *_5m.csv file`);
    } else {
      files = [path];
    }
    for (const file of files) {
      const symbol = symbolFromCsvPath(file);
      const other = bySymbol.get(symbol);
      if (other !== undefined)
        throw new CliUsageError(
          `${basename(other)} and ${basename(file)} are both symbol ${symbol}; replay one file per symbol`,
        );
      bySymbol.set(symbol, file);
    }
  }
  return bySymbol;
}

/** Recorded 5m bars from CSV files (one per symbol), filtered by symbol and time. */
export async function csvReplaySource(
  paths: readonly string[],
  options: CsvReplayOptions = {},
): Promise<ReplaySource> {
  const all = await resolveCsvFiles(paths);
  let chosen = [...all.keys()].sort();
  if (options.symbols !== undefined && options.symbols.length > 0) {
    const unknown = options.symbols.filter((s) => !all.has(s));
    if (unknown.length > 0)
      throw new CliUsageError(
        `--symbols: no file for ${unknown.join(', ')} (files give ${chosen.join(', ')})`,
      );
    chosen = [...new Set(options.symbols)].sort();
  }
  const { from, to } = options;
  if (from !== undefined && to !== undefined && to <= from)
    throw new CliUsageError('--to must be after --from');
  const keep = (bar: Bar): boolean =>
    (from === undefined || bar.ts >= from) && (to === undefined || bar.ts < to);
  const read = (symbol: string): AsyncGenerator<Bar> => {
    const file = all.get(symbol) as string;
    return filterBars(
      readCsvBars(file, {
        symbol,
        onInvalidRow: (row) => options.onInvalidRow?.(file, row.line, row.reason),
      }),
      keep,
    );
  };
  let counted: number | null = null;
  return {
    symbols: chosen,
    async count() {
      if (counted !== null) return counted;
      let n = 0;
      // Invalid rows are reported while publishing, not twice.
      for (const symbol of chosen) {
        const file = all.get(symbol) as string;
        for await (const _bar of filterBars(
          readCsvBars(file, { symbol, onInvalidRow: () => undefined }),
          keep,
        ))
          n++;
      }
      counted = n;
      return n;
    },
    bars: () => interleaveByTs(chosen.map(read)),
  };
}

async function* filterBars(
  source: AsyncIterable<Bar>,
  keep: (bar: Bar) => boolean,
): AsyncGenerator<Bar> {
  for await (const bar of source) if (keep(bar)) yield bar;
}
