/**
 * Weights of the regime softmax and of the confidence model, fitted by
 * `npx tsx src/strategic/fit-models.ts` on the fitted market families (see that file). Refit
 * whenever `RegimeDetector.inputs`, `confidenceInputs` or the baseline change.
 *
 * Regime softmax: rows BULL, BEAR, SIDEWAYS, VOLATILE; columns the inputs of
 * `RegimeDetector.inputs` (`1, ln(v48/b), t48, |t48|, ln(v24/b), t24, |t24|, ln(v12/b), t12, |t12|, ln(v6/b)`).
 */
export const REGIME_MODEL_WEIGHTS: Float64Array = Float64Array.from([
  -2.6454803, -0.97370214, 0.83534702, 0.81593255, -0.40289926, 0.31764127, 0.031522838, 0.0026456304, 0.25983466, -0.097204022, -0.065579629,
  -2.2453543, -1.5607404, -0.86762638, 0.63170653, -0.66938374, -0.35350036, -0.34308727, -0.055766436, -0.27443599, -0.14906561, -0.018654446,
  2.8055803, -2.4001601, 0.027903764, -0.81737270, -0.44368618, 0.13053680, 0.22227505, -0.013314464, -0.033612917, 0.040139770, -0.071286389,
  -0.69593807, 1.8711403, -0.20782987, -0.60511930, 0.58746980, 0.18840655, 0.021488866, 0.014461406, 0.011933117, 0.20800307, 0.0031481930,
]);

/**
 * Confidence model: the inputs of `confidenceInputs` (`1, logit(p), 1/baselineSamples, jump,
 * neighbour, |tBreak12|, |ln(v12/v36)|, |tBreak24|, |ln(v24/v24')|, logit(p)·min(4, max|tBreak|),
 * logit(p)/baselineSamples, |tBreak6|, |ln(v6/v42)|, logit(p)·min(4, max|ln v-ratio|)`).
 */
export const CONFIDENCE_MODEL_WEIGHTS: Float64Array = Float64Array.from([
  1.1627227, 0.61516819, -2.5071364, 0.54383018, 0.0000000, -0.18183030, -0.47951785, 0.0096002566, 0.021017996, -0.12079365, -0.015418349, -0.13599436, -0.061314042, -0.097314054, -1.8558251, 0.35353046,
]);

/**
 * What `src/strategic/fit-models.ts` fits for a feedback penalty `a·max(0, z)` on top of this
 * confidence model, with simulated agents that trade the call: 0 (it adds nothing the model does
 * not know). It is a measurement, not the deployed term: see `feedbackPenalty`.
 */
export const FITTED_FEEDBACK_PENALTY_PER_Z = 0;
