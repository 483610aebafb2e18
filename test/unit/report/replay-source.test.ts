import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar } from '../../../schemas/bar.schema';
import { CliUsageError } from '../../../src/cli/common';
import { barFileReplaySource, parseTimeFlag } from '../../../src/cli/replay-source';
import { zipOf } from '../../fixtures/zip-writer';

const HEADER = 'timestamp,open,high,low,close,volume';
const row = (i: number, close: number): string =>
  `${Date.UTC(2025, 0, 1) + i * 300_000},${close},${close + 1},${close - 1},${close},1`;

async function collect(source: AsyncIterable<Bar>): Promise<Bar[]> {
  const out: Bar[] = [];
  for await (const b of source) out.push(b);
  return out;
}

describe('barFileReplaySource on CSV files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'replay-source-'));
    writeFileSync(
      join(dir, 'AAA_5m.csv'),
      [HEADER, ...[0, 1, 2, 3].map((i) => row(i, 10 + i))].join('\n'),
    );
    writeFileSync(
      join(dir, 'BBB_5m.csv'),
      [HEADER, ...[1, 2, 4].map((i) => row(i, 20 + i))].join('\n'),
    );
    writeFileSync(join(dir, 'notes.csv'), 'not bars');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes a folder as its *_5m.csv files and interleaves the symbols by ts', async () => {
    const source = await barFileReplaySource([dir]);
    expect(source.symbols).toEqual(['AAA', 'BBB']);
    expect(await source.count()).toBe(7);
    const bars = await collect(source.bars());
    expect(bars.map((b) => `${b.symbol}${(b.ts - Date.UTC(2025, 0, 1)) / 300_000}`)).toEqual([
      'AAA0',
      'AAA1',
      'BBB1',
      'AAA2',
      'BBB2',
      'AAA3',
      'BBB4',
    ]);
  });

  it('filters by symbol and by [from, to)', async () => {
    const t = (i: number): number => Date.UTC(2025, 0, 1) + i * 300_000;
    const source = await barFileReplaySource([dir], { symbols: ['BBB'], from: t(2), to: t(4) });
    expect(await source.count()).toBe(1);
    expect((await collect(source.bars())).map((b) => [b.symbol, b.ts])).toEqual([['BBB', t(2)]]);
  });

  it('refuses unknown symbols, a name without a symbol, a missing path and an empty range', async () => {
    await expect(barFileReplaySource([dir], { symbols: ['ZZZ'] })).rejects.toThrow(
      /no file for ZZZ \(files give AAA, BBB\)/,
    );
    await expect(barFileReplaySource([join(dir, 'notes.csv')])).rejects.toThrow(/notes\.csv: cannot tell the symbol/);
    // The same file named twice (in its folder and alone) counts once.
    expect(await (await barFileReplaySource([dir, join(dir, 'AAA_5m.csv')])).count()).toBe(7);
    await expect(barFileReplaySource([join(dir, 'nope')])).rejects.toThrow(CliUsageError);
    await expect(barFileReplaySource([dir], { from: 10, to: 5 })).rejects.toThrow(
      /--to must be after --from/,
    );
  });
});

describe('barFileReplaySource with Binance kline archives', () => {
  let dir: string;
  const T0 = Date.UTC(2024, 0, 31, 23, 40);
  const slot = (i: number): number => T0 + i * 300_000;
  const kline = (ts: number | string, close: number): string =>
    `${ts},${close},${close + 1},${close - 1},${close},3,${Number(ts) + 299_999},300,5,1,100,0`;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'replay-binance-'));
    // January ends at slot 3; February (µs open times, as from 2025 on) repeats slots 2-3, then misses 6-7.
    writeFileSync(
      join(dir, 'BTCUSDT-5m-2024-01.zip'),
      zipOf({ 'BTCUSDT-5m-2024-01.csv': [0, 1, 2, 3].map((i) => kline(slot(i), 100 + i)).join('\n') }),
    );
    writeFileSync(
      join(dir, 'BTCUSDT-5m-2024-02.zip'),
      zipOf({ 'BTCUSDT-5m-2024-02.csv': [2, 3, 4, 5, 8].map((i) => kline(`${slot(i)}000`, 200 + i)).join('\n') }),
    );
    // Extracted, as some download it.
    writeFileSync(join(dir, 'ETHUSDT-5m-2024-01.csv'), [1, 2].map((i) => kline(slot(i), 10 + i)).join('\n'));
    writeFileSync(join(dir, 'BTCUSDT-1h-2024-01.zip'), zipOf({ 'a.csv': kline(slot(0), 1) }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('joins the months of a symbol in time order, skipping repeated bars and counting gaps', async () => {
    // Given in the wrong order: the files are joined by their first bar.
    const source = await barFileReplaySource([join(dir, 'BTCUSDT-5m-2024-02.zip'), join(dir, 'BTCUSDT-5m-2024-01.zip')]);
    const [stats] = await source.stats();
    expect(stats).toMatchObject({ symbol: 'BTCUSDT', bars: 7, overlapping: 2, gaps: 1, missingBars: 2, firstTs: slot(0), lastTs: slot(8) });
    expect(stats?.files.map((f) => f.slice(-11))).toEqual(['2024-01.zip', '2024-02.zip']);
    const bars = await collect(source.bars());
    expect(bars.map((b) => [(b.ts - T0) / 300_000, b.close])).toEqual([
      [0, 100], [1, 101], [2, 102], [3, 103], [4, 204], [5, 205], [8, 208],
    ]);
  });

  it('takes a folder as its 5m archives and extracted CSVs, and a glob as the files it matches', async () => {
    const all = await barFileReplaySource([dir]);
    expect(all.symbols).toEqual(['BTCUSDT', 'ETHUSDT']);
    expect(await all.count()).toBe(9);
    const january = await barFileReplaySource([join(dir, '*-5m-2024-01.*')]);
    expect((await january.stats()).map((s) => [s.symbol, s.bars])).toEqual([['BTCUSDT', 4], ['ETHUSDT', 2]]);
    await expect(barFileReplaySource([join(dir, '*-2023-*')])).rejects.toThrow(/matches no file/);
  });
});

describe('parseTimeFlag', () => {
  it('reads epoch ms, a date (midnight UTC) and a date-time', () => {
    expect(parseTimeFlag('from', '1743699900000')).toBe(1743699900000);
    expect(parseTimeFlag('from', '2025-04-04')).toBe(Date.UTC(2025, 3, 4));
    expect(parseTimeFlag('to', '2025-04-04T06:35:00Z')).toBe(Date.UTC(2025, 3, 4, 6, 35));
    expect(parseTimeFlag('to', undefined)).toBeUndefined();
    expect(() => parseTimeFlag('to', 'tomorrow')).toThrow(/--to: .*give epoch milliseconds/);
  });
});
