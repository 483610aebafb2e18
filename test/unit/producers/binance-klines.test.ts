import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar } from '../../../schemas/bar.schema';
import { binanceKlineFile, readBinanceKlines } from '../../../src/producers/binance-klines';
import type { InvalidCsvRow } from '../../../src/producers/csv-bars';
import { zipOf } from '../../fixtures/zip-writer';

const T0 = Date.UTC(2024, 0, 1);
/** A kline row as Binance writes it: open time, OHLCV, close time and six more columns. */
const kline = (openTime: number | string, close = 100): string =>
  `${openTime},${close},${close + 1},${close - 1},${close},12.5,${Number(openTime) + 299_999},1250,10,6,600,0`;

async function collect(it: AsyncIterable<Bar>): Promise<Bar[]> {
  const out: Bar[] = [];
  for await (const b of it) out.push(b);
  return out;
}

describe('readBinanceKlines', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'binance-klines-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a monthly zip as downloaded: no header, open times in ms, symbol from the name', async () => {
    const path = join(dir, 'BTCUSDT-5m-2024-01.zip');
    writeFileSync(path, zipOf({ 'BTCUSDT-5m-2024-01.csv': [0, 1, 2].map((i) => kline(T0 + i * 300_000, 100 + i)).join('\n') + '\n' }));
    const bars = await collect(readBinanceKlines(path));
    expect(bars).toEqual(
      [0, 1, 2].map((i) => ({
        symbol: 'BTCUSDT',
        timeframe: '5m',
        ts: T0 + i * 300_000,
        open: 100 + i,
        high: 101 + i,
        low: 99 + i,
        close: 100 + i,
        volume: 12.5,
      })),
    );
  });

  it('reads open times in µs (files from 2025 on) and a header line, from the extracted CSV too', async () => {
    const t = Date.UTC(2025, 0, 1);
    const header = 'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore';
    const text = [header, kline(`${t}000`), kline(`${t + 300_000}000`), kline(t + 600_000)].join('\r\n');
    const zip = join(dir, 'ETHUSDT-5m-2025-01-01.zip');
    writeFileSync(zip, zipOf({ 'ETHUSDT-5m-2025-01-01.csv': text }));
    const csv = join(dir, 'ETHUSDT-5m-2025-01-01.csv');
    writeFileSync(csv, text);
    for (const path of [zip, csv]) {
      const bars = await collect(readBinanceKlines(path));
      expect(bars.map((b) => [b.symbol, b.ts])).toEqual([0, 1, 2].map((i) => ['ETHUSDT', t + i * 300_000]));
    }
  });

  it('reports bad rows with their line and goes on; refuses another interval and a damaged archive', async () => {
    const path = join(dir, 'SOLUSDT-5m-2024-02.zip');
    writeFileSync(
      path,
      zipOf({ 'x.csv': [kline(T0), kline(1_700_000), 'garbage,1,2,3', kline(T0), kline(T0 + 300_000)].join('\n') }),
    );
    const bad: InvalidCsvRow[] = [];
    const bars = await collect(readBinanceKlines(path, { onInvalidRow: (r) => bad.push(r) }));
    expect(bars.map((b) => b.ts)).toEqual([T0, T0 + 300_000]);
    expect(bad.map((r) => [r.line, r.reason.split(' ')[0]])).toEqual([
      [2, 'timestamp'],
      [3, 'timestamp'],
      [4, 'open'],
    ]);
    await expect(collect(readBinanceKlines(path))).rejects.toThrow(/line 2: timestamp 1700000 looks like epoch seconds/);

    const hourly = join(dir, 'BTCUSDT-1h-2024-01.zip');
    writeFileSync(hourly, zipOf({ 'a.csv': kline(T0) }));
    await expect(collect(readBinanceKlines(hourly))).rejects.toThrow(/1h klines; the pipeline takes 5m bars/);

    const damaged = join(dir, 'ADAUSDT-5m-2024-01.zip');
    const z = zipOf({ 'a.csv': kline(T0) });
    z[40] = (z[40] as number) ^ 0xff; // inside the deflated data
    writeFileSync(damaged, z);
    await expect(collect(readBinanceKlines(damaged))).rejects.toThrow(/ADAUSDT-5m-2024-01\.zip: not a zip archive this reader takes/);
  });

  it('tells the symbol and interval from Binance names only', () => {
    expect(binanceKlineFile('/x/BTCUSDT-5m-2024-01.zip')).toEqual({ symbol: 'BTCUSDT', interval: '5m' });
    expect(binanceKlineFile('ETHUSDT-1h-2025-03-04.csv')).toEqual({ symbol: 'ETHUSDT', interval: '1h' });
    expect(binanceKlineFile('BTCUSDT_5m.csv')).toBeNull();
    expect(binanceKlineFile('btcusdt-5m-2024-01.zip')).toBeNull();
  });
});
