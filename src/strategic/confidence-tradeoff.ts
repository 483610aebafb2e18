/**
 * Fits used to measure re-weighting and recalibration of the confidence model (issue 10): logistic
 * regression by Newton's method with sample weights, and an isotonic map. Pure: the measurement that
 * uses them is `pipeline confidence-tradeoff` (src/cli/confidence-tradeoff.ts).
 */
/** The logistic function σ(z) = 1 / (1 + e^−z). */
export const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

/**
 * Logistic regression by Newton's method: minimises `Σ wᵢ·logloss(yᵢ, σ(β·xᵢ)) / Σ wᵢ + l2·|β|²/2`.
 * `sampleWeights` defaults to 1 for every row. Deterministic.
 * @throws RangeError when the inputs are empty or of unequal lengths.
 */
export function fitLogisticNewton(
  xs: readonly Float64Array[],
  ys: readonly number[],
  sampleWeights?: readonly number[],
  l2 = 1e-4,
  iterations = 50,
): Float64Array {
  if (
    xs.length === 0 ||
    xs.length !== ys.length ||
    (sampleWeights && sampleWeights.length !== xs.length)
  )
    throw new RangeError(
      'fitLogisticNewton needs as many labels (and weights) as rows, and at least one row',
    );
  const d = xs[0]!.length;
  const beta = new Float64Array(d);
  const g = new Float64Array(d);
  const h = new Float64Array(d * d);
  let total = 0;
  for (let i = 0; i < xs.length; i++) total += sampleWeights ? sampleWeights[i]! : 1;
  for (let it = 0; it < iterations; it++) {
    g.fill(0);
    h.fill(0);
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      const w = (sampleWeights ? sampleWeights[i]! : 1) / total;
      let z = 0;
      for (let j = 0; j < d; j++) z += beta[j]! * x[j]!;
      const p = sigmoid(z);
      const r = (p - ys[i]!) * w;
      const c = p * (1 - p) * w;
      for (let j = 0; j < d; j++) {
        g[j] = g[j]! + r * x[j]!;
        const cx = c * x[j]!;
        for (let k = j; k < d; k++) h[j * d + k] = h[j * d + k]! + cx * x[k]!;
      }
    }
    for (let j = 0; j < d; j++) {
      g[j] = g[j]! + l2 * beta[j]!;
      h[j * d + j] = h[j * d + j]! + l2;
      for (let k = 0; k < j; k++) h[j * d + k] = h[k * d + j]!;
    }
    const step = solve(h, g, d);
    let biggest = 0;
    for (let j = 0; j < d; j++) {
      beta[j] = beta[j]! - step[j]!;
      biggest = Math.max(biggest, Math.abs(step[j]!));
    }
    if (biggest < 1e-10) break;
  }
  return beta;
}

/** Solves `a·x = b` (a d×d, row-major, symmetric positive definite) by Gaussian elimination with pivoting. */
function solve(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const m = Float64Array.from(a);
  const x = Float64Array.from(b);
  for (let c = 0; c < d; c++) {
    let piv = c;
    for (let r = c + 1; r < d; r++)
      if (Math.abs(m[r * d + c]!) > Math.abs(m[piv * d + c]!)) piv = r;
    if (piv !== c) {
      for (let k = 0; k < d; k++) {
        const t = m[c * d + k]!;
        m[c * d + k] = m[piv * d + k]!;
        m[piv * d + k] = t;
      }
      const t = x[c]!;
      x[c] = x[piv]!;
      x[piv] = t;
    }
    const diag = m[c * d + c]!;
    for (let r = c + 1; r < d; r++) {
      const f = m[r * d + c]! / diag;
      if (f === 0) continue;
      for (let k = c; k < d; k++) m[r * d + k] = m[r * d + k]! - f * m[c * d + k]!;
      x[r] = x[r]! - f * x[c]!;
    }
  }
  for (let c = d - 1; c >= 0; c--) {
    let s = x[c]!;
    for (let k = c + 1; k < d; k++) s -= m[c * d + k]! * x[k]!;
    x[c] = s / m[c * d + c]!;
  }
  return x;
}

/**
 * Isotonic regression (pool adjacent violators) of `ys` on `ps`: returns the step function as
 * sorted upper knots and their values; {@link applyIsotonic} maps a probability through it.
 */
export function fitIsotonic(
  ps: readonly number[],
  ys: readonly number[],
): { knots: number[]; values: number[] } {
  const order = ps.map((_, i) => i).sort((a, b) => ps[a]! - ps[b]! || a - b);
  const sums: number[] = [];
  const counts: number[] = [];
  const knots: number[] = [];
  for (const i of order) {
    sums.push(ys[i]!);
    counts.push(1);
    knots.push(ps[i]!);
    while (
      sums.length > 1 &&
      sums[sums.length - 2]! / counts[counts.length - 2]! >
        sums[sums.length - 1]! / counts[counts.length - 1]!
    ) {
      const s = sums.pop()!;
      const c = counts.pop()!;
      const k = knots.pop()!;
      sums[sums.length - 1] = sums[sums.length - 1]! + s;
      counts[counts.length - 1] = counts[counts.length - 1]! + c;
      knots[knots.length - 1] = k;
    }
  }
  return { knots, values: sums.map((s, i) => s / counts[i]!) };
}

/** The isotonic map at `p`: the value of the first block whose upper knot is at least `p`. */
export function applyIsotonic(map: { knots: number[]; values: number[] }, p: number): number {
  let lo = 0;
  let hi = map.knots.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (map.knots[mid]! < p) lo = mid + 1;
    else hi = mid;
  }
  return map.values[lo]!;
}
