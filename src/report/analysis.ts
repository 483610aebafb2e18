/**
 * What the replay report shows, computed from integrated results alone (pure: no broker, no files).
 * Every figure here is derived from the results' own fields; the report says how.
 */
import {
  IntegratedResultSchema,
  type IntegratedResult,
} from '../../schemas/integrated-result.schema';
import { PipelineError } from '../errors';
import { median, quantile, sortedFinite } from '../util/quantile';
import { DEFAULT_COSTS as AGENT_COSTS } from '../learning/trading-env';
import { accumulate, type Counts, type NumberChunks } from './report-accumulator';
import { REGIMES, SymbolSeries, type Regime } from './symbol-series';

export { REGIMES, SymbolSeries, type Regime } from './symbol-series';
export {
  ReportAccumulator,
  accumulate,
  type Counts,
  type NumberChunks,
  type ReportAccumulatorOptions,
  type ReportData,
} from './report-accumulator';

/** Trading costs charged on every change of position, in basis points of the traded notional. */
export interface CostModel {
  /** Exchange fee per unit of notional traded. @defaultValue 4 bp, the agents' taker fee */
  feeBps: number;
  /** Half the bid-ask spread, paid on every trade. @defaultValue 2 bp, the agents' half spread */
  halfSpreadBps: number;
}

/**
 * The report's default costs are the agents' own (src/learning/trading-env.ts, which `pipeline eval`
 * and training use): the taker fee and half spread of a MARKET order, 4 + 2 bp. The report charges
 * every change of `target_position` as a market order: it cannot tell the LIMIT fills (1 bp maker
 * fee, no spread) the eval credits, so on the same decisions it charges at least as much.
 */
export const DEFAULT_COSTS: CostModel = {
  feeBps: Math.round(AGENT_COSTS.takerFee * 1e6) / 100,
  halfSpreadBps: Math.round(AGENT_COSTS.halfSpread * 1e6) / 100,
};

/** The rule that decides, after the fact, whether a regime call was borne out. */
export interface OutcomeRule {
  /** Bars after the result's bar that the rule looks at. @defaultValue 24 (two hours of 5m bars) */
  horizonBars: number;
  /** VOLATILE when the horizon's realised volatility exceeds this multiple of the symbol's median. @defaultValue 1.5 */
  volatileMultiple: number;
  /** BULL/BEAR when the horizon's return exceeds this multiple of the symbol's median absolute horizon return. @defaultValue 1 */
  trendMultiple: number;
}

export const DEFAULT_OUTCOME_RULE: OutcomeRule = {
  horizonBars: 24,
  volatileMultiple: 1.5,
  trendMultiple: 1,
};

const BAR_MS = 5 * 60_000;

/** A series as the analysis takes it: compact, or (small inputs, tests) results in ts order. */
export type SeriesInput = SymbolSeries | readonly IntegratedResult[];

function asSeries(input: SeriesInput): SymbolSeries {
  return input instanceof SymbolSeries ? input : SymbolSeries.of(input);
}

/** A results file that is not JSON lines of v1 results. */
export class ResultsParseError extends PipelineError {
  constructor(message: string) {
    super('RESULTS_FILE_INVALID', message, false);
  }
}

/**
 * One line of a results file: the result, or null for a blank line or a replay's summary line.
 * Throws a {@link ResultsParseError} naming `lineNo` when it is neither.
 */
export function parseResultLine(raw: string, lineNo: number): IntegratedResult | null {
  const line = raw.trim();
  if (line === '') return null;
  let body: unknown;
  try {
    body = JSON.parse(line);
  } catch {
    throw new ResultsParseError(`line ${lineNo}: not JSON (${line.slice(0, 60)})`);
  }
  // A replay's summary line, `{"bars":..,"results":..,"seconds":..}`, may close the file.
  if (isReplaySummary(body)) return null;
  const parsed = IntegratedResultSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ResultsParseError(
      `line ${lineNo}: not an integrated result (v1): ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
    );
  }
  return parsed.data;
}

/** Parses JSON lines of integrated results (blank lines allowed); throws naming the first bad line. */
export function parseResultsJsonl(text: string): IntegratedResult[] {
  const out: IntegratedResult[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const r = parseResultLine(lines[i] as string, i + 1);
    if (r !== null) out.push(r);
  }
  return out;
}

function isReplaySummary(body: unknown): boolean {
  return (
    typeof body === 'object' &&
    body !== null &&
    'bars' in body &&
    'results' in body &&
    'seconds' in body &&
    !('v' in body)
  );
}

/** Results grouped by symbol (sorted), each in `ts` order with one result per `ts` (repeats dropped). */
export function bySymbol(results: readonly IntegratedResult[]): ReadonlyMap<string, SymbolSeries> {
  return accumulate(results).groups;
}

/** Equity curves of one symbol, each starting at 1. */
export interface EquityCurves {
  /** close_ts of each point. */
  ts: number[];
  /** Holding each result's `target_position` from its bar's close to the next bar's close, after costs. */
  agents: number[];
  /** Long 1 from the first close, after the cost of buying once. */
  buyHold: number[];
  /** No position: stays 1. */
  flat: number[];
  /** Sum of |position change| (units of notional). */
  turnover: number;
  /** Results without a target position (held as 0). */
  nullPositions: number;
  /** Largest peak-to-trough fall of `agents`, 0..1. */
  agentsMaxDrawdown: number;
  buyHoldMaxDrawdown: number;
}

/**
 * The agents' equity: the decision of the result for bar i (`target_position`, −1..1, null = 0) is
 * taken at that bar's close and held until the next bar's close, earning `position × return`.
 * Every change of position pays `|change| × (fee + half-spread)`, including the first one from 0.
 */
export function equityCurves(
  input: SeriesInput,
  costs: CostModel = DEFAULT_COSTS,
): EquityCurves {
  const series = asSeries(input);
  const c = (costs.feeBps + costs.halfSpreadBps) / 10_000;
  const ts: number[] = [];
  const agents: number[] = [];
  const buyHold: number[] = [];
  const flat: number[] = [];
  let eqA = 1;
  let eqB = 1;
  let pos = 0;
  let turnover = 0;
  let nullPositions = 0;
  for (let i = 0; i < series.length; i++) {
    if (i > 0) {
      const ret = series.close(i) / series.close(i - 1) - 1;
      eqA *= 1 + pos * ret;
      eqB *= 1 + ret;
    } else {
      eqB *= 1 - c;
    }
    const target = series.position(i);
    if (target === null) nullPositions++;
    const next = target ?? 0;
    const change = Math.abs(next - pos);
    turnover += change;
    eqA *= 1 - change * c;
    pos = next;
    ts.push(series.closeTs(i));
    agents.push(eqA);
    buyHold.push(eqB);
    flat.push(1);
  }
  return {
    ts,
    agents,
    buyHold,
    flat,
    turnover,
    nullPositions,
    agentsMaxDrawdown: maxDrawdown(agents),
    buyHoldMaxDrawdown: maxDrawdown(buyHold),
  };
}

export function maxDrawdown(curve: readonly number[]): number {
  let peak = -Infinity;
  let worst = 0;
  for (const v of curve) {
    peak = Math.max(peak, v);
    if (peak > 0) worst = Math.max(worst, 1 - v / peak);
  }
  return worst;
}

/** What the plain rule says happened after one result. */
export interface Outcome {
  index: number;
  /** The regime the rule assigns to the `horizonBars` bars after the result's bar. */
  actual: Regime;
}

/**
 * The plain after-the-fact rule, per symbol: over the `h` bars after bar i, R = close[i+h]/close[i] − 1
 * and σ = standard deviation of their h log returns. With the symbol's medians m_R of |R| and m_σ of σ
 * (over every i of the file): VOLATILE if σ > volatileMultiple·m_σ; else BULL if R > trendMultiple·m_R,
 * BEAR if R < −trendMultiple·m_R; else SIDEWAYS. Bars whose horizon runs past the data or over a gap
 * (missing bars) get no outcome.
 */
export function outcomes(
  input: SeriesInput,
  rule: OutcomeRule = DEFAULT_OUTCOME_RULE,
): Outcome[] {
  const series = asSeries(input);
  const h = rule.horizonBars;
  const rows: { index: number; ret: number; vol: number }[] = [];
  const logs = new Float64Array(h);
  for (let i = 0; i + h < series.length; i++) {
    if (series.ts(i + h) - series.ts(i) !== h * BAR_MS) continue;
    let mean = 0;
    for (let j = i + 1; j <= i + h; j++) {
      const l = Math.log(series.close(j) / series.close(j - 1));
      logs[j - i - 1] = l;
      mean += l;
    }
    mean /= h;
    let sq = 0;
    for (const x of logs) sq += (x - mean) ** 2;
    const vol = Math.sqrt(sq / h);
    rows.push({ index: i, ret: series.close(i + h) / series.close(i) - 1, vol });
  }
  if (rows.length === 0) return [];
  const mR = median(rows.map((r) => Math.abs(r.ret)));
  const mV = median(rows.map((r) => r.vol));
  return rows.map(({ index, ret, vol }) => {
    let actual: Regime = 'SIDEWAYS';
    if (vol > rule.volatileMultiple * mV) actual = 'VOLATILE';
    else if (ret > rule.trendMultiple * mR) actual = 'BULL';
    else if (ret < -rule.trendMultiple * mR) actual = 'BEAR';
    return { index, actual };
  });
}


/** One bin of the reliability diagram. */
export interface ReliabilityBin {
  lo: number;
  hi: number;
  n: number;
  /** Mean reported probability of the called regime in the bin (null when empty). */
  meanP: number | null;
  /** Share of the bin's calls the rule bore out (null when empty). */
  observed: number | null;
}

export interface Reliability {
  bins: ReliabilityBin[];
  /** Calls with a probability and an outcome. */
  n: number;
  /** Share of all calls borne out. */
  hitRate: number | null;
  /** Expected calibration error: Σ n_b/n · |observed_b − meanP_b|. */
  ece: number | null;
  /** Hit rate per reported confidence level. */
  byConfidence: { level: string; n: number; hitRate: number | null }[];
  /** How often the rule assigned each regime (the base rates a call competes with). */
  baseRates: Record<Regime, number>;
}

/**
 * The reliability of regime calls: for every result with a regime, its probability p =
 * `regime_probabilities[regime]` against whether the {@link outcomes} rule assigned that same regime
 * to the following bars.
 */
export function reliability(
  groups: ReadonlyMap<string, SeriesInput>,
  rule: OutcomeRule = DEFAULT_OUTCOME_RULE,
  binCount = 10,
): Reliability {
  const bins: { n: number; sumP: number; hits: number }[] = Array.from(
    { length: binCount },
    () => ({ n: 0, sumP: 0, hits: 0 }),
  );
  const conf = new Map<string, { n: number; hits: number }>();
  const base: Record<Regime, number> = { BULL: 0, BEAR: 0, SIDEWAYS: 0, VOLATILE: 0 };
  let n = 0;
  let hits = 0;
  let outcomeCount = 0;
  for (const input of groups.values()) {
    const series = asSeries(input);
    for (const { index, actual } of outcomes(series, rule)) {
      base[actual]++;
      outcomeCount++;
      const regime = series.regime(index);
      const p = series.regimeP(index);
      if (regime === null || p === null) continue;
      const hit = regime === actual ? 1 : 0;
      const b = bins[Math.min(binCount - 1, Math.floor(p * binCount))] as {
        n: number;
        sumP: number;
        hits: number;
      };
      b.n++;
      b.sumP += p;
      b.hits += hit;
      n++;
      hits += hit;
      const level = series.confidence(index) ?? 'null';
      const c = conf.get(level) ?? { n: 0, hits: 0 };
      c.n++;
      c.hits += hit;
      conf.set(level, c);
    }
  }
  const out: ReliabilityBin[] = bins.map((b, i) => ({
    lo: i / binCount,
    hi: (i + 1) / binCount,
    n: b.n,
    meanP: b.n > 0 ? b.sumP / b.n : null,
    observed: b.n > 0 ? b.hits / b.n : null,
  }));
  const ece =
    n > 0
      ? out.reduce(
          (s, b) =>
            s + (b.n > 0 ? (b.n / n) * Math.abs((b.observed as number) - (b.meanP as number)) : 0),
          0,
        )
      : null;
  const order = ['LOW', 'MEDIUM', 'HIGH', 'null'];
  const byConfidence = [...conf.entries()]
    .sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]))
    .map(([level, c]) => ({ level, n: c.n, hitRate: c.n > 0 ? c.hits / c.n : null }));
  const baseRates = { ...base };
  for (const r of REGIMES) baseRates[r] = outcomeCount > 0 ? base[r] / outcomeCount : 0;
  return { bins: out, n, hitRate: n > 0 ? hits / n : null, ece, byConfidence, baseRates };
}

export interface Histogram {
  /** Bin edges, `counts.length + 1` of them. */
  edges: number[];
  counts: number[];
  /** Values above the last edge. */
  overflow: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/**
 * A histogram of `values` over [0, p99.5] in `binCount` equal bins, the rest counted as overflow.
 * Percentiles are exact, by the project's one definition (src/util/quantile.ts: linear
 * interpolation between the closest ranks): of an array, by sorting a copy (8 bytes a value); of
 * {@link NumberChunks} (a column in a scratch file), by selecting the two closest ranks in a few
 * passes over the blocks ({@link kthSmallest}), holding at most {@link SELECT_BATCH} values. Both
 * give the same figures.
 */
export function histogram(values: ArrayLike<number> | NumberChunks, binCount = 30): Histogram {
  if (!isChunks(values)) return histogramSorted(values, binCount);
  let n = 0;
  let max = -Infinity;
  values.forEachChunk((chunk) => {
    for (const v of chunk)
      if (Number.isFinite(v)) {
        n++;
        if (v > max) max = v;
      }
  });
  const q = (p: number): number | null => {
    if (n === 0) return null;
    // quantile() over the sorted values, with the two ranks it reads found by selection.
    const h = p * (n - 1);
    const lo = Math.floor(h);
    const x = kthSmallest(values, lo);
    return lo + 1 < n && h > lo ? x + (h - lo) * (kthSmallest(values, lo + 1) - x) : x;
  };
  return binned(q, n > 0 ? max : null, binCount, (bin) => values.forEachChunk(bin));
}

/** The histogram of the finite values `eachChunk` visits, binned over [0, p99.5] with `q`'s percentiles. */
function binned(
  q: (p: number) => number | null,
  max: number | null,
  binCount: number,
  eachChunk: (bin: (chunk: Float64Array) => void) => void,
): Histogram {
  const top = Math.max(q(0.995) ?? 1, 1e-9);
  const width = top / binCount;
  const counts = new Array<number>(binCount).fill(0);
  let overflow = 0;
  eachChunk((chunk) => {
    for (let j = 0; j < chunk.length; j++) {
      const v = chunk[j] as number;
      if (!Number.isFinite(v)) continue;
      if (v > top) overflow++;
      else {
        const i = Math.min(binCount - 1, Math.floor(v / width));
        if (i >= 0) counts[i] = (counts[i] as number) + 1;
      }
    }
  });
  return {
    edges: Array.from({ length: binCount + 1 }, (_, i) => i * width),
    counts,
    overflow,
    p50: q(0.5),
    p95: q(0.95),
    p99: q(0.99),
    max,
  };
}

function isChunks(values: ArrayLike<number> | NumberChunks): values is NumberChunks {
  return typeof (values as Partial<NumberChunks>).forEachChunk === 'function';
}

function histogramSorted(values: ArrayLike<number>, binCount: number): Histogram {
  const s = sortedFinite(values);
  const q = (p: number): number | null => (s.length === 0 ? null : quantile(s, p));
  return binned(q, s.length > 0 ? (s[s.length - 1] as number) : null, binCount, (bin) => bin(s));
}

/** Values {@link kthSmallest} sorts in memory at most; above it, it narrows by buckets first. */
export const SELECT_BATCH = 65_536;
const SELECT_BUCKETS = 4096;

/**
 * The `k`-th smallest (0-based) finite value of `values`, exactly, in bounded memory: each round
 * counts the candidates into {@link SELECT_BUCKETS} equal buckets between their min and max, keeps
 * the bucket holding rank k (the bucket of a value is a non-decreasing function of it, so buckets
 * are ordered), and sorts the candidates once there are at most {@link SELECT_BATCH} of them.
 * Each round is two passes over the blocks and cuts the candidates at least by the min and the max.
 */
export function kthSmallest(values: NumberChunks, k: number): number {
  const rounds: { lo: number; scale: number; bucket: number }[] = [];
  const bucketOf = (v: number, lo: number, scale: number): number =>
    // `|| 0`: the minimum times an infinite scale (a range below 2^-1012) is NaN.
    Math.min(SELECT_BUCKETS - 1, Math.floor((v - lo) * scale) || 0);
  const candidate = (v: number): boolean => {
    if (!Number.isFinite(v)) return false;
    for (const r of rounds) if (bucketOf(v, r.lo, r.scale) !== r.bucket) return false;
    return true;
  };
  let rank = k;
  for (;;) {
    let n = 0;
    let lo = Infinity;
    let hi = -Infinity;
    values.forEachChunk((chunk) => {
      for (const v of chunk)
        if (candidate(v)) {
          n++;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
    });
    if (rank < 0 || rank >= n) throw new RangeError(`kthSmallest: rank ${k} of ${n} values`);
    if (lo === hi) return lo;
    if (n <= SELECT_BATCH) {
      const batch = new Float64Array(n);
      let i = 0;
      values.forEachChunk((chunk) => {
        for (const v of chunk) if (candidate(v)) batch[i++] = v;
      });
      return batch.sort()[rank] as number;
    }
    const scale = SELECT_BUCKETS / (hi - lo);
    const counts = new Float64Array(SELECT_BUCKETS);
    values.forEachChunk((chunk) => {
      for (const v of chunk)
        if (candidate(v)) {
          const b = bucketOf(v, lo, scale);
          counts[b] = (counts[b] as number) + 1;
        }
    });
    let bucket = 0;
    while (rank >= (counts[bucket] as number)) rank -= counts[bucket++] as number;
    rounds.push({ lo, scale, bucket });
  }
}

/** The counts of the report's last section, of results in memory (repeats counted, not used). */
export function counts(results: readonly IntegratedResult[]): Counts {
  return accumulate(results).counts;
}
