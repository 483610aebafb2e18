import type { ConfidenceLevel } from '../../schemas/strategic-context.schema';

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
}

/** Evidence for {@link assessUncertainty}. */
export interface UncertaintyEvidence {
  /** Probability of the called regime (the max of the calibrated posterior). */
  regimeProbability: number;
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

/** `uncertainty ≤ HIGH_MAX_UNCERTAINTY` → HIGH (the call is estimated right ≥ 95 % of the time). */
export const HIGH_MAX_UNCERTAINTY = 0.05;
/** `uncertainty ≤ MEDIUM_MAX_UNCERTAINTY` → MEDIUM, above → LOW. */
export const MEDIUM_MAX_UNCERTAINTY = 0.3;
/** Weight of neighbour agreement on the log-odds (at full agreement and many neighbours: ±1). */
export const NEIGHBOUR_WEIGHT = 2;
/** Log-odds removed at worst by poor tactical feedback, and added at best by good feedback. */
export const FEEDBACK_PENALTY = 3;
export const FEEDBACK_BONUS = 0.5;

/**
 * Combines the evidence into the probability that the regime call is right, on the log-odds scale:
 *
 * `logit(pCorrect) = logit(p) + 2·(agreement − ½)·n/(n+5) + feedbackTerm`
 *
 * - `p` is the calibrated regime probability (its ECE is tested, so `logit(p)` is the prior log-odds);
 * - neighbour agreement moves it by at most ±1 (neighbours are past windows whose own calls are
 *   noisy, so they are corroboration, not proof), weighted by how many were found;
 * - tactical feedback: quality `q = 0.7·clamp((hitRate − ½)/0.2, −1, 1) + 0.3·sign(realisedReturn)`,
 *   weight `w = windows/(windows + 10)`; the term is `3·w·q` when `q < 0` (poor recent outcomes cut
 *   confidence by up to 3 log-odds, e.g. HIGH at p = 0.98 to MEDIUM) and `0.5·w·q` when good (a
 *   small raise: good tactical results say little more about the regime than the posterior does).
 *
 * `uncertainty = 1 − pCorrect`; confidence HIGH when uncertainty ≤ 0.05, MEDIUM when ≤ 0.30, else LOW.
 */
export function assessUncertainty(evidence: UncertaintyEvidence): UncertaintyAssessment {
  const p = Math.min(1 - 1e-9, Math.max(1e-9, evidence.regimeProbability));
  let z = Math.log(p / (1 - p));
  const n = evidence.neighbours;
  if (n > 0) z += NEIGHBOUR_WEIGHT * (evidence.neighbourAgreement - 0.5) * (n / (n + 5));
  const fb = evidence.feedback;
  if (fb && fb.windows > 0 && Number.isFinite(fb.hitRate)) {
    const hit = Math.max(-1, Math.min(1, (fb.hitRate - 0.5) / 0.2));
    const q = 0.7 * hit + 0.3 * Math.sign(fb.realisedReturn || 0);
    const w = fb.windows / (fb.windows + 10);
    z += q < 0 ? FEEDBACK_PENALTY * w * q : FEEDBACK_BONUS * w * q;
  }
  const pCorrect = 1 / (1 + Math.exp(-z));
  const uncertainty = 1 - pCorrect;
  const confidence: ConfidenceLevel =
    uncertainty <= HIGH_MAX_UNCERTAINTY ? 'HIGH' : uncertainty <= MEDIUM_MAX_UNCERTAINTY ? 'MEDIUM' : 'LOW';
  return { uncertainty, confidence, pCorrect };
}
