/**
 * The two halves of a replay that a faster path can replace on its own: where the bars come from
 * ({@link ReplaySource}, recorded CSV files) and how they enter the pipeline ({@link BarSink}; today
 * {@link OneBarPerMessageSink}, the public input of one bar per message with confirms). A batched sink
 * (docs/replay.md: batches of bars as one message on the internal exchange) implements the same
 * interface and the replay command does not change.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Bar } from '../../schemas/bar.schema';
import { HEADER_RESULTS_TO } from '../../schemas/result-batch.schema';
import type { PipelineConfig } from '../config/config';
import type { Logger } from '../observability/logger';
import type { BarProducer } from '../producers/bar-producer';
import { binanceKlineFile, readBinanceKlines } from '../producers/binance-klines';
import {
  csvFileNameSymbol,
  interleaveByTs,
  parseCsvTimestamp,
  readCsvBars,
  type InvalidCsvRow,
} from '../producers/csv-bars';
import { CliUsageError, pipelineProducer } from './common';

/** What a source holds for one symbol (after the --from/--to filter). */
export interface SymbolStats {
  symbol: string;
  /** Its files, in the order their bars are joined (by first bar). */
  files: string[];
  bars: number;
  firstTs: number | null;
  lastTs: number | null;
  /** Bars at or before the previous file's last bar, skipped when the files were joined. */
  overlapping: number;
  /** Places where one or more 5m bars are missing between two consecutive bars. */
  gaps: number;
  /** 5m bars missing in those gaps. */
  missingBars: number;
}

/** Recorded bars to replay: per symbol in `ts` order, interleaved across symbols by `ts`. */
export interface ReplaySource {
  /** The symbols the replay covers, sorted. */
  readonly symbols: readonly string[];
  /** How many bars {@link bars} yields (reads the files once). */
  count(): Promise<number>;
  /** Per symbol what {@link bars} yields (the same single read as {@link count}). */
  stats(): Promise<SymbolStats[]>;
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
 * Batched replay (docs/replay.md): consecutive bars of one symbol travel as one message (content type
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

/** Options of {@link barFileReplaySource}. */
export interface ReplaySourceOptions {
  /** Keep only these symbols. */
  symbols?: readonly string[];
  /** Keep bars with `ts >= from` (epoch ms). */
  from?: number;
  /** Keep bars with `ts < to` (epoch ms). */
  to?: number;
  /** Called for every row that is not a valid bar (the row is skipped). */
  onInvalidRow?: (file: string, line: number, reason: string) => void;
}

/** @deprecated the name before Binance archives; same function. */
export type CsvReplayOptions = ReplaySourceOptions;

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

/** A file of bars and how to read it. */
interface BarFile {
  path: string;
  kind: 'csv' | 'binance';
}

/** The kind and symbol of a bar file by its name, or null when the name is neither convention. */
function barFileOf(path: string): (BarFile & { symbol: string }) | null {
  const binance = binanceKlineFile(path);
  if (binance !== null) return { path, kind: 'binance', symbol: binance.symbol };
  const symbol = csvFileNameSymbol(path);
  return symbol === null ? null : { path, kind: 'csv', symbol };
}

/** Whether a folder entry is taken when the folder is given: our *_5m.csv and Binance 5m klines. */
function takenFromFolder(name: string): boolean {
  return name.endsWith('_5m.csv') || binanceKlineFile(name)?.interval === '5m';
}

const GLOB = /[*?[]/;

/** `*`, `?` and `[...]` of a file name as a regular expression. */
function globRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Expands the command's paths into bar files per symbol: a file is taken as it is, a folder stands
 * for its `*_5m.csv` files and Binance 5m kline files (`SYMBOL-5m-*.zip` or `.csv`), a file name with
 * `*`, `?` or `[...]` for the files it matches in its folder. A symbol may have several files (months
 * of a Binance archive): they are joined in time order. The same file given twice counts once.
 */
export async function resolveBarFiles(paths: readonly string[]): Promise<Map<string, BarFile[]>> {
  if (paths.length === 0)
    throw new CliUsageError(
      'give at least one bar file or folder: our CSV (BTCUSDT_5m.csv) or Binance klines (BTCUSDT-5m-2024-01.zip)',
    );
  const bySymbol = new Map<string, BarFile[]>();
  const seen = new Set<string>();
  for (const path of paths) {
    let files: string[];
    if (GLOB.test(basename(path))) {
      const folder = dirname(path);
      const re = globRegExp(basename(path));
      let names: string[];
      try {
        names = await readdir(folder);
      } catch {
        throw new CliUsageError(`${path}: no such folder ${folder}`);
      }
      files = names.filter((n) => re.test(n)).sort().map((n) => join(folder, n));
      if (files.length === 0) throw new CliUsageError(`${path}: matches no file`);
    } else {
      let info;
      try {
        info = await stat(path);
      } catch {
        throw new CliUsageError(`${path}: no such file or folder`);
      }
      if (info.isDirectory()) {
        files = (await readdir(path)).filter(takenFromFolder).sort().map((f) => join(path, f));
        if (files.length === 0)
          throw new CliUsageError(
            `${path}: the folder has no *_5m.csv file and no Binance 5m kline file (SYMBOL-5m-YYYY-MM.zip)`,
          );
      } else files = [path];
    }
    for (const file of files) {
      const key = resolve(file);
      if (seen.has(key)) continue;
      seen.add(key);
      const f = barFileOf(file);
      if (f === null)
        throw new CliUsageError(
          `${basename(file)}: cannot tell the symbol: name our CSV files SYMBOL_5m.csv and keep Binance's names (SYMBOL-5m-YYYY-MM.zip)`,
        );
      const list = bySymbol.get(f.symbol) ?? [];
      list.push({ path: f.path, kind: f.kind });
      bySymbol.set(f.symbol, list);
    }
  }
  return bySymbol;
}

function readBarFile(file: BarFile, symbol: string, onInvalidRow: (row: InvalidCsvRow) => void): AsyncGenerator<Bar> {
  return file.kind === 'binance'
    ? readBinanceKlines(file.path, { onInvalidRow })
    : readCsvBars(file.path, { symbol, onInvalidRow });
}

/** The ts of a file's first valid bar (null when it has none): the order files are joined in. */
async function firstTs(file: BarFile, symbol: string): Promise<number | null> {
  const it = readBarFile(file, symbol, () => undefined);
  try {
    const first = await it.next();
    return first.done === true ? null : first.value.ts;
  } finally {
    await it.return(undefined);
  }
}

const BAR_MS = 5 * 60_000;

/** Recorded 5m bars from our CSV files and Binance kline archives, filtered by symbol and time. */
export async function barFileReplaySource(
  paths: readonly string[],
  options: ReplaySourceOptions = {},
): Promise<ReplaySource> {
  const all = await resolveBarFiles(paths);
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

  const ordered = new Map<string, BarFile[]>();
  const filesOf = async (symbol: string): Promise<BarFile[]> => {
    let files = ordered.get(symbol);
    if (files === undefined) {
      const list = all.get(symbol) as BarFile[];
      if (list.length === 1) files = list;
      else {
        const firsts = await Promise.all(list.map((f) => firstTs(f, symbol)));
        files = list
          .map((f, i) => ({ f, t: firsts[i] ?? Infinity }))
          .sort((a, b) => a.t - b.t || a.f.path.localeCompare(b.f.path))
          .map((x) => x.f);
      }
      ordered.set(symbol, files);
    }
    return files;
  };

  /** One symbol's bars: its files joined in order, bars at or before the last one skipped. */
  async function* joined(symbol: string, stats: SymbolStats | null, report: boolean): AsyncGenerator<Bar> {
    let lastTs = -Infinity;
    for (const file of await filesOf(symbol)) {
      const onInvalidRow = (row: InvalidCsvRow): void => {
        if (report) options.onInvalidRow?.(file.path, row.line, row.reason);
      };
      for await (const bar of readBarFile(file, symbol, onInvalidRow)) {
        if (!keep(bar)) continue;
        if (bar.ts <= lastTs) {
          if (stats !== null) stats.overlapping++;
          continue;
        }
        if (stats !== null) {
          if (lastTs !== -Infinity && bar.ts - lastTs > BAR_MS) {
            stats.gaps++;
            stats.missingBars += Math.round((bar.ts - lastTs) / BAR_MS) - 1;
          }
          stats.bars++;
          stats.firstTs ??= bar.ts;
          stats.lastTs = bar.ts;
        }
        lastTs = bar.ts;
        yield bar;
      }
    }
  }

  let counted: SymbolStats[] | null = null;
  const stats = async (): Promise<SymbolStats[]> => {
    if (counted !== null) return counted;
    const out: SymbolStats[] = [];
    // Invalid rows are reported while publishing, not twice.
    for (const symbol of chosen) {
      const s: SymbolStats = {
        symbol,
        files: (await filesOf(symbol)).map((f) => f.path),
        bars: 0,
        firstTs: null,
        lastTs: null,
        overlapping: 0,
        gaps: 0,
        missingBars: 0,
      };
      for await (const _bar of joined(symbol, s, false));
      out.push(s);
    }
    counted = out;
    return out;
  };
  return {
    symbols: chosen,
    stats,
    async count() {
      return (await stats()).reduce((n, s) => n + s.bars, 0);
    },
    bars: () => interleaveByTs(chosen.map((symbol) => joined(symbol, null, true))),
  };
}
