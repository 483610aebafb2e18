import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BarSchema, type Bar } from '../../../schemas/bar.schema';
import { ValidationError } from '../../../src/errors';
import {
  countCsvRows,
  csvFileNameSymbol,
  csvSymbolSource,
  interleaveByTs,
  parseCsvTimestamp,
  readCsvBars,
  symbolFromCsvPath,
  type InvalidCsvRow,
} from '../../../src/producers/csv-bars';

const SAMPLE = join(__dirname, '..', '..', '..', 'data', 'market', 'BTCUSDT_5m.csv');

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

function csv(lines: string[]): Readable {
  return Readable.from([lines.join('\n')]);
}

const HEADER = 'timestamp,open,high,low,close,volume';

describe('readCsvBars', () => {
  it('reads the bundled sample as valid 5m bars stamped with their open time', async () => {
    const bars = await collect(readCsvBars(SAMPLE, { symbol: symbolFromCsvPath(SAMPLE) }));
    expect(bars).toHaveLength(await countCsvRows(SAMPLE));
    expect(bars[0]).toEqual({
      symbol: 'BTCUSDT',
      timeframe: '5m',
      ts: Date.UTC(2025, 3, 3, 17, 5),
      open: 81794.8,
      high: 81998.1,
      low: 81785.2,
      close: 81804.9,
      volume: 317.956,
    });
    for (const bar of bars) expect(BarSchema.safeParse(bar).success).toBe(true);
    for (let i = 1; i < bars.length; i++) expect((bars[i] as Bar).ts).toBeGreaterThan((bars[i - 1] as Bar).ts);
  });

  it('reports each bad row with its line number and keeps reading', async () => {
    const invalid: InvalidCsvRow[] = [];
    const bars = await collect(
      readCsvBars(
        csv([
          HEADER,
          '2025-04-03 17:05:00+00:00,10,11,9,10.5,1',
          '2025-04-03 17:10:00+00:00,10,9,11,10.5,1', // high below low
          'not-a-date,10,11,9,10.5,1',
          '',
          '2025-04-03 17:15:00+00:00,10,11,9,,1', // empty close
          '2025-04-03 17:17:00+00:00,10,11,9,10.5,1', // not on the 5m grid
          '2025-04-03 17:05:00+00:00,10,11,9,10.5,1', // repeats line 2
          '1743700200000,10,11,9,10.5,1', // epoch ms, 17:10
          '1743700500,10,11,9,10.5,1', // epoch seconds
        ]),
        { symbol: 'T', onInvalidRow: (row) => invalid.push(row) },
      ),
    );
    expect(bars.map((b) => b.ts)).toEqual([Date.UTC(2025, 3, 3, 17, 5), Date.UTC(2025, 3, 3, 17, 10)]);
    expect(invalid.map((r) => r.line)).toEqual([3, 4, 6, 7, 8, 10]);
    expect(invalid[0]?.reason).toMatch(/low 11 must be <= min/);
    expect(invalid[1]?.reason).toMatch(/timestamp "not-a-date"/);
    expect(invalid[2]?.reason).toMatch(/close/);
    expect(invalid[3]?.reason).toMatch(/not a multiple of 5m/);
    expect(invalid[4]?.reason).toMatch(/repeats the time of line 2/);
    expect(invalid[5]?.reason).toMatch(/epoch seconds/);
    expect(invalid[0]?.text).toBe('2025-04-03 17:10:00+00:00,10,9,11,10.5,1');
  });

  it('throws a ValidationError naming the line when no onInvalidRow is given', async () => {
    const run = collect(readCsvBars(csv([HEADER, '2025-04-03 17:05:00+00:00,10,11,9,10.5,-1']), { symbol: 'T' }));
    await expect(run).rejects.toThrow(ValidationError);
    await expect(
      collect(readCsvBars(csv([HEADER, '2025-04-03 17:05:00+00:00,10,11,9,10.5,-1']), { symbol: 'T' })),
    ).rejects.toThrow(/line 2: volume must not be negative/);
  });

  it('accepts CRLF, a BOM, reordered and extra columns, and a zone-less time as UTC', async () => {
    const bars = await collect(
      readCsvBars(Readable.from(['\uFEFFvolume,close,low,high,open,timestamp,extra\r\n1,10.5,9,11,10,2025-04-03T17:05:00,x\r\n']), {
        symbol: 'T',
      }),
    );
    expect(bars).toEqual([
      { symbol: 'T', timeframe: '5m', ts: Date.UTC(2025, 3, 3, 17, 5), open: 10, high: 11, low: 9, close: 10.5, volume: 1 },
    ]);
  });

  it('rejects a header without the required columns', async () => {
    await expect(collect(readCsvBars(csv(['time,open,high,low,close', '1,2,3,4,5']), { symbol: 'T' }))).rejects.toThrow(
      /missing timestamp, volume/,
    );
  });
});

describe('parseCsvTimestamp', () => {
  it('reads offsets other than UTC', () => {
    expect(parseCsvTimestamp('2025-04-03 19:05:00+02:00')).toBe(Date.UTC(2025, 3, 3, 17, 5));
  });
});

describe('the symbol of a CSV', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'csv-symbol-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, lines: string[]): string => {
    const path = join(dir, name);
    writeFileSync(path, `${lines.join('\n')}\n`);
    return path;
  };
  const ROW = '2025-04-03 17:05:00+00:00,1,2,0.5,1.5,10';

  it('comes from a file name that is exactly a symbol, optionally with a timeframe', () => {
    expect(symbolFromCsvPath('/a/b/BTCUSDT_5m.csv')).toBe('BTCUSDT');
    expect(symbolFromCsvPath('ETH.csv')).toBe('ETH');
    expect(csvFileNameSymbol('XRPUSDT_30m.csv')).toBe('XRPUSDT');
  });

  it('is not guessed from any other file name', () => {
    for (const name of ['tail_BTCUSDT.csv', 'btcusdt.csv', 'BTCUSDT-2025.csv', 'BTCUSDT_5m_part2.csv', 'BTCUSDT.txt']) {
      expect(csvFileNameSymbol(name)).toBeNull();
    }
    expect(() => symbolFromCsvPath('/data/tail_BTCUSDT.csv')).toThrow(
      /\/data\/tail_BTCUSDT\.csv: cannot tell the symbol.*--symbol <SYMBOL>.*"symbol" column/,
    );
  });

  it('refuses to read an ambiguous file without --symbol or a symbol column, naming the file and both fixes', async () => {
    const path = file('tail_BTCUSDT.csv', [HEADER, ROW]);
    await expect(collect(readCsvBars(path, {}))).rejects.toThrow(ValidationError);
    await expect(collect(readCsvBars(path, {}))).rejects.toThrow(/tail_BTCUSDT\.csv.*--symbol.*symbol" column/);
    await expect(csvSymbolSource(path)).rejects.toThrow(/tail_BTCUSDT\.csv: cannot tell the symbol/);
  });

  it('takes --symbol over the file name', async () => {
    const path = file('tail_BTCUSDT.csv', [HEADER, ROW]);
    const bars = await collect(readCsvBars(path, { symbol: 'BTCUSDT' }));
    expect(bars.map((b) => b.symbol)).toEqual(['BTCUSDT']);
    await expect(csvSymbolSource(path, 'BTCUSDT')).resolves.toBe('BTCUSDT (--symbol)');
  });

  it('takes a symbol column row by row, before the file name', async () => {
    const path = file('ETHUSDT_5m.csv', [`symbol,${HEADER}`, `SOLUSDT,${ROW}`, `SOLUSDT,2025-04-03 17:10:00+00:00,1,2,0.5,1.5,10`]);
    const bars = await collect(readCsvBars(path, {}));
    expect(bars.map((b) => b.symbol)).toEqual(['SOLUSDT', 'SOLUSDT']);
    await expect(csvSymbolSource(path)).resolves.toBe('its symbol column');
  });

  it('rejects a row whose symbol column disagrees with --symbol', async () => {
    const rejected: InvalidCsvRow[] = [];
    const bars = await collect(
      readCsvBars(csv([`${HEADER},symbol`, `${ROW},ETHUSDT`, `2025-04-03 17:10:00+00:00,1,2,0.5,1.5,10,BTCUSDT`]), {
        symbol: 'BTCUSDT',
        onInvalidRow: (row) => rejected.push(row),
      }),
    );
    expect(bars.map((b) => b.ts)).toEqual([Date.UTC(2025, 3, 3, 17, 10)]);
    expect(rejected).toEqual([expect.objectContaining({ line: 2, reason: expect.stringContaining('symbol column says "ETHUSDT" but --symbol is BTCUSDT') as string })]);
  });

  it('a stream without a symbol column and without --symbol is refused', async () => {
    await expect(collect(readCsvBars(csv([HEADER, ROW]), {}))).rejects.toThrow(/the CSV: cannot tell the symbol/);
  });
});

describe('interleaveByTs', () => {
  const bar = (symbol: string, ts: number): Bar => ({
    symbol,
    timeframe: '5m',
    ts,
    open: 1,
    high: 1,
    low: 1,
    close: 1,
    volume: 0,
  });

  it('merges sources bar by bar in ts order, ties by symbol', async () => {
    const a = [bar('B', 0), bar('B', 300_000), bar('B', 900_000)];
    async function* b(): AsyncGenerator<Bar> {
      await Promise.resolve(); // a source that really is asynchronous
      yield bar('A', 0);
      yield bar('A', 600_000);
    }
    const merged = await collect(interleaveByTs([a, b(), []]));
    expect(merged.map((x) => `${x.symbol}@${x.ts / 300_000}`)).toEqual(['A@0', 'B@0', 'B@1', 'A@2', 'B@3']);
  });
});
