import { FEATURE_COUNT, WINDOW_BARS, type FeatureMatrix } from './feature-matrix';

/** Length of a pattern vector. */
export const EMBEDDING_DIM = 32;

const CLIP = 6;
const LIQUIDITY = 11;
const RETURN_SPANS = [3, 6, 12, 24, 48] as const;

/**
 * Centre and scale of each feature column for the embedding; `σ` marks scales in units of the
 * symbol's baseline 30m return std, which makes vectors of calm and wild symbols comparable.
 * Columns: price_change, volume_ratio, volatility, momentum, rsi, macd_hist, bollinger_position,
 * market_sentiment, correlation_strength, regime_indicator, risk_score, liquidity_index,
 * structural_break.
 */
const CENTRE = [0, 1, 1, 0, 0.5, 0, 0.5, 0, 0, 0.3, 0, 0, 0] as const; // volatility centre is 1 σ
const SCALE = [1, 0.5, 1, Math.sqrt(10), 0.15, 0.5, 0.5, 0.3, 0.5, 0.2, 3, 0.5, 1.5] as const;
const IN_SIGMA = [true, false, true, true, false, true, false, false, false, false, true, false, false] as const;

/**
 * Embeds the 48×13 window of a {@link FeatureMatrix} into {@link EMBEDDING_DIM} numbers, written to
 * `out`. With `σ = √baselineVariance` (the symbol's calm 30m return std) each feature `f` is
 * normalised as `z_f(x) = (x − c_f) / s_f` (centres and scales above, return-like scales multiplied
 * by σ), then:
 * - `0…12`: the window mean of `z_f` (for `price_change` times √48, a drift t-statistic); for
 *   `liquidity_index`, whose level is specific to the symbol, the mean of the last 12 rows minus the
 *   window mean instead;
 * - `13…25`: the last row minus the window mean, `z_f(last) − mean z_f`;
 * - `26…30`: the log return over the last 3, 6, 12, 24, 48 bars divided by `σ√h`;
 * - `31`: `ln(v48 / σ²)`, the window's variance ratio to the baseline.
 * Every value is clipped to ±6. Needs a full window (48 rows); `scratch` must hold 48 × 13 values.
 */
export function embedWindow(
  fm: FeatureMatrix,
  baselineVariance: number,
  out: Float32Array,
  scratch: Float64Array,
): void {
  const rows = fm.copyWindow(scratch);
  if (rows !== WINDOW_BARS) throw new RangeError(`embedding needs a full window of ${WINDOW_BARS} rows, got ${rows}`);
  const sigma = baselineVariance > 0 ? Math.sqrt(baselineVariance) : 1;
  for (let f = 0; f < FEATURE_COUNT; f++) {
    const scale = (SCALE[f] as number) * (IN_SIGMA[f] ? sigma : 1);
    const centre = f === 2 ? sigma : (CENTRE[f] as number);
    let sum = 0;
    let recent = 0;
    for (let r = 0; r < WINDOW_BARS; r++) {
      const x = scratch[r * FEATURE_COUNT + f] as number;
      sum += x;
      if (r >= WINDOW_BARS - 12) recent += x;
    }
    const mean = sum / WINDOW_BARS;
    const last = scratch[(WINDOW_BARS - 1) * FEATURE_COUNT + f] as number;
    let level: number;
    if (f === LIQUIDITY) level = (recent / 12 - mean) / scale;
    else if (f === 0) level = (mean / scale) * Math.sqrt(WINDOW_BARS);
    else level = (mean - centre) / scale;
    out[f] = clip(level);
    out[FEATURE_COUNT + f] = clip((last - mean) / scale);
  }
  let j = 2 * FEATURE_COUNT;
  for (const h of RETURN_SPANS) out[j++] = clip(fm.logReturnOver(h) / (sigma * Math.sqrt(h)));
  const v48 = (fm.returnVariance(48) * 48) / 47;
  out[j] = clip(v48 > 0 ? Math.log(v48 / (sigma * sigma)) : -CLIP);
}

function clip(x: number): number {
  return x > CLIP ? CLIP : x < -CLIP ? -CLIP : Number.isNaN(x) ? 0 : x;
}
