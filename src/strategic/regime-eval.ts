import type { ConfidenceLevel } from '../../schemas/strategic-context.schema';
import { generateFamilyMarket, type MarketFamily } from '../producers/regime-families';
import { periodsBetween } from '../util/periods';
import { FeatureMatrix, WINDOW_BARS } from './feature-matrix';
import { PatternStore } from './pattern-store';
import { EMBEDDING_DIM } from './embedding';
import { REGIME_INDEX } from './regime-names';
import { RegimeDetector, VolatilityBaseline, plainRuleRegime, REGIME_INPUTS } from './regime';
import { StrategicAnalyzer, type StrategicEvidence } from './strategic-analyzer';
import type { TacticalFeedback } from './uncertainty';

/**
 * Offline evaluation of the regime model on market families (fitting, the regime report, tests;
 * never the live path). Pure compute: markets are generated from seeds, nothing is read or written.
 */

/** One scored 30m bar. */
export interface ScoredBar {
  truth: number;
  call: number;
  plain: number;
  level: ConfidenceLevel;
  pCorrect: number;
  /** At least 48 bars of the generator's clock since the segment began (the window is inside it). */
  settled: boolean;
  /** Bars since the segment began (generator clock). */
  sinceSwitch: number;
  /** The bar lies in a first segment that is VOLATILE: the calm yardstick is not known yet. */
  volatileStart: boolean;
  /** The regime model's inputs (for fitting). */
  inputs: Float64Array;
  /** Seed of the market the bar belongs to (rows of one market are consecutive). */
  seed: number;
  /** Log return of the market's next bar (NaN for the last bar): what agents trading the call get. */
  nextReturn: number;
  evidence: StrategicEvidence;
}

/** Options of {@link scoreFamily}. */
export interface ScoreFamilyOptions {
  seeds: readonly number[];
  bars: number;
  /** Use a pattern store per market (slower; needed to measure what kNN adds). @defaultValue true */
  patterns?: boolean;
  regimeWeights?: Float64Array;
  confidenceWeights?: Float64Array;
}

/**
 * Runs the analyzer (a fresh one with its own pattern store per market) and, in the same pass, the
 * plain rule on its own baseline of raw window variances, over seeded markets of one family.
 */
export function scoreFamily(family: MarketFamily, options: ScoreFamilyOptions): ScoredBar[] {
  const out: ScoredBar[] = [];
  for (const seed of options.seeds) {
    const market = generateFamilyMarket(family, seed, options.bars, `${family.name}-${seed}`);
    const analyzer = new StrategicAnalyzer({
      store: new PatternStore({ dim: EMBEDDING_DIM }),
      regimeWeights: options.regimeWeights,
      confidenceWeights: options.confidenceWeights,
    });
    const detector = new RegimeDetector();
    const fm = new FeatureMatrix();
    const plainBaseline = new VolatilityBaseline();
    let lastTs: number | null = null;
    const inputs = new Float64Array(REGIME_INPUTS);
    market.bars.forEach((bar, i) => {
      const o = analyzer.onBar(bar, null, { skipPatterns: options.patterns === false });
      // The same detector statistics, kept here to record the inputs the model saw.
      const periods = lastTs === null ? 1 : Math.max(1, periodsBetween(lastTs, bar.ts));
      lastTs = bar.ts;
      fm.update(bar);
      if (fm.bars >= 2) detector.update(fm.logReturnOver(1), periods);
      if (fm.returnCount < WINDOW_BARS) return;
      const v48 = (fm.returnVariance(48) * 48) / 47;
      plainBaseline.update(v48);
      if (o.regime === null || o.confidence === null || o.evidence === undefined) return;
      detector.inputs(inputs);
      out.push({
        truth: REGIME_INDEX[market.labels[i]!],
        call: REGIME_INDEX[o.regime],
        plain: plainRuleRegime(fm.returnMean(48), v48, plainBaseline.variance),
        level: o.confidence,
        pCorrect: o.evidence.pCorrect,
        settled: market.sinceSwitch[i]! >= WINDOW_BARS,
        sinceSwitch: market.sinceSwitch[i]!,
        volatileStart: market.segment[i] === 0 && market.labels[i] === 'VOLATILE',
        inputs: inputs.slice(),
        seed,
        nextReturn:
          i + 1 < market.bars.length ? Math.log(market.bars[i + 1]!.close / bar.close) : Number.NaN,
        evidence: o.evidence,
      });
    });
  }
  return out;
}

/** Figures of a set of scored bars. */
export interface FamilyFigures {
  bars: number;
  accuracy: number;
  plainRuleAccuracy: number;
  highAccuracy: number | null;
  mediumAccuracy: number | null;
  lowAccuracy: number | null;
  /** Shares of HIGH, MEDIUM, LOW calls. */
  levelShare: Record<ConfidenceLevel, number>;
  /** Expected calibration error of `pCorrect` over 10 equal-width bins. */
  ece: number;
  /** Rows truth, columns call, order BULL, BEAR, SIDEWAYS, VOLATILE. */
  confusion: number[][];
  plainConfusion: number[][];
}

/** The bars the targets are measured on: settled, and not in a VOLATILE first segment. */
export function scoredForTargets(rows: readonly ScoredBar[]): ScoredBar[] {
  return rows.filter((r) => r.settled && !r.volatileStart);
}

/** Accuracy, plain-rule accuracy, accuracy per confidence level, ECE and confusion matrices. */
export function figures(rows: readonly ScoredBar[]): FamilyFigures {
  const confusion = [0, 1, 2, 3].map(() => [0, 0, 0, 0]);
  const plainConfusion = [0, 1, 2, 3].map(() => [0, 0, 0, 0]);
  let right = 0;
  let plainRight = 0;
  const lvl: Record<ConfidenceLevel, [number, number]> = {
    HIGH: [0, 0],
    MEDIUM: [0, 0],
    LOW: [0, 0],
  };
  const binConf = new Float64Array(10);
  const binAcc = new Float64Array(10);
  for (const r of rows) {
    const ok = r.call === r.truth ? 1 : 0;
    right += ok;
    plainRight += r.plain === r.truth ? 1 : 0;
    confusion[r.truth]![r.call]!++;
    plainConfusion[r.truth]![r.plain]!++;
    lvl[r.level][0] += ok;
    lvl[r.level][1]++;
    const b = Math.min(9, Math.floor(r.pCorrect * 10));
    binConf[b] = binConf[b]! + r.pCorrect;
    binAcc[b] = binAcc[b]! + ok;
  }
  const n = rows.length;
  let ece = 0;
  for (let b = 0; b < 10; b++) ece += Math.abs(binAcc[b]! - binConf[b]!);
  const acc = (l: ConfidenceLevel): number | null => (lvl[l][1] > 0 ? lvl[l][0] / lvl[l][1] : null);
  return {
    bars: n,
    accuracy: right / n,
    plainRuleAccuracy: plainRight / n,
    highAccuracy: acc('HIGH'),
    mediumAccuracy: acc('MEDIUM'),
    lowAccuracy: acc('LOW'),
    levelShare: { HIGH: lvl.HIGH[1] / n, MEDIUM: lvl.MEDIUM[1] / n, LOW: lvl.LOW[1] / n },
    ece: ece / n,
    confusion,
    plainConfusion,
  };
}

/** Mean log loss of `pCorrect` against whether the call was right. */
export function logLoss(rows: readonly ScoredBar[]): number {
  let sum = 0;
  for (const r of rows) {
    const p = Math.min(1 - 1e-12, Math.max(1e-12, r.pCorrect));
    sum -= r.call === r.truth ? Math.log(p) : Math.log(1 - p);
  }
  return sum / rows.length;
}

/** Feedback windows remembered per regime (as the strategic flow keeps them). */
export const SIMULATED_FEEDBACK_WINDOWS = 8;
/** The pipeline's default feedback lag (`PIPELINE_FEEDBACK_LAG`), in 30m bars. */
export const SIMULATED_FEEDBACK_LAG = 4;

/**
 * Tactical feedback from simulated agents that trade the call, for every scored bar (rows of one
 * market consecutive, in bar order): after a BULL call the agents are long over the next 30m bar,
 * after a BEAR call short, after SIDEWAYS or VOLATILE flat; a window is one directional call, a
 * hit when the next bar's return has the call's sign. As in the strategic flow, the windows are
 * remembered per called regime (the last {@link SIMULATED_FEEDBACK_WINDOWS}), and the bar `n`
 * sees the windows of the calls up to bar `n − lag − 1` (the window of the call at bar `j` closes
 * with bar `j + 1`, and the context of bar `n` applies the window that closed with bar `n − lag`).
 * Nothing here assumes how often agents are right under a right or a wrong call: that follows
 * from the market's own next returns.
 */
export function simulateFeedback(
  rows: readonly ScoredBar[],
  lag = SIMULATED_FEEDBACK_LAG,
): (TacticalFeedback | null)[] {
  const out: (TacticalFeedback | null)[] = [];
  let memory: number[][] = [[], [], [], []];
  let start = 0;
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k]!;
    if (k > 0 && rows[k - 1]!.seed !== r.seed) {
      memory = [[], [], [], []];
      start = k;
    }
    // Apply the window of the call made lag + 1 bars before (scored rows of a market are consecutive bars).
    const j = k - lag - 1;
    if (j >= start) {
      const w = rows[j]!;
      if (w.call < 2 && Number.isFinite(w.nextReturn) && w.nextReturn !== 0) {
        const hit = (w.call === 0 ? w.nextReturn > 0 : w.nextReturn < 0) ? 1 : 0;
        const list = memory[w.call]!;
        list.push(hit);
        if (list.length > SIMULATED_FEEDBACK_WINDOWS) list.shift();
      }
    }
    const list = memory[r.call]!;
    if (list.length === 0) {
      out.push(null);
      continue;
    }
    const hits = list.reduce((a, b) => a + b, 0);
    out.push({
      hitRate: hits / list.length,
      realisedReturn: 0,
      windows: list.length,
      directional: list.length,
    });
  }
  return out;
}

/**
 * One called bar of a real symbol, for comparing VOLATILE definitions on what follows: the model's
 * call, the detector's log variance ratios of the window to the baseline, and the realised
 * volatility (std of the 30m log returns) over the next bars (NaN when they are not all known).
 */
export interface VolatilityBar {
  /** Regime index of the model's call (0 BULL, 1 BEAR, 2 SIDEWAYS, 3 VOLATILE). */
  call: number;
  /** `ln(v48/b)`, `ln(v12/b)`, `ln(v6/b)` of `RegimeDetector.inputs`. */
  lv48: number;
  lv12: number;
  lv6: number;
  forwardVol: number;
}

/** A candidate VOLATILE definition, applied to the bars the model does not call BULL or BEAR. */
export interface VolatileRule {
  name: string;
  volatile(bar: VolatilityBar): boolean;
}

/**
 * The candidates compared by the regime report: the model's own VOLATILE call; the model's call
 * only when the recent part of the window (last 12 or 6 bars) is also above the baseline
 * (volatility that persists up to the window's end); the 48-bar variance alone above a threshold;
 * and the 48-bar variance AND the recent part above thresholds. Thresholds are log variance ratios
 * to the calm baseline (0.5 = 1.65×, 1.0 = 2.7×, 1.25 = 3.5×).
 */
export function volatileRuleCandidates(): VolatileRule[] {
  const rules: VolatileRule[] = [{ name: 'model VOLATILE', volatile: (b) => b.call === 3 }];
  const recent = [
    ['12', (b: VolatilityBar) => b.lv12],
    ['6', (b: VolatilityBar) => b.lv6],
  ] as const;
  for (const [span, lv] of recent)
    for (const th of [0, 0.25, 0.5, 0.75, 1])
      rules.push({
        name: `model VOLATILE & ln(v${span}/b) >= ${th}`,
        volatile: (b) => b.call === 3 && lv(b) >= th,
      });
  for (const a of [0.5, 0.7, 0.9, 1.1, 1.3]) {
    rules.push({ name: `ln(v48/b) >= ${a}`, volatile: (b) => b.lv48 >= a });
    for (const [span, lv] of recent)
      for (const th of [0.25, 0.5, 0.75, 1, 1.25])
        rules.push({
          name: `ln(v48/b) >= ${a} & ln(v${span}/b) >= ${th}`,
          volatile: (b) => b.lv48 >= a && lv(b) >= th,
        });
  }
  return rules;
}

/**
 * Mean of `vol` over the items of `[from, to)` that `flagged` marks over its mean over the others
 * (items whose `vol` is not finite are left out); null when either side is empty.
 */
export function flaggedVolRatio<T>(
  items: readonly T[],
  vol: (item: T) => number,
  flagged: (item: T) => boolean,
  from = 0,
  to = items.length,
): number | null {
  let sv = 0;
  let nv = 0;
  let ss = 0;
  let ns = 0;
  for (let i = from; i < to; i++) {
    const item = items[i] as T;
    const v = vol(item);
    if (!Number.isFinite(v)) continue;
    if (flagged(item)) {
      sv += v;
      nv++;
    } else {
      ss += v;
      ns++;
    }
  }
  return nv > 0 && ns > 0 ? sv / nv / (ss / ns) : null;
}

/**
 * Mean forward volatility of the bars in `[from, to)` that `rule` flags VOLATILE over that of the
 * other non-trend bars (the model's SIDEWAYS and VOLATILE calls); null when either side is empty.
 */
export function volatileRatio(
  bars: readonly VolatilityBar[],
  rule: VolatileRule,
  from = 0,
  to = bars.length,
): number | null {
  return flaggedVolRatio(bars, (b) => (b.call < 2 ? Number.NaN : b.forwardVol), (b) => rule.volatile(b), from, to);
}

/** Result of {@link selectOnFirstHalves}. */
export interface HalfSelection {
  rule: VolatileRule;
  /** Per symbol: the chosen rule's ratio on the first half (choice) and on the second (report). */
  first: (number | null)[];
  second: (number | null)[];
}

/**
 * Chooses among `rules` on the first half of every symbol's bars only, and measures the choice on
 * the second halves: the rule whose smallest first-half ratio over the symbols is largest (a
 * missing ratio counts as 0; ties keep the earlier rule). The first half ends `gap` bars before
 * the middle, so no forward window of a choosing bar reaches into the reporting half.
 */
export function selectOnFirstHalves(
  symbols: readonly (readonly VolatilityBar[])[],
  rules: readonly VolatileRule[],
  gap = 24,
): HalfSelection {
  let best: HalfSelection | null = null;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (const rule of rules) {
    const first = symbols.map((bars) =>
      volatileRatio(bars, rule, 0, Math.max(0, (bars.length >> 1) - gap)),
    );
    const score = Math.min(...first.map((r) => r ?? 0));
    if (score > bestScore) {
      bestScore = score;
      best = {
        rule,
        first,
        second: symbols.map((bars) => volatileRatio(bars, rule, bars.length >> 1)),
      };
    }
  }
  if (best === null) throw new RangeError('selectOnFirstHalves needs at least one rule');
  return best;
}
