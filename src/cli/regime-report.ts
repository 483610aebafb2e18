/**
 * `pipeline regime-report [<dir of 30m CSVs>]` (and `npm run regime:report`): how the regime model and its confidence do on market families (fitted
 * and held out) and on the real 30m bars of `data/market/30m/`. Prints tables, and as its last
 * line one JSON object (see issue 10). Every random draw is seeded: the output is deterministic.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Bar } from '../../schemas/bar.schema';
import type { ConfidenceLevel } from '../../schemas/strategic-context.schema';
import { readCsvBars, symbolFromCsvPath } from '../producers/csv-bars';
import { PERIOD_MS, periodsAfter, periodsBetween } from '../util/periods';
import { quantile } from '../util/quantile';
import { ExitCode, type Command, type CommandContext } from './common';
import {
  MARKET_FAMILIES,
  WEAK_GAUSSIAN_FAMILY,
  hasAccuracyTarget,
} from '../producers/regime-families';
import {
  EMBEDDING_DIM,
  FeatureMatrix,
  PatternStore,
  REGIME_NAMES,
  StrategicAnalyzer,
  VolatilityBaseline,
  plainRuleRegime,
  RegimeDetector,
  REGIME_INPUTS,
} from '../strategic';
import {
  NO_NEIGHBOUR_MASK,
  confidenceRows,
  fitFeedbackPenalty,
  fitLogistic,
} from '../strategic/fit-models';
import { CONFIDENCE_MODEL_WEIGHTS } from '../strategic/regime-model-weights';
import {
  figures,
  logLoss,
  scoreFamily,
  scoredForTargets,
  simulateFeedback,
  selectOnFirstHalves,
  flaggedVolRatio,
  volatileRatio,
  volatileRuleCandidates,
  type FamilyFigures,
  type ScoredBar,
  type VolatilityBar,
} from '../strategic/regime-eval';
import {
  CONFIDENCE_INPUTS,
  NEIGHBOUR_INPUT,
  feedbackPenalty,
  feedbackZ,
} from '../strategic/uncertainty';
import { SeededRandom } from '../util/random';

/** Seeds of the report's markets, per family (never used for fitting). */
export const REPORT_SEEDS = [5001, 5002, 5003, 5004, 5005, 5006];
const REPORT_BARS = 4000;
const HORIZON = 24;
const LEVELS: ConfidenceLevel[] = ['HIGH', 'MEDIUM', 'LOW'];

const pct = (x: number | null): string =>
  x === null ? '   -  ' : `${(100 * x).toFixed(1).padStart(5)}%`;
const r4 = (x: number | null): number | null => (x === null ? null : Math.round(x * 1e4) / 1e4);

function confusionTable(title: string, m: number[][]): string {
  const head = `  ${title.padEnd(16)}` + REGIME_NAMES.map((n) => n.padStart(10)).join('');
  const rows = m.map(
    (row, i) =>
      `  ${REGIME_NAMES[i]!.padEnd(16)}` + row.map((x) => String(x).padStart(10)).join(''),
  );
  return [head, ...rows].join('\n');
}

function meanP(rows: readonly ScoredBar[]): string {
  if (rows.length === 0) return '  -  ';
  const p = rows.reduce((a, r) => a + r.pCorrect, 0) / rows.length;
  const right = rows.filter((r) => r.call === r.truth).length / rows.length;
  return `${p.toFixed(3)}  (right ${right.toFixed(3)}, n ${rows.length})`;
}

interface RealFigures {
  symbol: string;
  bars: number;
  regimeShare: Record<string, number>;
  levelShare: Record<string, number>;
  volatileVsSidewaysVolRatio: number | null;
  /** The same ratio for the plain rule's calls, for comparison. */
  plainRatio: number | null;
  /**
   * The same ratio for a volatility forecast (range-based, time-of-day adjusted, see
   * {@link forecastRatio}) that flags as many of the non-trend bars as the model calls VOLATILE.
   */
  forecastRatio: number | null;
  bull: { n: number; mean: number; lo: number; hi: number } | null;
  bear: { n: number; mean: number; lo: number; hi: number } | null;
  bigMoveDays: { ts: string; move: number; regime: string | null; confidence: string | null }[];
  /** Every called bar with the detector's variance ratios and its forward volatility. */
  volBars: VolatilityBar[];
  /** The plain rule's ratio on the first half (ending 24 bars before the middle) and the second half. */
  plainHalves: [number | null, number | null];
}

/** Mean and moving-block bootstrap 95 % interval (blocks of 24 bars: forward returns overlap). */
function bootstrap(
  xs: number[],
  rng: SeededRandom,
): { n: number; mean: number; lo: number; hi: number } | null {
  if (xs.length < 2) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  // Blocks of 24 (forward returns of neighbouring bars overlap), fewer when there are few calls.
  const block = Math.max(1, Math.min(HORIZON, Math.floor(xs.length / 5)));
  const means: number[] = [];
  for (let b = 0; b < 2000; b++) {
    let sum = 0;
    let n = 0;
    while (n < xs.length) {
      const start = rng.int(0, xs.length - block);
      for (let k = 0; k < block && n < xs.length; k++, n++) sum += xs[start + k]!;
    }
    means.push(sum / n);
  }
  means.sort((a, b) => a - b);
  return {
    n: xs.length,
    mean,
    lo: quantile(means, 0.025),
    hi: quantile(means, 0.975),
  };
}

/**
 * A yardstick for the real-bar volatility ratio: how far next-24-bar volatility can be told apart
 * at all from what is known at a bar. A forecast of it, causal, per symbol: an EWMA (span 24) of
 * the Parkinson range variance `ln(H/L)²/(4 ln 2)`, times the ratio of the time-of-day profile
 * (an EWMA across days, weight 0.1, of the squared return of each half-hour slot) over the next
 * 24 slots to that over the last 24. Among the bars in `nonTrend`, the `share` with the highest
 * forecast are flagged; returns mean forward volatility of flagged over unflagged bars.
 */
function forecastRatio(
  bars: readonly Bar[],
  fwd: readonly number[],
  nonTrend: readonly boolean[],
  share: number,
): number | null {
  const profile = new Float64Array(48).fill(Number.NaN);
  const forecast: number[] = [];
  let range = 0;
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i]!;
    const r = i > 0 ? Math.log(b.close / bars[i - 1]!.close) : 0;
    range += (2 / 25) * (Math.log(b.high / b.low) ** 2 / (4 * Math.LN2) - range);
    const slot = Math.floor((b.ts % 86_400_000) / PERIOD_MS);
    profile[slot] = Number.isNaN(profile[slot]!)
      ? r * r
      : profile[slot]! + 0.1 * (r * r - profile[slot]!);
    let past = 0;
    let next = 0;
    for (let k = 0; k < 24; k++) {
      past += profile[(slot - k + 48) % 48]!;
      next += profile[(slot + 1 + k) % 48]!;
    }
    forecast.push(past > 0 && Number.isFinite(next) ? (range * next) / past : range);
  }
  const idx: number[] = [];
  for (let i = 0; i < bars.length; i++) if (nonTrend[i] && Number.isFinite(fwd[i]!)) idx.push(i);
  const k = Math.round(share * idx.length);
  if (k < 1 || k >= idx.length) return null;
  idx.sort((a, b) => forecast[b]! - forecast[a]! || a - b);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + fwd[b]!, 0) / xs.length;
  return mean(idx.slice(0, k)) / mean(idx.slice(k));
}

async function realSymbol(path: string, rng: SeededRandom): Promise<RealFigures> {
  const symbol = symbolFromCsvPath(path);
  const bars: Bar[] = [];
  for await (const bar of readCsvBars(path, { symbol, timeframe: '30m' })) bars.push(bar);
  const analyzer = new StrategicAnalyzer({ store: new PatternStore({ dim: EMBEDDING_DIM }) });
  const calls = bars.map((b) => analyzer.onBar(b));
  // The detector's inputs for every bar (the same statistics the analyzer's detector reads).
  const detector = new RegimeDetector();
  const x = new Float64Array(REGIME_INPUTS);
  const lv = bars.map((b, i) => {
    if (i > 0) {
      const periods = Math.max(1, periodsBetween(bars[i - 1]!.ts, b.ts));
      detector.update(Math.log(b.close / bars[i - 1]!.close), periods);
    }
    return detector.inputs(x) ? [x[1]!, x[7]!, x[10]!] : null;
  });
  // The plain rule on its own baseline of raw window variances, for comparison.
  const fm = new FeatureMatrix();
  const plainBaseline = new VolatilityBaseline();
  const plain = bars.map((b) => {
    fm.update(b);
    if (fm.returnCount < 48) return null;
    const v48 = (fm.returnVariance(48) * 48) / 47;
    plainBaseline.update(v48);
    return REGIME_NAMES[plainRuleRegime(fm.returnMean(48), v48, plainBaseline.variance)]!;
  });
  const plainVol: Record<string, number[]> = { VOLATILE: [], SIDEWAYS: [] };
  const logClose = bars.map((b) => Math.log(b.close));
  const regimeShare: Record<string, number> = { BULL: 0, BEAR: 0, SIDEWAYS: 0, VOLATILE: 0 };
  const levelShare: Record<string, number> = { HIGH: 0, MEDIUM: 0, LOW: 0 };
  let called = 0;
  const fwdVol: Record<string, number[]> = { VOLATILE: [], SIDEWAYS: [] };
  const fwdRet: Record<string, number[]> = { BULL: [], BEAR: [] };
  const fwdAll: number[] = bars.map(() => Number.NaN);
  const nonTrend: boolean[] = bars.map(() => false);
  const volBars: VolatilityBar[] = [];
  const plainBars: { volatile: boolean; vol: number }[] = [];
  calls.forEach((c, i) => {
    if (c.regime === null || c.confidence === null) return;
    called++;
    const v = lv[i];
    volBars.push({
      call: REGIME_NAMES.indexOf(c.regime),
      lv48: v ? v[0]! : Number.NaN,
      lv12: v ? v[1]! : Number.NaN,
      lv6: v ? v[2]! : Number.NaN,
      forwardVol: Number.NaN,
    });
    plainBars.push({ volatile: false, vol: Number.NaN });
    regimeShare[c.regime]!++;
    levelShare[c.confidence]!++;
    if (i + HORIZON >= bars.length) return;
    let s = 0;
    let s2 = 0;
    for (let k = 1; k <= HORIZON; k++) {
      const r = logClose[i + k]! - logClose[i + k - 1]!;
      s += r;
      s2 += r * r;
    }
    const vol = Math.sqrt(Math.max(0, s2 / HORIZON - (s / HORIZON) ** 2));
    fwdAll[i] = vol;
    volBars[volBars.length - 1]!.forwardVol = vol;
    nonTrend[i] = c.regime === 'VOLATILE' || c.regime === 'SIDEWAYS';
    if (c.regime === 'VOLATILE' || c.regime === 'SIDEWAYS') fwdVol[c.regime]!.push(vol);
    const pr = plain[i];
    if (pr === 'VOLATILE' || pr === 'SIDEWAYS') {
      plainVol[pr]!.push(vol);
      plainBars[plainBars.length - 1] = { volatile: pr === 'VOLATILE', vol };
    }
    if (c.regime === 'BULL' || c.regime === 'BEAR') fwdRet[c.regime]!.push(s);
  });
  for (const k of Object.keys(regimeShare)) regimeShare[k] = regimeShare[k]! / called;
  for (const k of Object.keys(levelShare)) levelShare[k] = levelShare[k]! / called;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ratio =
    fwdVol.VOLATILE!.length > 0 && fwdVol.SIDEWAYS!.length > 0
      ? mean(fwdVol.VOLATILE!) / mean(fwdVol.SIDEWAYS!)
      : null;
  // Days (48 bars) that moved 9 % or more, and what was said at their end.
  const bigMoveDays: RealFigures['bigMoveDays'] = [];
  for (let i = 48; i < bars.length; i++) {
    const move = Math.exp(logClose[i]! - logClose[i - 48]!) - 1;
    const prev = bigMoveDays[bigMoveDays.length - 1];
    if (
      Math.abs(move) >= 0.09 &&
      (prev === undefined || bars[i]!.ts - Date.parse(prev.ts) >= periodsAfter(0, 48))
    ) {
      bigMoveDays.push({
        ts: new Date(bars[i]!.ts).toISOString(),
        move,
        regime: calls[i]!.regime,
        confidence: calls[i]!.confidence,
      });
    }
  }
  return {
    symbol,
    bars: bars.length,
    regimeShare,
    levelShare,
    volatileVsSidewaysVolRatio: ratio,
    plainRatio:
      plainVol.VOLATILE!.length > 0 && plainVol.SIDEWAYS!.length > 0
        ? mean(plainVol.VOLATILE!) / mean(plainVol.SIDEWAYS!)
        : null,
    forecastRatio: forecastRatio(
      bars,
      fwdAll,
      nonTrend,
      fwdVol.VOLATILE!.length / (fwdVol.VOLATILE!.length + fwdVol.SIDEWAYS!.length),
    ),
    bull: bootstrap(fwdRet.BULL!, rng),
    bear: bootstrap(fwdRet.BEAR!, rng),
    bigMoveDays,
    volBars,
    plainHalves: [
      halfRatio(plainBars, 0, Math.max(0, (plainBars.length >> 1) - HORIZON)),
      halfRatio(plainBars, plainBars.length >> 1, plainBars.length),
    ],
  };
}

/** Forward volatility after the flagged bars of `[from, to)` over that after the others. */
function halfRatio(xs: readonly { volatile: boolean; vol: number }[], from: number, to: number): number | null {
  return flaggedVolRatio(xs, (b) => b.vol, (b) => b.volatile, from, to);
}

async function main(out: (line: string) => void, dataDir: string): Promise<void> {
  const t0 = Date.now();
  out(
    `# Regime report: ${REPORT_SEEDS.length} markets × ${REPORT_BARS} 30m bars per family (seeds ${REPORT_SEEDS.join(', ')})`,
  );
  out(
    'Targets are measured on settled bars: at least 48 bars after a switch, outside a VOLATILE first segment.\n',
  );
  const perFamily: {
    name: string;
    heldOut: boolean;
    target: boolean;
    f: FamilyFigures;
    all: FamilyFigures;
    rows: ScoredBar[];
  }[] = [];
  for (const family of MARKET_FAMILIES) {
    const rows = scoreFamily(family, { seeds: REPORT_SEEDS, bars: REPORT_BARS });
    perFamily.push({
      name: family.name,
      heldOut: family.heldOut,
      target: hasAccuracyTarget(family),
      f: figures(scoredForTargets(rows)),
      all: figures(rows),
      rows,
    });
  }
  out(
    'family               held-out  92%-target   bars   accuracy  plain rule   HIGH right  MEDIUM right  LOW right   ECE    | all bars: acc   ECE',
  );
  for (const p of perFamily) {
    const f = p.f;
    out(
      `${p.name.padEnd(20)} ${String(p.heldOut).padEnd(9)} ${String(p.target).padEnd(10)} ${String(f.bars).padStart(6)}   ${pct(f.accuracy)}   ${pct(f.plainRuleAccuracy)}     ${pct(f.highAccuracy)}      ${pct(f.mediumAccuracy)}     ${pct(f.lowAccuracy)}  ${f.ece.toFixed(3)}  |  ${pct(p.all.accuracy)}  ${p.all.ece.toFixed(3)}`,
    );
  }
  // The family the confidence model is also fitted on (not one of the issue's families).
  const weakFit = figures(
    scoredForTargets(
      scoreFamily(WEAK_GAUSSIAN_FAMILY, {
        seeds: REPORT_SEEDS,
        bars: REPORT_BARS,
        patterns: false,
      }),
    ),
  );
  out(
    `(${WEAK_GAUSSIAN_FAMILY.name}, confidence fit only: accuracy ${pct(weakFit.accuracy)}, plain rule ${pct(weakFit.plainRuleAccuracy)}, HIGH ${pct(weakFit.highAccuracy)}, MEDIUM ${pct(weakFit.mediumAccuracy)}, ECE ${weakFit.ece.toFixed(3)})`,
  );
  out('\nshare of confidence levels (settled bars):');
  for (const p of perFamily)
    out(
      `  ${p.name.padEnd(20)} ${LEVELS.map((l) => `${l} ${pct(p.f.levelShare[l])}`).join('  ')}`,
    );
  out('\nconfusion matrices (settled bars; rows truth, columns call):');
  for (const p of perFamily) {
    out(`${p.name}`);
    out(confusionTable('model', p.f.confusion));
    out(confusionTable('plain rule', p.f.plainConfusion));
  }
  // Where evidence is thin, the reported probability must fall.
  out(
    '\nmean reported probability that the call is right, and how often it was (all bars of held-out families):',
  );
  const held = perFamily.filter((p) => p.heldOut).flatMap((p) => p.rows);
  const heldStrong = perFamily.filter((p) => p.heldOut && p.target).flatMap((p) => p.rows);
  const weak = perFamily.filter((p) => p.heldOut && !p.target).flatMap((p) => p.rows);
  out(
    `  first windows (baseline samples < 4)   ${meanP(held.filter((r) => r.evidence.baselineSamples < 4))}`,
  );
  out(
    `  later windows                           ${meanP(held.filter((r) => r.evidence.baselineSamples >= 4))}`,
  );
  out(
    `  0-11 bars after a switch                ${meanP(held.filter((r) => r.sinceSwitch < 12 && r.evidence.baselineSamples >= 4))}`,
  );
  for (const [lo, hi] of [
    [0, 3],
    [4, 7],
    [8, 11],
  ] as const)
    out(
      `    ${lo}-${hi} bars after a switch                ${meanP(held.filter((r) => r.sinceSwitch >= lo && r.sinceSwitch <= hi && r.evidence.baselineSamples >= 4))}`,
    );
  out(
    `  12-47 bars after a switch               ${meanP(held.filter((r) => r.sinceSwitch >= 12 && r.sinceSwitch < 48 && r.evidence.baselineSamples >= 4))}`,
  );
  out(
    `  settled bars                            ${meanP(held.filter((r) => r.settled && r.evidence.baselineSamples >= 4))}`,
  );
  out(
    `  window with a jump (clipped return)     ${meanP(held.filter((r) => r.evidence.jumpInWindow && r.settled))}`,
  );
  out(
    `  settled window without                  ${meanP(held.filter((r) => !r.evidence.jumpInWindow && r.settled))}`,
  );
  out(
    `  weak trends (weak family, BULL/BEAR)    ${meanP(weak.filter((r) => r.settled && r.truth < 2))}`,
  );
  out(
    `  strong trends (other held-out, BULL/BEAR) ${meanP(heldStrong.filter((r) => r.settled && r.truth < 2))}`,
  );

  // What the pattern store adds: confidence models fitted on the fitted families' bars with and
  // without the neighbour input, compared on the held-out families' bars.
  const fittedRows = perFamily.filter((p) => !p.heldOut).flatMap((p) => p.rows);
  const { xs, ys } = confidenceRows(fittedRows);
  const withN = fitLogistic(xs, ys, 1200);
  const withoutN = fitLogistic(xs, ys, 1200, NO_NEIGHBOUR_MASK);
  const { xs: hx, ys: hy } = confidenceRows(held);
  const loss = (w: Float64Array): number => {
    let sum = 0;
    hx.forEach((x, i) => {
      let z = 0;
      for (let j = 0; j < CONFIDENCE_INPUTS; j++) z += w[j]! * x[j]!;
      const p = Math.min(1 - 1e-12, Math.max(1e-12, 1 / (1 + Math.exp(-z))));
      sum -= hy[i] === 1 ? Math.log(p) : Math.log(1 - p);
    });
    return sum / hx.length;
  };
  const lossWith = loss(withN);
  const lossWithout = loss(withoutN);
  out(
    `\npattern store (kNN) evidence: neighbour weight fitted ${withN[NEIGHBOUR_INPUT]!.toFixed(3)}; held-out log loss ${lossWith.toFixed(5)} with it, ` +
      `${lossWithout.toFixed(5)} without (${lossWith < lossWithout ? 'it adds' : 'it adds nothing'}: ${(lossWithout - lossWith).toFixed(5)} nats per bar); ` +
      `deployed log loss ${logLoss(held).toFixed(5)}`,
  );

  // Tactical feedback from simulated agents that trade the call (see simulateFeedback): a penalty
  // a·max(0, z) fitted on the fitted families' bars here, applied on every family's bars.
  const perZ = fitFeedbackPenalty(fittedRows, CONFIDENCE_MODEL_WEIGHTS);
  out(
    `\ntactical feedback from simulated agents trading the call (long after BULL, short after BEAR): penalty a·max(0, z) fitted on the fitted families, a = ${perZ.toFixed(4)}; bars with z > 0:`,
  );
  out(
    'family               bars   right   mean p without -> with   log loss without -> with   | wrong calls: mean p      | right calls: mean p    | deployed rule (z > 3) fires',
  );
  const withFeedback: ScoredBar[] = [];
  for (const p of perFamily) {
    const fb = simulateFeedback(p.rows);
    const hit: ScoredBar[] = [];
    const penalised: ScoredBar[] = [];
    let fires = 0;
    p.rows.forEach((r, i) => {
      const z = feedbackZ(fb[i]);
      if (feedbackPenalty(fb[i]) > 0) fires++;
      const p0 = Math.min(1 - 1e-12, Math.max(1e-12, r.pCorrect));
      const q = 1 / (1 + Math.exp(-(Math.log(p0 / (1 - p0)) - perZ * Math.max(0, z))));
      if (p.heldOut) withFeedback.push({ ...r, pCorrect: q });
      if (!(z > 0)) return;
      hit.push(r);
      penalised.push({ ...r, pCorrect: q });
    });
    const m = (rows: ScoredBar[]): number =>
      rows.reduce((a, r) => a + r.pCorrect, 0) / Math.max(1, rows.length);
    const wrong = (rows: ScoredBar[]): ScoredBar[] => rows.filter((r) => r.call !== r.truth);
    const right = (rows: ScoredBar[]): ScoredBar[] => rows.filter((r) => r.call === r.truth);
    out(
      `${p.name.padEnd(20)} ${String(hit.length).padStart(5)}  ${pct(right(hit).length / Math.max(1, hit.length))}   ${m(hit).toFixed(3)} -> ${m(penalised).toFixed(3)}          ${logLoss(hit).toFixed(4)} -> ${logLoss(penalised).toFixed(4)}          | ${m(wrong(hit)).toFixed(3)} -> ${m(wrong(penalised)).toFixed(3)} (n ${wrong(hit).length}) | ${m(right(hit)).toFixed(3)} -> ${m(right(penalised)).toFixed(3)} | ${fires} bars`,
    );
  }
  const heldAll = figures(held);
  const heldFb = figures(withFeedback);
  out(
    `  held-out families, all bars: ECE ${heldAll.ece.toFixed(4)} -> ${heldFb.ece.toFixed(4)} with the fitted penalty, log loss ${logLoss(held).toFixed(5)} -> ${logLoss(withFeedback).toFixed(5)}; ` +
      `0-11 bars after a switch: ${meanP(withFeedback.filter((r) => r.sinceSwitch < 12 && r.evidence.baselineSamples >= 4))}`,
  );

  // Real bars.
  const rng = new SeededRandom(20_250_601);
  const files = readdirSync(dataDir)
    .filter((f) => f.endsWith('_30m.csv'))
    .sort();
  const real: RealFigures[] = [];
  for (const f of files) real.push(await realSymbol(join(dataDir, f), rng));
  out(
    '\nreal 30m bars: share of calls and levels, and what the calls predict over the next 24 bars',
  );
  out(
    'symbol     bars   BULL    BEAR    SIDEW.  VOLAT.  |  HIGH    MEDIUM  LOW    | vol after VOLATILE / after SIDEWAYS (plain rule) [forecast at the same share]',
  );
  for (const r of real) {
    const s = r.regimeShare;
    const l = r.levelShare;
    out(
      `${r.symbol.padEnd(9)} ${String(r.bars).padStart(5)}  ${pct(s.BULL!)} ${pct(s.BEAR!)} ${pct(s.SIDEWAYS!)} ${pct(s.VOLATILE!)}  | ${pct(l.HIGH!)} ${pct(l.MEDIUM!)} ${pct(l.LOW!)} | ${r.volatileVsSidewaysVolRatio === null ? '-' : r.volatileVsSidewaysVolRatio.toFixed(2) + '×'} (${r.plainRatio === null ? '-' : r.plainRatio.toFixed(2) + '×'}) [${r.forecastRatio === null ? '-' : r.forecastRatio.toFixed(2) + '×'}]`,
    );
  }
  // A VOLATILE definition that asks for volatility to persist to the window's end, chosen on the
  // first half of every file only and measured on the second halves, next to the model and the
  // plain rule on the same halves (see docs/regime.md, "Volatility on real bars").
  const rules = volatileRuleCandidates();
  const chosen = selectOnFirstHalves(
    real.map((r) => r.volBars),
    rules,
    HORIZON,
  );
  const model = rules[0]!;
  const fmt = (x: number | null): string =>
    x === null ? '   -  ' : `${x.toFixed(2)}×`.padStart(6);
  out(
    `\nVOLATILE definitions on halves of each file (${rules.length} candidates; chosen on the first halves, ending 24 bars before the middle, by the largest smallest ratio over the symbols): ${chosen.rule.name}`,
  );
  out('symbol     | first half: chosen  model  plain | second half: chosen  model  plain');
  real.forEach((r, k) => {
    const half = r.volBars.length >> 1;
    out(
      `${r.symbol.padEnd(10)} |             ${fmt(chosen.first[k]!)} ${fmt(volatileRatio(r.volBars, model, 0, Math.max(0, half - HORIZON)))} ${fmt(r.plainHalves[0])} |              ${fmt(chosen.second[k]!)} ${fmt(volatileRatio(r.volBars, model, half))} ${fmt(r.plainHalves[1])}`,
    );
  });
  out(
    '\nnext-24-bar log return after BULL and BEAR calls (mean, moving-block bootstrap 95% interval, blocks of 24):',
  );
  const ci = (x: RealFigures['bull']): string =>
    x === null
      ? 'no calls'
      : `n ${x.n}, ${(100 * x.mean).toFixed(2)}% [${(100 * x.lo).toFixed(2)}%, ${(100 * x.hi).toFixed(2)}%]`;
  for (const r of real)
    out(`  ${r.symbol.padEnd(9)} BULL ${ci(r.bull).padEnd(36)} BEAR ${ci(r.bear)}`);
  out('\ndays (48 bars) that moved 9% or more, and the call at their end:');
  for (const r of real)
    for (const d of r.bigMoveDays)
      out(
        `  ${r.symbol.padEnd(9)} ${d.ts}  ${(100 * d.move).toFixed(1)}%  ${d.regime} ${d.confidence}`,
      );
  out(`\n(${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  out(
    JSON.stringify({
      families: perFamily.map((p) => ({
        name: p.name,
        held_out: p.heldOut,
        accuracy: r4(p.f.accuracy),
        plain_rule_accuracy: r4(p.f.plainRuleAccuracy),
        high_accuracy: r4(p.f.highAccuracy),
        medium_accuracy: r4(p.f.mediumAccuracy),
        ece: r4(p.f.ece),
      })),
      real: real.map((r) => ({
        symbol: r.symbol,
        volatile_vs_sideways_vol_ratio: r4(r.volatileVsSidewaysVolRatio),
      })),
    }),
  );
}

const DEFAULT_DATA_DIR = join(__dirname, '..', '..', 'data', 'market', '30m');

const HELP = `How the regime model and its confidence do on market families (fitted and held out) and on the
real 30m bars of <dir> (<SYMBOL>_30m.csv files)          [default: the repository's data/market/30m]
Prints tables, and as its last line one JSON object. Every random draw is seeded: the output is
deterministic. Takes minutes. Needs no broker. See docs/regime.md.`;

/** `pipeline regime-report`. */
export const regimeReportCommand: Command = {
  args: '[dir]',
  help: HELP,
  offline: true,
  async run({ positionals }, ctx: CommandContext): Promise<number> {
    await main((line) => void ctx.out.write(`${line}\n`), positionals[0] ?? DEFAULT_DATA_DIR);
    return ExitCode.Ok;
  },
};
