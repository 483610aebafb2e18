/**
 * `pipeline resample-csv <in_5m.csv> <out_30m.csv>`: turns a CSV of 5m bars into one of
 * 30m bars with the repository's own resampler (`resampleTo30m`: complete, aligned groups of six
 * 5m bars only). Used to derive `data/market/30m/XRPUSDT_30m.csv`, whose source has 5m bars only.
 */
import { writeFileSync } from 'node:fs';
import type { Bar } from '../../schemas/bar.schema';
import { readCsvBars, symbolFromCsvPath } from '../producers/csv-bars';
import { resampleTo30m } from '../strategic/resample';
import { CliUsageError, ExitCode, defineCommand, type CommandContext, type ParsedCommandLine } from './common';

function iso(ts: number): string {
  return new Date(ts).toISOString().replace('T', ' ').replace('.000Z', '+00:00');
}

const HELP = `Writes a CSV of 30m bars built from complete, aligned groups of six 5m bars of <in_5m.csv>, with the
pipeline's own resampler. --symbol names the bars' symbol when the file name does not.`;

const OPTIONS = { symbol: { type: 'string', value: 'S', description: 'symbol of the input bars (default: a symbol column, else the file name)' } } as const;

async function run({ values, positionals }: ParsedCommandLine<typeof OPTIONS>, ctx: CommandContext): Promise<number> {
  const [input, output] = positionals;
  if (input === undefined || output === undefined) throw new CliUsageError('give the input and the output file');
  const bars: Bar[] = [];
  for await (const bar of readCsvBars(input, { symbol: values.symbol ?? symbolFromCsvPath(input), timeframe: '5m' }))
    bars.push(bar);
  const out = resampleTo30m(bars);
  const lines = ['timestamp,open,high,low,close,volume'];
  for (const b of out)
    lines.push(
      [iso(b.ts), b.open, b.high, b.low, b.close, Number(b.volume.toPrecision(12))].join(','),
    );
  writeFileSync(output, lines.join('\n') + '\n');
  ctx.out.write(`${bars.length} 5m bars -> ${out.length} 30m bars\n`);
  return ExitCode.Ok;
}

/** `pipeline resample-csv`. */
export const resampleCsvCommand = defineCommand({ args: '<in_5m.csv> <out_30m.csv>', options: OPTIONS, help: HELP, run, offline: true });
