/**
 * `pipeline confidence-tradeoff`: what re-weighting or recalibrating the confidence
 * model does to the calibration targets of issue 10, measured on the held-out families. Prints one
 * table; changes nothing. About 2 to 5 minutes (it scores about 190 markets without the pattern
 * store, whose weight in the confidence is 0).
 *
 * Why it exists: the settled-bar ECE (bars at least 48 bars after a switch) of the deployed model
 * misses 0.05 on some held-out families through under-confidence, while the same model is
 * over-confident in the first bars after a switch. The confidence model is fitted on every bar; a
 * fit that weights the bars after a switch less moves probability from the one to the other. This
 * measures that trade, and two monotone recalibrations of the deployed probability fitted on the
 * fitted families only, on two disjoint sets of held-out markets (the report's seeds and the unit
 * test's seeds), so that a choice made on one can be checked on the other.
 *
 * Fitting data: the confidence model's own fitting markets (`CONFIDENCE_FIT_SEEDS` of the fitted
 * families, and of `WEAK_GAUSSIAN_FAMILY` the first 8, as deployed, or all 24). Fits are Newton's
 * method on the (weighted) mean log loss with the same L2 (1e-4) as `fitLogistic`, so the
 * unweighted fit reproduces the deployed weights up to the optimiser's tolerance.
 */
import {
  MARKET_FAMILIES,
  WEAK_GAUSSIAN_FAMILY,
  hasAccuracyTarget,
} from '../producers/regime-families';
import { applyIsotonic, fitIsotonic, fitLogisticNewton, sigmoid } from '../strategic/confidence-tradeoff';
import {
  CONFIDENCE_FIT_SEEDS,
  CONFIDENCE_ONLY_SEEDS,
  FIT_BARS,
  confidenceRows,
} from '../strategic/fit-models';
import { figures, scoreFamily, scoredForTargets, type ScoredBar } from '../strategic/regime-eval';
import { CONFIDENCE_INPUTS, confidenceInputs } from '../strategic/uncertainty';
import { ExitCode, type Command, type CommandContext } from './common';

/** The regime report's seeds (`REPORT_SEEDS` of src/cli/regime-report.ts) and bars per market. */
const REPORT_SEEDS = [5001, 5002, 5003, 5004, 5005, 5006];
const REPORT_BARS = 4000;
/** The unit test's seeds (test/unit/strategic/regime-families.test.ts) and bars per market. */
const UNIT_SEEDS = [7001, 7002, 7003];
const UNIT_BARS = 3000;

interface Scored {
  family: string;
  heldOut: boolean;
  target: boolean;
  rows: ScoredBar[];
}

function score(seeds: readonly number[], bars: number): Scored[] {
  return MARKET_FAMILIES.map((f) => ({
    family: f.name,
    heldOut: f.heldOut,
    target: hasAccuracyTarget(f),
    rows: scoreFamily(f, { seeds, bars, patterns: false }),
  }));
}

/** Rows with `pCorrect` replaced by `map(row)`. */
function remap(sets: readonly Scored[], map: (r: ScoredBar) => number): Scored[] {
  return sets.map((s) => ({ ...s, rows: s.rows.map((r) => ({ ...r, pCorrect: map(r) })) }));
}

function summary(sets: readonly Scored[]): {
  settled: number[];
  worst: number;
  worstAll: number;
  afterSwitch: number;
} {
  const held = sets.filter((s) => s.heldOut);
  const settled = held.map((s) => figures(scoredForTargets(s.rows)).ece);
  const all = held.map((s) => figures(s.rows).ece);
  const after = held
    .flatMap((s) => s.rows)
    .filter((r) => r.sinceSwitch < 12 && r.evidence.baselineSamples >= 4);
  return {
    settled,
    worst: Math.max(...settled),
    worstAll: Math.max(...all),
    afterSwitch: after.reduce((a, r) => a + r.pCorrect, 0) / after.length,
  };
}

function main(out: (line: string) => void): void {
  const t0 = Date.now();
  const fitted = MARKET_FAMILIES.filter((f) => !f.heldOut);
  const fitRows: ScoredBar[] = [];
  for (const f of fitted)
    fitRows.push(
      ...scoreFamily(f, { seeds: CONFIDENCE_FIT_SEEDS, bars: FIT_BARS, patterns: false }),
    );
  const weakRows = scoreFamily(WEAK_GAUSSIAN_FAMILY, {
    seeds: CONFIDENCE_FIT_SEEDS,
    bars: FIT_BARS,
    patterns: false,
  });
  const weakSeeds = (n: number): ScoredBar[] =>
    weakRows.filter((r) => r.seed < CONFIDENCE_FIT_SEEDS[0]! + n);
  const report = score(REPORT_SEEDS, REPORT_BARS);
  const unit = score(UNIT_SEEDS, UNIT_BARS);
  const heldNames = report.filter((s) => s.heldOut).map((s) => s.family);
  out(
    `# Confidence model: re-weighting and recalibration, settled-bar ECE of the held-out families`,
  );
  out(
    `held-out families: ${heldNames.join(', ')}; report seeds ${REPORT_SEEDS.join(', ')}, unit seeds ${UNIT_SEEDS.join(', ')}`,
  );
  out(
    '"after a switch": mean reported probability 0-11 bars after a switch (report seeds, held-out; calls there are right about 15 % of the time)',
  );
  out(
    'variant                                         | report: settled ECE per family        worst  all-bars worst  after a switch | unit: settled ECE per family          worst',
  );
  const line = (name: string, map: ((r: ScoredBar) => number) | null): void => {
    const a = summary(map ? remap(report, map) : report);
    const b = summary(map ? remap(unit, map) : unit);
    const f = (xs: number[]): string => xs.map((x) => x.toFixed(3)).join(' ');
    out(
      `${name.padEnd(47)} | ${f(a.settled)}  ${a.worst.toFixed(4)}  ${a.worstAll.toFixed(4)}          ${a.afterSwitch.toFixed(3)}          | ${f(b.settled)}  ${b.worst.toFixed(4)}`,
    );
  };
  line(`deployed (CONFIDENCE_ONLY_SEEDS ${CONFIDENCE_ONLY_SEEDS}, every bar weight 1)`, null);
  const x = new Float64Array(CONFIDENCE_INPUTS);
  const logitModel =
    (w: Float64Array) =>
    (r: ScoredBar): number => {
      confidenceInputs(r.evidence, x);
      let z = 0;
      for (let j = 0; j < CONFIDENCE_INPUTS; j++) z += w[j]! * x[j]!;
      return sigmoid(z);
    };
  for (const nWeak of [CONFIDENCE_ONLY_SEEDS, 24]) {
    const rows = [...fitRows, ...weakSeeds(nWeak)];
    const { xs, ys } = confidenceRows(rows);
    for (const unsettledWeight of [1, 0.7, 0.5, 0.35]) {
      const sw = rows.map((r) => (r.settled && !r.volatileStart ? 1 : unsettledWeight));
      const w = fitLogisticNewton(xs, ys, sw);
      line(`refit: ${nWeak} weak markets, unsettled bars × ${unsettledWeight}`, logitModel(w));
    }
  }
  // Monotone maps of the deployed probability, fitted on the fitting markets (8 weak, as deployed).
  const deployedFit = [...fitRows, ...weakSeeds(CONFIDENCE_ONLY_SEEDS)];
  const iso = fitIsotonic(
    deployedFit.map((r) => r.pCorrect),
    deployedFit.map((r) => (r.call === r.truth ? 1 : 0)),
  );
  line('isotonic map of the deployed probability', (r) => applyIsotonic(iso, r.pCorrect));
  const platt: Float64Array[] = [0, 1, 2, 3].map((c) => {
    const rows = deployedFit.filter((r) => r.call === c);
    const lg = (p: number): number =>
      Math.log(Math.min(1 - 1e-9, Math.max(1e-9, p)) / Math.max(1e-9, 1 - p));
    return fitLogisticNewton(
      rows.map((r) => Float64Array.from([1, lg(r.pCorrect)])),
      rows.map((r) => (r.call === r.truth ? 1 : 0)),
    );
  });
  out(
    `Platt per call (a + b·logit p; BULL, BEAR, SIDEWAYS, VOLATILE): ${platt.map((w) => `${w[0]!.toFixed(2)} + ${w[1]!.toFixed(2)}`).join('; ')}`,
  );
  line('Platt map per called regime', (r) => {
    const p = Math.min(1 - 1e-9, Math.max(1e-9, r.pCorrect));
    const w = platt[r.call]!;
    return sigmoid(w[0]! + w[1]! * Math.log(p / (1 - p)));
  });
  out(`(${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

const HELP = `Measures what re-weighting or recalibrating the confidence model does to the calibration targets,
on two disjoint sets of held-out markets; prints one table and changes nothing. Takes 2 to 5
minutes. Needs no broker. See docs/regime.md.`;

/** `pipeline confidence-tradeoff`. */
export const confidenceTradeoffCommand: Command = {
  help: HELP,
  offline: true,
  run(_parsed, ctx: CommandContext): Promise<number> {
    main((line) => void ctx.out.write(`${line}\n`));
    return Promise.resolve(ExitCode.Ok);
  },
};
