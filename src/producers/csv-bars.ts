import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { BarSchema, type Bar, type Timeframe } from '../../schemas/bar.schema';
import { ValidationError } from '../errors';

/** The columns a bar CSV must have (in any order; extra columns are ignored). */
export const CSV_BAR_COLUMNS = ['timestamp', 'open', 'high', 'low', 'close', 'volume'] as const;
/** The optional column naming each row's symbol. */
export const CSV_SYMBOL_COLUMN = 'symbol';

/** A CSV row that could not be turned into a valid {@link Bar}. */
export interface InvalidCsvRow {
  /** 1-based line number in the file (the header is line 1). */
  line: number;
  /** The raw line, as read. */
  text: string;
  /** Why it was rejected, in words a person can act on. */
  reason: string;
}

/** Options of {@link readCsvBars}. */
export interface CsvBarsOptions {
  /**
   * Symbol of every bar (a `--symbol` option). Without it the bars take the file's `symbol` column,
   * else the symbol the file name unambiguously is ({@link csvFileNameSymbol}); otherwise reading
   * throws a {@link ValidationError} naming the file and both fixes. With it, a row whose `symbol`
   * column says otherwise is rejected.
   */
  symbol?: string;
  /** Timeframe of the rows. @defaultValue `'5m'` */
  timeframe?: Timeframe;
  /**
   * Called for every row that fails {@link BarSchema} (or the order check); the row is skipped and
   * reading goes on. Without it the first bad row throws a {@link ValidationError} naming its line.
   */
  onInvalidRow?: (row: InvalidCsvRow) => void;
  /**
   * Reject a row whose `ts` is not after the previous accepted row's: the pipeline would drop a
   * duplicate and dead-letter an out-of-order bar, so it is better reported here. @defaultValue true
   */
  requireIncreasingTs?: boolean;
}

/**
 * The symbol a CSV file's name states without doubt, or null: the name must be exactly a symbol in
 * capitals and digits, optionally followed by `_<timeframe>` (`BTCUSDT.csv`, `BTCUSDT_5m.csv`,
 * `ETH_30m.csv`). `tail_BTCUSDT.csv`, `btc.csv` or `BTCUSDT-2025.csv` state no symbol.
 */
export function csvFileNameSymbol(path: string): string | null {
  const match = /^([A-Z0-9]{2,32})(?:_\d+[smhdw])?\.csv$/i.exec(basename(path));
  if (match === null) return null;
  const symbol = match[1] as string;
  return symbol === symbol.toUpperCase() ? symbol : null;
}

/** The error for a CSV whose symbol cannot be told: names the file and the two ways to fix it. */
export function noCsvSymbolError(file: string): ValidationError {
  return new ValidationError(
    `${file}: cannot tell the symbol of its bars: the file has no "${CSV_SYMBOL_COLUMN}" column and its name is not a symbol ` +
      `(such as BTCUSDT.csv or BTCUSDT_5m.csv). Pass --symbol <SYMBOL>, or add a "${CSV_SYMBOL_COLUMN}" column to the file.`,
  );
}

/**
 * The symbol a CSV file's name states ({@link csvFileNameSymbol}); throws {@link noCsvSymbolError}
 * when the name states none, rather than guessing (`tail_BTCUSDT.csv` is not symbol `tail`).
 */
export function symbolFromCsvPath(path: string): string {
  const symbol = csvFileNameSymbol(path);
  if (symbol === null) throw noCsvSymbolError(path);
  return symbol;
}

/**
 * Where the bars of the CSV file `path` take their symbol from, checked before reading it: `--symbol`
 * (`explicit`), else the file's `symbol` column, else its name ({@link csvFileNameSymbol}). Throws
 * {@link noCsvSymbolError} when none applies.
 */
export async function csvSymbolSource(path: string, explicit?: string): Promise<string> {
  if (explicit !== undefined) return `${explicit} (--symbol)`;
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let header = '';
  try {
    for await (const line of lines) {
      header = line.replace(/^\uFEFF/, '');
      if (header.trim() !== '') break;
    }
  } finally {
    lines.close();
    input.destroy();
  }
  if (header.split(',').some((c) => c.trim().toLowerCase() === CSV_SYMBOL_COLUMN)) return `its ${CSV_SYMBOL_COLUMN} column`;
  const symbol = csvFileNameSymbol(path);
  if (symbol === null) throw noCsvSymbolError(path);
  return `${symbol} (file name)`;
}

/**
 * Parses a CSV timestamp into epoch milliseconds (UTC). The one timestamp parser of every bar file
 * the project reads (our CSV, Binance's klines, `--from`/`--to`):
 * - an integer of epoch milliseconds (`1743699900000`), or of epoch microseconds (`1743699900000000`,
 *   as Binance writes open times from 2025 on): told apart by magnitude, above 10^14 is µs (10^14 ms
 *   would be the year 5138);
 * - an ISO-8601-like date-time, `2025-04-03 17:05:00+00:00` or `2025-04-03T17:05:00Z`. Without a
 *   zone designator the time is taken as UTC, never as the machine's local time.
 * Returns a string saying what is wrong when the value cannot be parsed.
 */
export function parseCsvTimestamp(raw: string): number | string {
  const value = raw.trim();
  if (value === '') return 'timestamp is empty';
  if (/^\d+$/.test(value)) {
    const ms = Number(value);
    // 1e11 ms is 1973; epoch seconds of any recent date are below it and would otherwise be read as 1970.
    if (ms < 1e11) return `timestamp ${value} looks like epoch seconds; give epoch milliseconds`;
    if (ms > 1e14) {
      if (ms % 1000 !== 0) return `timestamp ${value} (epoch microseconds) is not a whole millisecond`;
      return ms / 1000;
    }
    return ms;
  }
  let iso = value.replace(' ', 'T');
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(iso)) iso += 'Z';
  const parts = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.exec(iso);
  if (parts === null) {
    return `timestamp ${JSON.stringify(value)} is neither epoch milliseconds nor YYYY-MM-DD HH:MM:SS[+zone]`;
  }
  // Date.parse rolls impossible days over (2025-02-30 becomes 2025-03-02) and takes 24:00 as the
  // next day: a row would silently get another bar's time. Found by fuzzing.
  const [year, month, day, hour] = [parts[1], parts[2], parts[3], parts[4]].map(Number) as [number, number, number, number];
  const daysInMonth = month >= 1 && month <= 12 ? new Date(Date.UTC(year, month, 0)).getUTCDate() : 0;
  if (day < 1 || day > daysInMonth || hour > 23) {
    return `timestamp ${JSON.stringify(value)} is not a valid date: no such day or hour`;
  }
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? `timestamp ${JSON.stringify(value)} is not a valid date` : ms;
}

/** A decimal number as CSV exports write it: `12`, `-0.5`, `.5`, `1e-3`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A CSV cell as a number: NaN for anything but a decimal number (an empty cell is not 0). */
export function parseCsvNumber(raw: string | undefined): number {
  // Number('') is 0, which would hide an empty cell, and Number('0x10') is 16 (found by fuzzing):
  // anything but a decimal number is NaN, so the schema names the column.
  const cell = raw?.trim() ?? '';
  return DECIMAL.test(cell) ? Number(cell) : Number.NaN;
}

/**
 * The row logic of {@link readCsvBars} and {@link parseCsvBarsText}: takes the lines of one file in
 * order and answers the bar of each (null for the header, a blank line or a rejected row).
 */
function csvLineParser(fileName: string | null, options: CsvBarsOptions): { take(rawLine: string): Bar | null; end(): void } {
  const timeframe = options.timeframe ?? '5m';
  const requireIncreasing = options.requireIncreasingTs ?? true;
  const report = (row: InvalidCsvRow): void => {
    if (options.onInvalidRow === undefined) {
      throw new ValidationError(`line ${row.line}: ${row.reason}: ${row.text}`);
    }
    options.onInvalidRow(row);
  };
  let lineNo = 0;
  let columns: Map<string, number> | null = null;
  let fixedSymbol: string | null = options.symbol ?? null;
  let lastTs = -Infinity;
  let lastLine = 0;
  return {
    take(rawLine: string): Bar | null {
      lineNo++;
      const text = lineNo === 1 ? rawLine.replace(/^\uFEFF/, '') : rawLine;
      if (text.trim() === '') return null;
      const cells = text.split(',');
      if (columns === null) {
        columns = new Map(cells.map((c, i) => [c.trim().toLowerCase(), i]));
        const missing = CSV_BAR_COLUMNS.filter((c) => !columns?.has(c));
        if (missing.length > 0) {
          throw new ValidationError(
            `line ${lineNo}: header must have the columns ${CSV_BAR_COLUMNS.join(',')}; missing ${missing.join(', ')}`,
          );
        }
        if (fixedSymbol === null && !columns.has(CSV_SYMBOL_COLUMN)) {
          fixedSymbol = fileName !== null ? csvFileNameSymbol(fileName) : null;
          if (fixedSymbol === null) throw noCsvSymbolError(fileName ?? 'the CSV');
        }
        return null;
      }
      const cols = columns;
      const cell = (name: (typeof CSV_BAR_COLUMNS)[number]): string | undefined => cells[cols.get(name) ?? -1];
      const ts = parseCsvTimestamp(cell('timestamp') ?? '');
      if (typeof ts === 'string') {
        report({ line: lineNo, text, reason: ts });
        return null;
      }
      const rowSymbol = cols.has(CSV_SYMBOL_COLUMN) ? (cells[cols.get(CSV_SYMBOL_COLUMN) ?? -1] ?? '').trim() : null;
      if (options.symbol !== undefined && rowSymbol !== null && rowSymbol !== options.symbol) {
        report({ line: lineNo, text, reason: `symbol column says ${JSON.stringify(rowSymbol)} but --symbol is ${options.symbol}` });
        return null;
      }
      const candidate = {
        symbol: fixedSymbol ?? rowSymbol ?? '',
        timeframe,
        ts,
        open: parseCsvNumber(cell('open')),
        high: parseCsvNumber(cell('high')),
        low: parseCsvNumber(cell('low')),
        close: parseCsvNumber(cell('close')),
        volume: parseCsvNumber(cell('volume')),
      };
      const parsed = BarSchema.safeParse(candidate);
      if (!parsed.success) {
        report({ line: lineNo, text, reason: parsed.error.issues.map((i) => i.message).join('; ') });
        return null;
      }
      if (requireIncreasing && parsed.data.ts <= lastTs) {
        const what = parsed.data.ts === lastTs ? 'repeats the time of' : 'is older than';
        report({
          line: lineNo,
          text,
          reason: `ts ${new Date(parsed.data.ts).toISOString()} ${what} line ${lastLine}; rows must be in time order`,
        });
        return null;
      }
      lastTs = parsed.data.ts;
      lastLine = lineNo;
      return parsed.data;
    },
    end(): void {
      if (columns === null) throw new ValidationError('the CSV is empty: expected a header line');
    },
  };
}

/**
 * Reads a CSV of bars (header `timestamp,open,high,low,close,volume`) line by line, without loading
 * the file, and yields one validated {@link Bar} per row in file order. `timestamp` is the bar's
 * OPEN time (checked on the sample data: a 30m row's open and high match the 5m rows stamped from
 * the same time onwards), as epoch ms or µs or an ISO date-time, UTC without a zone
 * ({@link parseCsvTimestamp}). Rows that fail {@link BarSchema} are reported with their line number
 * through `onInvalidRow`, or throw when there is no such callback; blank lines are skipped.
 */
export async function* readCsvBars(source: string | Readable, options: CsvBarsOptions): AsyncGenerator<Bar> {
  const input = typeof source === 'string' ? createReadStream(source, { encoding: 'utf8' }) : source;
  const lines = createInterface({ input, crlfDelay: Infinity });
  const parser = csvLineParser(typeof source === 'string' ? source : null, options);
  try {
    for await (const rawLine of lines) {
      const bar = parser.take(rawLine);
      if (bar !== null) yield bar;
    }
    parser.end();
  } finally {
    lines.close();
    if (typeof source === 'string') input.destroy();
  }
}

/**
 * The bars of a whole CSV text, by the same rules as {@link readCsvBars}: for callers that hold the
 * file in memory and need the bars at once (the agents' training and evaluation data).
 * `fileName` gives the symbol when the text has no symbol column and `options.symbol` is unset.
 */
export function parseCsvBarsText(text: string, options: CsvBarsOptions, fileName: string | null = null): Bar[] {
  const parser = csvLineParser(fileName, options);
  const out: Bar[] = [];
  for (const line of text.split('\n')) {
    const bar = parser.take(line.endsWith('\r') ? line.slice(0, -1) : line);
    if (bar !== null) out.push(bar);
  }
  parser.end();
  return out;
}

/** Number of data rows in a CSV file (lines after the header that are not blank), read in chunks. */
export async function countCsvRows(path: string): Promise<number> {
  let lines = 0;
  let nonBlankInLine = false;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (const byte of chunk) {
      if (byte === 0x0a) {
        if (nonBlankInLine) lines++;
        nonBlankInLine = false;
      } else if (byte !== 0x0d && byte !== 0x20) {
        nonBlankInLine = true;
      }
    }
  }
  if (nonBlankInLine) lines++;
  return Math.max(0, lines - 1);
}

/**
 * Merges several bar streams, each in `ts` order, into one stream in `ts` order (ties by symbol), so
 * that a multi-symbol replay looks like a live feed: bar by bar across symbols, never one symbol
 * after another. Reads one bar ahead per source.
 */
export async function* interleaveByTs(
  sources: readonly (AsyncIterable<Bar> | Iterable<Bar>)[],
): AsyncGenerator<Bar> {
  const iterators = sources.map((s) =>
    Symbol.asyncIterator in s ? (s)[Symbol.asyncIterator]() : toAsync(s),
  );
  const heads: (Bar | null)[] = await Promise.all(iterators.map(async (it) => nextOf(it)));
  try {
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const head = heads[i];
        const current = best >= 0 ? heads[best] : null;
        if (head === null || head === undefined) continue;
        if (
          current === null ||
          current === undefined ||
          head.ts < current.ts ||
          (head.ts === current.ts && head.symbol < current.symbol)
        ) {
          best = i;
        }
      }
      if (best < 0) return;
      const bar = heads[best] as Bar;
      heads[best] = await nextOf(iterators[best] as AsyncIterator<Bar>);
      yield bar;
    }
  } finally {
    await Promise.all(iterators.map(async (it) => it.return?.()));
  }
}

async function nextOf(it: AsyncIterator<Bar>): Promise<Bar | null> {
  const r = await it.next();
  return r.done === true ? null : r.value;
}

function toAsync(iterable: Iterable<Bar>): AsyncIterator<Bar> {
  const it = iterable[Symbol.iterator]();
  return {
    next: () => Promise.resolve(it.next()),
    return: (value?: unknown) => Promise.resolve(it.return?.(value as never) ?? { done: true, value: undefined }),
  };
}

