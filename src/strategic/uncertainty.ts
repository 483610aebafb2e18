import type { ConfidenceLevel } from '../../schemas/strategic-context.schema';
import { CONFIDENCE_MODEL_WEIGHTS } from './regime-model-weights';

/**
 * What the tactical side achieved over recent six-bar windows for one symbol and regime (supplied
 * by the feedback flow; `null`/absent when there is none yet).
 */
export interface TacticalFeedback {
  /** Fraction of directional calls that were right, in [0, 1]. */
  hitRate: number;
  /** Realised log return after costs over those windows (only its sign is used). */
  realisedReturn: number;
  /** Number of six-bar windows the figures cover. */
  windows: number;
  /** Number of directional calls behind `hitRate`. @defaultValue 6 per window */
  directional?: number;
}

/** Evidence for {@link assessUncertainty}. */
export interface UncertaintyEvidence {
  /** Probability of the called regime (the max of the regime posterior). */
  regimeProbability: number;
  /**
   * Baseline samples the symbol has (one per 12 bars once 48 returns exist, see
   * `VolatilityBaseline`): few samples mean the calm yardstick itself is not known yet.
   * @defaultValue 128 (a long history)
   */
  baselineSamples?: number;
  /** `RegimeDetector.ambiguity`: share of the symbol's recent windows with an unclear drift. @defaultValue 0 */
  ambiguity?: number;

  /** A return of the window was clipped as a jump or an extreme tail. @defaultValue false */
  jumpInWindow?: boolean;
  /** `RegimeDetector.switchEvidence` of the window. @defaultValue none (terms 0) */
  switchEvidence?: ArrayLike<number>;
  /** Number of eligible nearest patterns found (0 when none or not warm yet). */
  neighbours: number;
  /** Fraction of those neighbours whose stored regime equals the call (ignored when `neighbours` is 0). */
  neighbourAgreement: number;
  /** Recent tactical outcomes for this symbol and the called regime. */
  feedback?: TacticalFeedback | null;
}

/** Result of {@link assessUncertainty}. */
export interface UncertaintyAssessment {
  /** `1 − pCorrect`, in [0, 1]. */
  uncertainty: number;
  confidence: ConfidenceLevel;
  /** Estimated probability that the regime call is right. */
  pCorrect: number;
}

/** `pCorrect ≥ HIGH_MIN_P_CORRECT` → HIGH. */
export const HIGH_MIN_P_CORRECT = 0.97;
/** `pCorrect ≥ MEDIUM_MIN_P_CORRECT` → MEDIUM, below → LOW. */
export const MEDIUM_MIN_P_CORRECT = 0.8;
/** Number of inputs of the confidence model (see {@link confidenceInputs}). */
export const CONFIDENCE_INPUTS = 16;
/** Index of the neighbour input in {@link confidenceInputs}. */
export const NEIGHBOUR_INPUT = 4;

/**
 * Writes the confidence model's inputs: `[1, logit(p), 1/baselineSamples, jump, neighbour,
 * |tBreak12|, |ln(v12/v36)|, |tBreak24|, |ln(v24/v24')|, logit(p)·min(4, max|tBreak|),
 * logit(p)/baselineSamples, |tBreak6|, |ln(v6/v42)|, logit(p)·min(4, max|ln v-ratio|), ambiguity,
 * logit(p)·ambiguity]`, with
 * `logit(p)` clipped to ±12, `jump` 1 when the window had a clipped return,
 * `neighbour = (agreement − ½)·n/(n+5)` (0 without neighbours), and the `tBreak`/`v`-ratio terms
 * the size of the switch evidence of `RegimeDetector.switchEvidence` (how the last 12, 24 and 6
 * bars differ from the rest of the window). The interactions let the weight of the posterior fall
 * where a switch of trend or of volatility may lie inside the window, or the history is short.
 */
export function confidenceInputs(evidence: UncertaintyEvidence, out: Float64Array): void {
  const p = Math.min(1 - 1e-9, Math.max(1e-9, evidence.regimeProbability));
  const logit = Math.log(p / (1 - p));
  out[0] = 1;
  out[1] = logit > 12 ? 12 : logit < -12 ? -12 : logit;
  out[2] = 1 / Math.max(1, evidence.baselineSamples ?? 128);
  out[3] = evidence.jumpInWindow === true ? 1 : 0;
  const n = evidence.neighbours;
  out[4] = n > 0 ? (evidence.neighbourAgreement - 0.5) * (n / (n + 5)) : 0;
  const sw = evidence.switchEvidence;
  let biggestT = 0;
  let biggestV = 0;
  for (let j = 0; j < 6; j++) {
    const v = sw !== undefined && j < sw.length ? (sw[j] as number) : 0;
    const x = v < 0 ? -v : v;
    out[j < 4 ? 5 + j : 7 + j] = x;
    if (j % 2 === 0) {
      if (x > biggestT) biggestT = x;
    } else if (x > biggestV) biggestV = x;
  }
  // The posterior's log-odds mean less when a switch may be inside the window, or history is short.
  const sure = out[1];
  out[9] = sure * Math.min(biggestT, 4);
  out[10] = sure * (out[2]);
  out[13] = sure * Math.min(biggestV, 4);
  // A symbol whose windows often have an unclear drift (weak trends) gets less from the posterior.
  const amb = evidence.ambiguity ?? 0;
  out[14] = amb;
  out[15] = sure * amb;
}

/**
 * The z-score of the tactical directional hit rate below a coin's: `z = (½ − hitRate)·√n / ½`
 * over the `n` directional calls of the remembered windows (6 per window when not given); 0
 * without feedback.
 */
export function feedbackZ(feedback: TacticalFeedback | null | undefined): number {
  if (!feedback || !(feedback.windows > 0) || !Number.isFinite(feedback.hitRate)) return 0;
  const n = feedback.directional ?? feedback.windows * 6;
  if (!(n > 0)) return 0;
  return ((0.5 - feedback.hitRate) * Math.sqrt(n)) / 0.5;
}

/**
 * The z-score beyond which tactical feedback lowers confidence: a hit rate this far below a coin's
 * has a probability under 0.0014 (one-sided) for agents that are at least a coin, which agents
 * trading a right call are.
 */
export const FEEDBACK_MIN_Z = 3;

/**
 * The log-odds tactical feedback removes: `max(0, z − 3)` with `z` of {@link feedbackZ}. Not
 * fitted: fitting `a·max(0, z)` on top of the confidence model with simulated agents that trade
 * the call gives `a = 0` (`fit-models.ts`; where those agents do worse than a coin the model
 * already reports a lower probability than is borne out), and those agents never reach z ≥ 3. So
 * the term only acts where chance cannot explain the agents' results: then either the call or the
 * agents are wrong, and the confidence drops by one log-odds per unit of z beyond 3 (a rule, not a
 * measurement). Good outcomes never raise confidence. See docs/regime.md.
 */
export function feedbackPenalty(feedback: TacticalFeedback | null | undefined): number {
  const z = feedbackZ(feedback);
  return z > FEEDBACK_MIN_Z ? z - FEEDBACK_MIN_Z : 0;
}

const scratch = new Float64Array(CONFIDENCE_INPUTS);

/**
 * The probability that the regime call is right: a logistic regression on
 * {@link confidenceInputs} with the weights of `CONFIDENCE_MODEL_WEIGHTS` (fitted by
 * `src/strategic/fit-models.ts` on the fitted market families), minus {@link feedbackPenalty} on
 * the log-odds scale. `uncertainty = 1 − pCorrect`; HIGH when `pCorrect ≥ 0.97`, MEDIUM when
 * `≥ 0.8`, else LOW (margins above the 95 % and 75 % the levels promise, for markets unlike the
 * fitted ones).
 */
export function assessUncertainty(evidence: UncertaintyEvidence, weights = CONFIDENCE_MODEL_WEIGHTS): UncertaintyAssessment {
  confidenceInputs(evidence, scratch);
  let z = 0;
  for (let j = 0; j < CONFIDENCE_INPUTS; j++) z += (weights[j] as number) * (scratch[j] as number);
  z -= feedbackPenalty(evidence.feedback);
  const pCorrect = 1 / (1 + Math.exp(-z));
  const uncertainty = 1 - pCorrect;
  const confidence: ConfidenceLevel =
    pCorrect >= HIGH_MIN_P_CORRECT ? 'HIGH' : pCorrect >= MEDIUM_MIN_P_CORRECT ? 'MEDIUM' : 'LOW';
  return { uncertainty, confidence, pCorrect };
}
