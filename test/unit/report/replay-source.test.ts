import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar } from '../../../schemas/bar.schema';
import { CliUsageError } from '../../../src/cli/common';
import { csvReplaySource, parseTimeFlag } from '../../../src/cli/replay-source';

const HEADER = 'timestamp,open,high,low,close,volume';
const row = (i: number, close: number): string =>
  `${Date.UTC(2025, 0, 1) + i * 300_000},${close},${close + 1},${close - 1},${close},1`;

async function collect(source: AsyncIterable<Bar>): Promise<Bar[]> {
  const out: Bar[] = [];
  for await (const b of source) out.push(b);
  return out;
}

describe('csvReplaySource', () => {
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
    const source = await csvReplaySource([dir]);
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
    const source = await csvReplaySource([dir], { symbols: ['BBB'], from: t(2), to: t(4) });
    expect(await source.count()).toBe(1);
    expect((await collect(source.bars())).map((b) => [b.symbol, b.ts])).toEqual([['BBB', t(2)]]);
  });

  it('refuses unknown symbols, two files of one symbol, a missing path and an empty range', async () => {
    await expect(csvReplaySource([dir], { symbols: ['ZZZ'] })).rejects.toThrow(
      /no file for ZZZ \(files give AAA, BBB\)/,
    );
    await expect(csvReplaySource([dir, join(dir, 'AAA_5m.csv')])).rejects.toThrow(
      /both symbol AAA/,
    );
    await expect(csvReplaySource([join(dir, 'nope')])).rejects.toThrow(CliUsageError);
    await expect(csvReplaySource([dir], { from: 10, to: 5 })).rejects.toThrow(
      /--to must be after --from/,
    );
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
