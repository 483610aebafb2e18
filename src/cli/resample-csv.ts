/**
 * `npx tsx src/cli/resample-csv.ts <in_5m.csv> <out_30m.csv>`: turns a CSV of 5m bars into one of
 * 30m bars with the repository's own resampler (`resampleTo30m`: complete, aligned groups of six
 * 5m bars only). Used to derive `data/market/30m/XRPUSDT_30m.csv`, whose source has 5m bars only.
 */
import { writeFileSync } from 'node:fs';
import type { Bar } from '../../schemas/bar.schema';
import { readCsvBars, symbolFromCsvPath } from '../producers/csv-bars';
import { resampleTo30m } from '../strategic/resample';

function iso(ts: number): string {
  return new Date(ts).toISOString().replace('T', ' ').replace('.000Z', '+00:00');
}

async function main(): Promise<void> {
  const [input, output] = process.argv.slice(2);
  if (input === undefined || output === undefined) {
    console.error('usage: tsx src/cli/resample-csv.ts <in_5m.csv> <out_30m.csv>');
    process.exit(2);
  }
  const bars: Bar[] = [];
  for await (const bar of readCsvBars(input, { symbol: symbolFromCsvPath(input), timeframe: '5m' }))
    bars.push(bar);
  const out = resampleTo30m(bars);
  const lines = ['timestamp,open,high,low,close,volume'];
  for (const b of out)
    lines.push(
      [iso(b.ts), b.open, b.high, b.low, b.close, Number(b.volume.toPrecision(12))].join(','),
    );
  writeFileSync(output, lines.join('\n') + '\n');
  console.log(`${bars.length} 5m bars -> ${out.length} 30m bars`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
