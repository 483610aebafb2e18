import type { ConfidenceLevel } from '../../schemas/strategic-context.schema';
import { generateFamilyMarket, type MarketFamily } from '../producers/regime-families';
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
      const periods = lastTs === null ? 1 : Math.max(1, Math.round((bar.ts - lastTs) / 1_800_000));
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
