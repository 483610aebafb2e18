/**
 * Binance's public kline archives as they are downloaded (data.binance.vision): `BTCUSDT-5m-2024-01.zip`
 * (monthly) or `BTCUSDT-5m-2024-01-05.zip` (daily), each one CSV without a header (a header line,
 * as some newer files have, is skipped), or that CSV extracted. Columns: open time, open, high, low,
 * close, volume, close time, and five more that bars do not use. Open times are epoch milliseconds,
 * and epoch microseconds in files from 2025 on: told apart per row by magnitude (above 10^14 is µs,
 * which is the year 5138 in ms). The symbol is the file name before its first `-`, the interval the
 * part after it.
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { BarSchema, type Bar } from '../../schemas/bar.schema';
import { ValidationError } from '../errors';
import { parseCsvNumber, parseCsvTimestamp, type InvalidCsvRow } from './csv-bars';
import { readZipEntries } from './zip-file';

/** `SYMBOL-INTERVAL-YYYY-MM[-DD].zip|csv`, as Binance names its kline files. */
const NAME = /^([A-Z0-9]{2,32})-(\d+[smhdwM])-\d{4}-\d{2}(?:-\d{2})?\.(zip|csv)$/;

/** Symbol and interval of a Binance kline file name, or null when the name is not one. */
export function binanceKlineFile(path: string): { symbol: string; interval: string } | null {
  const m = NAME.exec(basename(path));
  return m === null ? null : { symbol: m[1] as string, interval: m[2] as string };
}

/** Options of {@link readBinanceKlines}. */
export interface BinanceKlinesOptions {
  /** Called for every row that is not a valid bar (skipped); without it the first one throws. */
  onInvalidRow?: (row: InvalidCsvRow) => void;
}

async function* lines(path: string): AsyncGenerator<string> {
  if (path.endsWith('.zip')) {
    const entries = (await readZipEntries(path)).filter((e) => e.name.toLowerCase().endsWith('.csv'));
    if (entries.length !== 1)
      throw new ValidationError(`${path}: expected one CSV file in the archive, found ${entries.length}`);
    const text = (entries[0] as (typeof entries)[number]).read().toString('utf8');
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) {
        if (start < text.length) yield text.slice(start);
        return;
      }
      yield text.slice(start, text[nl - 1] === '\r' ? nl - 1 : nl);
      start = nl + 1;
    }
  }
  const input = createReadStream(path, { encoding: 'utf8' });
  const rl = createInterface({ input, crlfDelay: Infinity });
  try {
    yield* rl;
  } finally {
    rl.close();
    input.destroy();
  }
}

/**
 * The 5m bars of one Binance kline file (zip or extracted CSV), in file order; rows must be in time
 * order. Throws a {@link ValidationError} for a name that is not a kline file or an interval other
 * than 5m.
 */
export async function* readBinanceKlines(path: string, options: BinanceKlinesOptions = {}): AsyncGenerator<Bar> {
  const file = binanceKlineFile(path);
  if (file === null)
    throw new ValidationError(`${path}: not a Binance kline file name (SYMBOL-5m-YYYY-MM[-DD].zip or .csv)`);
  if (file.interval !== '5m')
    throw new ValidationError(`${path}: ${file.interval} klines; the pipeline takes 5m bars (download the 5m archives)`);
  const report = (row: InvalidCsvRow): void => {
    if (options.onInvalidRow === undefined) throw new ValidationError(`line ${row.line}: ${row.reason}: ${row.text}`);
    options.onInvalidRow(row);
  };
  let lineNo = 0;
  let lastTs = -Infinity;
  for await (const text of lines(path)) {
    lineNo++;
    if (text.trim() === '') continue;
    const cells = text.split(',');
    const first = (cells[0] ?? '').trim();
    // A header (newer files have one): the first line that does not start with a number.
    if (lineNo === 1 && !/^\d+$/.test(first)) continue;
    // Epoch ms, or µs in files from 2025 on: the project's one timestamp parser tells them apart.
    const ts = parseCsvTimestamp(first);
    if (typeof ts === 'string') {
      report({ line: lineNo, text, reason: ts });
      continue;
    }
    const parsed = BarSchema.safeParse({
      symbol: file.symbol,
      timeframe: '5m',
      ts,
      open: parseCsvNumber(cells[1]),
      high: parseCsvNumber(cells[2]),
      low: parseCsvNumber(cells[3]),
      close: parseCsvNumber(cells[4]),
      volume: parseCsvNumber(cells[5]),
    });
    if (!parsed.success) {
      report({ line: lineNo, text, reason: parsed.error.issues.map((i) => i.message).join('; ') });
      continue;
    }
    if (parsed.data.ts <= lastTs) {
      report({ line: lineNo, text, reason: `open time ${new Date(ts).toISOString()} is not after the previous row's` });
      continue;
    }
    lastTs = parsed.data.ts;
    yield parsed.data;
  }
}
