import { writeFile } from 'node:fs/promises';
import {
  DEFAULT_COSTS,
  DEFAULT_OUTCOME_RULE,
  ResultsParseError,
  buildReportHtml,
  readReportData,
  type ReportData,
  type ReportOptions,
} from '../report';
import {
  CliUsageError,
  ExitCode,
  decimal,
  defineCommand,
  integer,
  type ParsedCommandLine,
  type CommandContext,
} from './common';

const HELP = `Writes one self-contained HTML file (inline SVG, opens offline) from integrated results as JSON
lines, as "pipeline replay --out" or "pipeline results" write them: per symbol the price with regime
bands and decisions and the equity of the agents' target_position against buy-and-hold and FLAT
after costs; a reliability diagram of the regime probability; a latency histogram; counts of stale
contexts and degraded stages. Needs no broker. What each chart means: docs/replay.md.
The file is read line by line into compact columns (43 bytes a result) that go to a scratch file in
os.tmpdir() past 200,000 lines, so memory stays flat: a year of 50 symbols (5 million lines, about
270 MB of scratch space, removed at the end) is reported in well under 1 GiB.

Exit status: 0 written; 1 the results file cannot be read or holds a line that is not a v1 result.`;

/** Report options shared by `report` and `replay` (costs, horizon), parsed by commander. */
export function reportFlags(values: { 'fee-bps': number; 'half-spread-bps': number; horizon: number }): Pick<ReportOptions, 'costs' | 'rule'> {
  return {
    costs: { feeBps: values['fee-bps'], halfSpreadBps: values['half-spread-bps'] },
    rule: { ...DEFAULT_OUTCOME_RULE, horizonBars: values.horizon },
  };
}

export const REPORT_FLAG_OPTIONS = {
  'fee-bps': { type: 'string', value: 'BP', parse: decimal(), default: DEFAULT_COSTS.feeBps, description: 'fee per unit of notional traded, in basis points' },
  'half-spread-bps': { type: 'string', value: 'BP', parse: decimal(), default: DEFAULT_COSTS.halfSpreadBps, description: 'half the bid-ask spread, in basis points' },
  horizon: {
    type: 'string',
    value: 'BARS',
    parse: integer(1),
    default: DEFAULT_OUTCOME_RULE.horizonBars,
    description: 'bars after a call that decide whether it was borne out',
  },
} as const;

const OPTIONS = {
  out: { type: 'string', value: 'file', description: 'the HTML file to write (required)' },
  title: { type: 'string', value: 'TEXT', description: 'page title (default: Replay report)' },
  ...REPORT_FLAG_OPTIONS,
} as const;

async function run({ values, positionals }: ParsedCommandLine<typeof OPTIONS>, ctx: CommandContext): Promise<number> {
  if (positionals.length !== 1)
    throw new CliUsageError('give exactly one results file (JSON lines)');
  if (values.out === undefined) throw new CliUsageError('--out <report.html> is required');
  const file = positionals[0] as string;
  const flags = reportFlags(values);
  let data: ReportData;
  try {
    data = await readReportData(file);
  } catch (err) {
    if (err instanceof ResultsParseError) {
      ctx.err.write(`${file}: ${err.message}\n`);
      return ExitCode.Failure;
    }
    ctx.err.write(`cannot read ${file}: ${(err as Error).message}\n`);
    return ExitCode.Failure;
  }
  let html: string;
  try {
    if (data.latencies.length === 0) {
      ctx.err.write(`${file} holds no results; nothing to report\n`);
      return ExitCode.Failure;
    }
    html = buildReportHtml(data, {
      ...flags,
      title: values.title,
      source: file,
      deadLetters: null,
    });
  } finally {
    data.close();
  }
  await writeFile(values.out, html);
  ctx.err.write(`report of ${data.counts.results} results written to ${values.out}\n`);
  return ExitCode.Ok;
}

export const reportCommand = defineCommand({ args: '[results.jsonl...]', options: OPTIONS, help: HELP, run, offline: true });
