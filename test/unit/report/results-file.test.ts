import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BarKeySet,
  ResultsParseError,
  accumulate,
  buildReportHtml,
  readReportData,
} from '../../../src/report';
import { randomResults, result, T0 } from './fixtures';

describe('BarKeySet', () => {
  it('holds (symbol, ts) keys of 5m bars, before and after the first one, and off the grid', () => {
    const s = new BarKeySet();
    const t = (i: number): number => T0 + i * 300_000;
    expect(s.add('A', t(10))).toBe(true);
    expect(s.add('A', t(10))).toBe(false);
    expect(s.add('A', t(3))).toBe(true); // before the first key: re-based
    expect(s.add('A', t(100_000))).toBe(true); // a year later: grown
    expect(s.add('B', t(10))).toBe(true);
    expect(s.add('A', t(10) + 1)).toBe(true); // off the 5-minute grid
    expect(s.add('A', t(10) + 1)).toBe(false);
    expect([t(3), t(10), t(100_000), t(10) + 1].every((ts) => s.has('A', ts))).toBe(true);
    expect(s.has('A', t(4))).toBe(false);
    expect(s.has('C', t(10))).toBe(false);
    expect(s.size).toBe(5);
  });
});

describe('readReportData', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'results-file-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file line by line into the same data as the results in memory, repeats and all', async () => {
    const results = randomResults(['AAA', 'BBB'], 300, 7);
    // Out of order across symbols, one repeat, a blank line and the replay's summary line.
    const lines = [...results].reverse().map((r) => JSON.stringify(r));
    lines.splice(10, 0, JSON.stringify(results[5]), '');
    lines.push('{"bars":600,"results":600,"seconds":1.5}');
    const file = join(dir, 'results.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const data = await readReportData(file);
    const inMemory = accumulate([...results, results[5]!]);
    expect(data.counts).toEqual(inMemory.counts);
    expect(data.counts.repeats).toBe(1);
    expect(data.counts.results).toBe(600);
    expect(data.latencies).toHaveLength(601);
    const aaa = data.groups.get('AAA')!;
    expect(aaa.length).toBe(300);
    for (let i = 1; i < aaa.length; i++) expect(aaa.ts(i)).toBeGreaterThan(aaa.ts(i - 1));
    const opts = { generatedAt: 0 };
    expect(buildReportHtml(data, opts)).toBe(buildReportHtml(inMemory, opts));
  });

  it('names the first line that is not a v1 result', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, `${JSON.stringify(result('X', 0, 1))}\n{"v":1}\n`);
    await expect(readReportData(file)).rejects.toThrow(ResultsParseError);
    await expect(readReportData(file)).rejects.toThrow(/line 2/);
  });
});
