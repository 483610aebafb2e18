import { Readable } from 'node:stream';
import fc from 'fast-check';
import type { Bar } from '../../../schemas/bar.schema';
import { ValidationError } from '../../../src/errors';
import { readCsvBars, type InvalidCsvRow } from '../../../src/producers/csv-bars';
import { FUZZ_SEED } from '../../fixtures/fuzz-bars';

/**
 * Property-based tests of the CSV reader: files of valid rows with bad rows in between. Whatever the
 * bad rows hold, reading never throws (with `onInvalidRow`), yields exactly the valid rows in order,
 * and reports every bad row once, with its line number and a reason a person can act on.
 */

const REQUIRED = ['timestamp', 'open', 'high', 'low', 'close', 'volume'] as const;
type Column = (typeof REQUIRED)[number] | 'trades';
const FIVE_MINUTES = 300_000;
const START = 1_500_000_000_000 - (1_500_000_000_000 % FIVE_MINUTES);

const price = fc.double({ min: 1e-6, max: 1e9, noNaN: true, noDefaultInfinity: true });

/** The numbers of a valid row (its ts comes from its position). */
const validRow = fc.record({
  gapSlots: fc.integer({ min: 1, max: 20 }),
  open: price,
  close: price,
  up: fc.double({ min: 0, max: 0.3, noNaN: true }),
  down: fc.double({ min: 0, max: 0.3, noNaN: true }),
  volume: fc
    .double({ min: 0, max: 1e9, noNaN: true, noDefaultInfinity: true })
    .map((v) => (v === 0 ? 0 : v)),
  isoTime: fc.boolean(),
});

/** How a bad row is made from a valid one: which cell is broken, and how. */
const badCell = fc
  .record({
    column: fc.constantFrom(...REQUIRED),
    value: fc.oneof(
      fc.constantFrom(
        '',
        ' ',
        'abc',
        'NaN',
        'Infinity',
        '-1',
        '0',
        '1e400',
        '-0.5',
        '"7"',
        '0x10',
        '0b11',
        'null',
        '12abc',
      ),
      // No commas (a comma splits the cell, and the tail of it could still be a valid number).
      fc
        .string({ maxLength: 8 })
        .filter((s) => !/[\r\n,]/.test(s) && !/^\s*[+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(s)),
    ),
  })
  .filter(({ column, value }) => !(column === 'volume' && value === '0')); // a volume of 0 is valid
const badTimestamp = fc.constantFrom(
  '1500000000', // epoch seconds
  '1500000000000001', // microseconds that are not a whole millisecond (whole µs are read, as Binance writes them)
  '1500000000000000000', // nanoseconds
  '1500000000001', // not a multiple of 5 minutes
  '2025-13-01 00:00:00',
  '2025-02-30T00:00:00Z',
  'yesterday',
  '2025-04-03 17:05:00 UTC',
  '17:05 2025-04-03',
);
const badRow = fc.oneof(
  badCell.map((b) => ({ kind: 'cell' as const, ...b })),
  badTimestamp.map((value) => ({ kind: 'cell' as const, column: 'timestamp' as const, value })),
  fc.constant({ kind: 'low above high' as const }),
  fc.constant({ kind: 'missing cells' as const }),
  fc.constant({ kind: 'repeats an earlier time' as const }),
  fc
    .string({ maxLength: 60 })
    .filter((s) => !/[\r\n]/.test(s))
    .map((text) => ({ kind: 'garbage' as const, text })),
);

const file = fc.record({
  columns: fc
    .shuffledSubarray<Column>([...REQUIRED, 'trades'], { minLength: 7, maxLength: 7 })
    .chain((all) =>
      fc.boolean().map((withExtra) => (withExtra ? all : all.filter((c) => c !== 'trades'))),
    ),
  newline: fc.constantFrom('\n', '\r\n'),
  rows: fc.array(
    fc.oneof(
      { weight: 3, arbitrary: validRow.map((r) => ({ good: r })) },
      { weight: 1, arbitrary: badRow.map((b) => ({ bad: b })) },
    ),
    {
      minLength: 1,
      maxLength: 40,
    },
  ),
});

function cellsOf(bar: Bar, isoTime: boolean): Record<Column, string> {
  return {
    timestamp: isoTime
      ? new Date(bar.ts).toISOString().replace('T', ' ').replace('.000Z', '+00:00')
      : String(bar.ts),
    open: String(bar.open),
    high: String(bar.high),
    low: String(bar.low),
    close: String(bar.close),
    volume: String(bar.volume),
    trades: '17',
  };
}

async function read(text: string): Promise<{ bars: Bar[]; invalid: InvalidCsvRow[] }> {
  const bars: Bar[] = [];
  const invalid: InvalidCsvRow[] = [];
  for await (const bar of readCsvBars(Readable.from([Buffer.from(text, 'utf8')]), {
    symbol: 'FUZZ',
    onInvalidRow: (row) => invalid.push(row),
  })) {
    bars.push(bar);
  }
  return { bars, invalid };
}

describe('readCsvBars under fuzzed files', () => {
  it('yields every valid row in order and reports every bad row once with its line and a reason', async () => {
    await fc.assert(
      fc.asyncProperty(file, async ({ columns, newline, rows }) => {
        const lines = [columns.join(',')];
        const expectedBars: Bar[] = [];
        const expectedBad: number[] = [];
        let slot = 0;
        let last: { bar: Bar; isoTime: boolean } | null = null;
        for (const row of rows) {
          if ('good' in row) {
            const g = row.good;
            slot += g.gapSlots;
            const bar: Bar = {
              symbol: 'FUZZ',
              timeframe: '5m',
              ts: START + slot * FIVE_MINUTES,
              open: g.open,
              high: Math.max(g.open, g.close) * (1 + g.up),
              low: Math.min(g.open, g.close) * (1 - g.down),
              close: g.close,
              volume: g.volume,
            };
            const cells = cellsOf(bar, g.isoTime);
            lines.push(columns.map((c) => cells[c]).join(','));
            expectedBars.push(bar);
            last = { bar, isoTime: g.isoTime };
            continue;
          }
          const b = row.bad;
          // A bad row is built from the next valid-looking bar (the time after the last one).
          const bar: Bar = {
            symbol: 'FUZZ',
            timeframe: '5m',
            ts: START + (slot + 1) * FIVE_MINUTES,
            open: 10,
            high: 12,
            low: 9,
            close: 11,
            volume: 5,
          };
          const cells = cellsOf(bar, false);
          let line: string;
          if (b.kind === 'cell') {
            cells[b.column] = b.value;
            line = columns.map((c) => cells[c]).join(',');
          } else if (b.kind === 'low above high') {
            cells.low = '13';
            line = columns.map((c) => cells[c]).join(',');
          } else if (b.kind === 'missing cells') {
            const lastRequired = Math.max(...REQUIRED.map((c) => columns.indexOf(c)));
            line = columns
              .slice(0, lastRequired)
              .map((c) => cells[c])
              .join(',');
          } else if (b.kind === 'repeats an earlier time') {
            if (last === null) continue;
            const again = cellsOf({ ...last.bar, close: last.bar.close }, !last.isoTime);
            line = columns.map((c) => again[c]).join(',');
          } else {
            line = b.text;
          }
          lines.push(line);
          if (line.trim() !== '') expectedBad.push(lines.length); // 1-based line number
        }
        const { bars, invalid } = await read(
          lines.join(newline) + (rows.length % 2 === 0 ? newline : ''),
        );
        expect(bars).toEqual(expectedBars);
        expect(invalid.map((r) => r.line)).toEqual(expectedBad);
        for (const r of invalid) {
          expect(r.reason.trim().length).toBeGreaterThan(10);
          expect(r.text).toBe(lines[r.line - 1]);
        }
      }),
      { seed: FUZZ_SEED, numRuns: 400 },
    );
  });

  it('never throws on arbitrary bytes except a ValidationError about the header', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc
            .string({ maxLength: 300 })
            .map((s) => Buffer.from(`timestamp,open,high,low,close,volume\n${s}`)),
        ),
        async (bytes) => {
          const invalid: InvalidCsvRow[] = [];
          let failure: unknown = null;
          try {
            for await (const bar of readCsvBars(Readable.from([Buffer.from(bytes)]), {
              symbol: 'FUZZ',
              onInvalidRow: (row) => invalid.push(row),
            })) {
              expect(bar.symbol).toBe('FUZZ');
            }
          } catch (err) {
            failure = err;
          }
          // Either it reads, or it refuses the whole file for its header or emptiness.
          expect(failure === null || (failure instanceof ValidationError && /header|empty/.test(failure.message))).toBe(true);
          for (const r of invalid) expect(r.reason.trim().length).toBeGreaterThan(10);
        },
      ),
      { seed: FUZZ_SEED, numRuns: 800 },
    );
  });
});
