import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BarKeySet,
  ResultsParseError,
  ReportAccumulator,
  accumulate,
  buildReportHtml,
  histogram,
  kthSmallest,
  readReportData,
} from '../../../src/report';
import { readdirSync } from 'node:fs';
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

  it('spilled to a scratch file, gives the same report byte for byte and leaves no file behind', async () => {
    const results = randomResults(['AAA', 'BBB', 'CCC'], 400, 11);
    const lines = results.map((r) => JSON.stringify(r));
    // Nearly in order, as a replay writes them: neighbours swapped across block boundaries.
    for (let i = 0; i + 1 < lines.length; i += 7) [lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!];
    lines.splice(500, 0, JSON.stringify(results[3]));
    const file = join(dir, 'spill.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const scratch = mkdtempSync(join(tmpdir(), 'spill-dir-'));
    const spilled = await readReportData(file, { spillAfter: 50, chunkRows: 16, dir: scratch });
    expect(readdirSync(scratch)).toEqual([]); // unlinked at once; the descriptor keeps it
    const inMemory = accumulate([...results, results[3]!]);
    expect(spilled.groups).not.toBeInstanceOf(Map);
    expect(spilled.latencies).not.toBeInstanceOf(Float64Array);
    expect(spilled.counts).toEqual(inMemory.counts);
    expect(spilled.latencies).toHaveLength(1201);
    const opts = { generatedAt: 0 };
    const html = buildReportHtml(spilled, opts);
    expect(html).toBe(buildReportHtml(inMemory, opts));
    expect(html).toContain('data-symbol="CCC"');
    spilled.close();
    expect(() => spilled.groups.get('AAA')).toThrow(/closed/);
    rmSync(scratch, { recursive: true });
  });

  it('does not spill a file below spillAfter lines', () => {
    const acc = new ReportAccumulator({ spillAfter: 10 });
    for (const r of randomResults(['AAA'], 10, 3)) acc.add(r);
    expect(acc.spilled).toBe(false);
    acc.add(result('AAA', 10, 1));
    expect(acc.spilled).toBe(true);
    acc.discard();
  });

  it('names the first line that is not a v1 result', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, `${JSON.stringify(result('X', 0, 1))}\n{"v":1}\n`);
    await expect(readReportData(file)).rejects.toThrow(ResultsParseError);
    await expect(readReportData(file)).rejects.toThrow(/line 2/);
  });
});

describe('histogram of a column in blocks', () => {
  /** `values` as NumberChunks of `size` values a block. */
  const chunks = (values: Float64Array, size: number) => ({
    length: values.length,
    forEachChunk(fn: (c: Float64Array) => void) {
      for (let i = 0; i < values.length; i += size) fn(values.subarray(i, i + size));
    },
  });

  it('gives exactly the figures of the sorted array, heavy tails, ties and non-finite values included', () => {
    let seed = 5;
    const rnd = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const n = 70_003;
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = i % 10 === 0 ? 7 : i % 997 === 0 ? 1e6 * rnd() : -Math.log(rnd()) * 3;
    v[17] = Number.NaN;
    v[18] = Number.POSITIVE_INFINITY;
    expect(histogram(chunks(v, 4096))).toEqual(histogram(v));
    expect(histogram(chunks(v, 4096)).p50).not.toBeNull();
    const sorted = Float64Array.from(v).filter(Number.isFinite).sort();
    for (const k of [0, 34_999, sorted.length - 1])
      expect(kthSmallest(chunks(v, 1000), k)).toBe(sorted[k]);
    expect(histogram(chunks(new Float64Array(0), 10))).toEqual(histogram([]));
    expect(histogram(chunks(new Float64Array(100_000).fill(2.5), 999))).toEqual(histogram(new Float64Array(100_000).fill(2.5)));
  });
});
