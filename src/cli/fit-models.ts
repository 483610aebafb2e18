/**
 * `pipeline fit-models`: offline fitting of the regime model and of the confidence model (see
 * src/strategic/fit-models.ts for what is fitted on which markets). Prints the weights to paste into
 * `src/strategic/regime-model-weights.ts`, and what the fit reaches.
 */
import { MARKET_FAMILIES, WEAK_GAUSSIAN_FAMILY } from '../producers/regime-families';
import {
  CONFIDENCE_FIT_SEEDS,
  CONFIDENCE_ONLY_SEEDS,
  FIT_BARS,
  FIT_SEEDS,
  NO_NEIGHBOUR_MASK,
  confidenceRows,
  fitFeedbackPenalty,
  fitLogistic,
  fitSoftmax,
} from '../strategic/fit-models';
import { REGIME_INPUTS } from '../strategic/regime';
import { scoreFamily, type ScoredBar } from '../strategic/regime-eval';
import { CONFIDENCE_INPUTS } from '../strategic/uncertainty';
import { ExitCode, defineCommand, integer, type CommandContext } from './common';

function print(out: (line: string) => void, name: string, w: Float64Array, perRow: number): void {
  const rows: string[] = [];
  for (let c = 0; c < w.length / perRow; c++) {
    rows.push(
      '  ' +
        Array.from(w.subarray(c * perRow, (c + 1) * perRow), (x) => x.toPrecision(8)).join(', ') +
        ',',
    );
  }
  out(`${name} = Float64Array.from([\n${rows.join('\n')}\n]);`);
}

function main(out: (line: string) => void, iterations: number, patterns: boolean): void {
  const fitted = MARKET_FAMILIES.filter((f) => !f.heldOut);
  // 1. Regime softmax, from the detector's inputs (no pattern store needed).
  const xs: Float64Array[] = [];
  const labels: number[] = [];
  for (const family of fitted) {
    for (const r of scoreFamily(family, { seeds: FIT_SEEDS, bars: FIT_BARS, patterns: false })) {
      // Settled windows only (the whole window inside one regime, the calm yardstick known): the
      // regime of a window that straddles a switch is not defined, and how unsure the call is
      // there is the confidence model's job (its switch inputs), not the softmax's.
      if (!r.settled || r.volatileStart) continue;
      xs.push(r.inputs);
      labels.push(r.truth);
    }
  }
  out(`regime samples ${xs.length}`);
  const regimeWeights = fitSoftmax(xs, labels, iterations);
  print(out, 'REGIME_MODEL_WEIGHTS', regimeWeights, REGIME_INPUTS);
  // 2. Confidence model, on the analyzer's evidence with the new softmax and the pattern store.
  const scored: ScoredBar[] = [];
  // --no-patterns skips the pattern store: the deployed model (neighbour weight 0) is then the
  // same, only the "with neighbours" fit is meaningless.
  for (const family of [...fitted, WEAK_GAUSSIAN_FAMILY])
    scored.push(
      ...scoreFamily(family, {
        seeds:
          family === WEAK_GAUSSIAN_FAMILY
            ? CONFIDENCE_FIT_SEEDS.slice(0, CONFIDENCE_ONLY_SEEDS)
            : CONFIDENCE_FIT_SEEDS,
        bars: FIT_BARS,
        regimeWeights,
        patterns,
      }),
    );
  const { xs: cx, ys } = confidenceRows(scored);
  const withNeighbours = patterns
    ? fitLogistic(cx, ys, iterations * 2)
    : new Float64Array(CONFIDENCE_INPUTS);
  const without = fitLogistic(cx, ys, iterations * 2, NO_NEIGHBOUR_MASK);
  print(out, 'CONFIDENCE_MODEL_WEIGHTS (with neighbours)', withNeighbours, CONFIDENCE_INPUTS);
  print(out, 'CONFIDENCE_MODEL_WEIGHTS (neighbour weight 0)', without, CONFIDENCE_INPUTS);
  // 3. Feedback penalty, on top of the deployed confidence model (neighbour weight 0): a
  // measurement of what simulated agents' feedback adds (see `feedbackPenalty`).
  out(
    `FITTED_FEEDBACK_PENALTY_PER_Z = ${fitFeedbackPenalty(scored, without, out).toPrecision(8)};`,
  );
}

const HELP = `Refits the regime softmax and the confidence model on the fitted market families (never on the
held-out ones or the report's seeds), measures the feedback penalty, and prints the weights to paste
into src/strategic/regime-model-weights.ts. Deterministic. Takes minutes. See docs/regime.md.`;

/** `pipeline fit-models`. */
export const fitModelsCommand = defineCommand({
  options: {
    iterations: { type: 'string', value: 'N', parse: integer(1, 1_000_000), default: 500, description: 'optimiser iterations (the confidence fit uses twice as many)' },
    'no-patterns': { type: 'boolean', description: 'skip the pattern store (the "with neighbours" fit is then not made)' },
  },
  help: HELP,
  offline: true,
  run({ values }, ctx: CommandContext): Promise<number> {
    main((line) => void ctx.out.write(`${line}\n`), values.iterations, values['no-patterns'] !== true);
    return Promise.resolve(ExitCode.Ok);
  },
});
