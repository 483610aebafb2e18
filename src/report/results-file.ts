/**
 * Reads a results file (JSON lines, as `pipeline replay --out` and `pipeline results` write them)
 * line by line into a {@link ReportAccumulator}: memory stays flat whatever the length of the file
 * (past 200,000 lines the columns go to a scratch file, see {@link ReportAccumulator}).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseResultLine } from './analysis';
import { ReportAccumulator, type ReportAccumulatorOptions, type ReportData } from './report-accumulator';

/**
 * The report data of the results file at `path`; throws a ResultsParseError naming the first bad
 * line. Call `close()` on it once the report is built (it may hold a scratch file open).
 */
export async function readReportData(
  path: string,
  options: ReportAccumulatorOptions = {},
): Promise<ReportData & { lines: number }> {
  const input = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const lines = createInterface({ input, crlfDelay: Infinity });
  const acc = new ReportAccumulator(options);
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      const r = parseResultLine(line, lineNo);
      if (r !== null) acc.add(r);
    }
  } catch (err) {
    acc.discard();
    throw err;
  } finally {
    lines.close();
    input.destroy();
  }
  return { ...acc.finish(), lines: lineNo };
}
