import type { Bar } from '../../schemas/bar.schema';
import type { RegimeName } from '../../schemas/strategic-context.schema';
import { generateSyntheticMarket, type SyntheticMarketOptions } from '../producers/synthetic-market';
import { periodsAfter } from '../util/periods';
import { WINDOW_BARS } from './feature-matrix';
import { resampleTo30m } from './resample';

/** A synthetic market resampled to 30m bars, with the true regime of every 30m bar. */
export interface Labelled30mMarket {
  bars: Bar[];
  labels: RegimeName[];
  /**
   * `pure[i]` is true when bars `i−47 … i` (the whole 48-bar window, i.e. 288 five-minute bars) are
   * consecutive 30m bars that all carry the same regime label: the bars regime accuracy is scored on.
   */
  pure: boolean[];
}

/**
 * Offline evaluation helper (fitting, tests, benchmarks; never used by the live path): generates a
 * seeded market of 5m bars, resamples it to 30m and labels each 30m bar with the regime of its six
 * 5m bars (the generator's segments are aligned to 30m bars, so the six always agree).
 */
export function labelled30mMarket(options: SyntheticMarketOptions): Labelled30mMarket {
  const market = generateSyntheticMarket(options);
  const labelAt = new Map<number, RegimeName>();
  market.bars.forEach((b, i) => labelAt.set(b.ts, market.labels[i] as RegimeName));
  const bars = resampleTo30m(market.bars);
  const labels = bars.map((b) => labelAt.get(b.ts) as RegimeName);
  const pure: boolean[] = [];
  let run = 0;
  for (let i = 0; i < bars.length; i++) {
    const contiguous = i > 0 && periodsAfter((bars[i - 1] as Bar).ts, 1) === (bars[i] as Bar).ts;
    run = i > 0 && contiguous && labels[i] === labels[i - 1] ? run + 1 : 1;
    pure.push(run >= WINDOW_BARS);
  }
  return { bars, labels, pure };
}
