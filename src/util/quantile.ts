/**
 * The one quantile definition of the project: linear interpolation between the closest ranks
 * (Hyndman & Fan type 7; numpy's and R's default). For `n` values sorted ascending the q-quantile
 * sits at 0-based position `h = q·(n−1)`: `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`. So q = 0 is the
 * minimum, q = 1 the maximum, q = 0.5 the usual median (the mean of the two middle values when n
 * is even), and one value is every quantile of itself.
 *
 * Rules: no value gives NaN (callers that print show it as absent); `q` outside [0, 1] or NaN is a
 * programming error and throws. NaN has no place in an order, so {@link sortedFinite} drops it
 * (and ±Infinity) before sorting; {@link quantile} itself expects sorted input and does not check it.
 *
 * Binned data (a histogram of counts, no values) cannot be interpolated between values; for it
 * {@link binOfQuantile} names the bin holding the value at rank ⌊q·(n−1)⌋, the lower of the two
 * values the formula above interpolates, so the answer is exact to the bin width.
 */

function checkQ(q: number): void {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be within [0, 1], got ${q}`);
}

/** The q-quantile (0..1) of values sorted ascending; NaN when there are none. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  checkQ(q);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = q * (n - 1);
  const lo = Math.floor(h);
  const x = sorted[lo] as number;
  return lo + 1 < n ? x + (h - lo) * ((sorted[lo + 1] as number) - x) : x;
}

/** The finite values of `values`, sorted ascending, in a new array (NaN and ±Infinity dropped). */
export function sortedFinite(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).filter(Number.isFinite).sort();
}

/** The median of `values` in any order (non-finite values dropped); NaN when none is left. */
export function median(values: ArrayLike<number>): number {
  return quantile(sortedFinite(values), 0.5);
}

/**
 * The index of the bin of `counts` (observations per bin, bins in ascending order of value) that
 * holds the q-quantile's lower rank ⌊q·(n−1)⌋, n the total count; -1 when there is no observation.
 */
export function binOfQuantile(counts: ArrayLike<number>, q: number): number {
  checkQ(q);
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i] as number;
  if (!(total > 0)) return -1;
  const rank = Math.floor(q * (total - 1));
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i] as number;
    if (seen > rank) return i;
  }
  return counts.length - 1;
}
