/**
 * Weights of the regime softmax: rows BULL, BEAR, SIDEWAYS, VOLATILE; columns the inputs of
 * `regimeInputs` (`1, ln(v48/b), t48, |t48|, ln(v24/b), t24, |t24|, ln(v12/b), t12, |t12|, ln(v6/b)`).
 *
 * Fitted by `FIT_ITERATIONS=400 npx tsx src/strategic/fit-models.ts` (softmax regression, Adam,
 * L2 1e-4) on training seeds 101–124 (see that file for the market parameters). Its report:
 * training all bars accuracy 0.931, ECE 0.022; check seeds 5001–5006 all bars 0.947 / ECE 0.024,
 * windows inside one regime 0.987 / ECE 0.045. Refit whenever `regimeInputs` or the baseline change.
 */
export const REGIME_MODEL_WEIGHTS: Float64Array = Float64Array.from([
  -2.0923614, 0.10832962, -0.18679953, 0.064784573, -0.21214148, 0.21083541, 0.31042518, -0.073658345, 0.86103895, 0.10993851, -0.45598477,
  -1.9508608, -0.26943485, 0.21177245, 0.11036495, -0.17926747, -0.21637286, 0.19368538, 0.18034684, -0.86818583, 0.091149258, -0.47930341,
  2.5282224, -0.087174261, -0.026785884, -0.066762535, -0.90205671, 0.035465085, -0.35914804, -0.93012050, 0.0037932993, -0.26667781, -0.42382903,
  -1.2569042, 0.098495250, -0.061146279, -0.076579083, 0.48764365, 0.057365816, -0.048382187, 0.36818794, 0.022209767, 0.18768508, 0.50857939,
]);
