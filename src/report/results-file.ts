/**
 * Reads a results file (JSON lines, as `pipeline replay --out` and `pipeline results` write them)
 * line by line into a {@link ReportAccumulator}: memory follows the number of results at about 60
 * bytes each, never the size of the file.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseResultLine } from './analysis';
import { ReportAccumulator, type ReportData } from './report-accumulator';

/** The report data of the results file at `path`; throws a ResultsParseError naming the first bad line. */
export async function readReportData(path: string): Promise<ReportData & { lines: number }> {
  const input = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const lines = createInterface({ input, crlfDelay: Infinity });
  const acc = new ReportAccumulator();
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      const r = parseResultLine(line, lineNo);
      if (r !== null) acc.add(r);
    }
  } finally {
    lines.close();
    input.destroy();
  }
  return { ...acc.finish(), lines: lineNo };
}
