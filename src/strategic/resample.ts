import { TIMEFRAME_MS, type Bar } from '../../schemas/bar.schema';
import { periodOpenOf } from '../util/periods';

/**
 * Aggregates 5m bars into 30m bars, for tests, benchmarks and offline fitting (the live resampler
 * is a separate worker). A 30m bar is built only from a complete, aligned group of six 5m bars of one
 * symbol whose open times are `T, T+5m, …, T+25m` with `T` a multiple of 30 minutes: open of the
 * first, highest high, lowest low, close of the last, summed volume, `ts = T`. Incomplete groups
 * (gaps, or the partial first and last group) are skipped. The input must be in `ts` order.
 */
export function resampleTo30m(bars5m: readonly Bar[]): Bar[] {
  const step = TIMEFRAME_MS['5m'];
  const out: Bar[] = [];
  let i = 0;
  while (i < bars5m.length) {
    const first = bars5m[i] as Bar;
    const groupTs = periodOpenOf(first.ts);
    if (first.ts !== groupTs || i + 5 >= bars5m.length) {
      i++;
      continue;
    }
    let complete = true;
    let high = first.high;
    let low = first.low;
    let volume = first.volume;
    for (let j = 1; j < 6; j++) {
      const b = bars5m[i + j] as Bar;
      if (b.ts !== groupTs + j * step || b.symbol !== first.symbol) {
        complete = false;
        break;
      }
      if (b.high > high) high = b.high;
      if (b.low < low) low = b.low;
      volume += b.volume;
    }
    if (!complete) {
      i++;
      continue;
    }
    const last = bars5m[i + 5] as Bar;
    out.push({
      symbol: first.symbol,
      timeframe: '30m',
      ts: groupTs,
      open: first.open,
      high,
      low,
      close: last.close,
      volume,
    });
    i += 6;
  }
  return out;
}
