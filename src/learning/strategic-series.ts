import { TIMEFRAME_MS, type Bar } from '../../schemas/bar.schema';
import { resampleTo30m, StrategicAnalyzer, type StrategicAnalyzerOptions } from '../strategic';
import { periodCloseOf } from '../util/periods';
import type { StrategicInput } from './features';
import type { EnvBar } from './trading-env';

/**
 * The strategic view of a 5m series, as the live tactical worker sees it: the series is resampled
 * to 30m bars (complete, aligned groups of six only, `resampleTo30m`), the public
 * {@link StrategicAnalyzer} runs over them in order, and each 5m bar gets the context of the latest
 * 30m bar that closed at or before the 5m bar's own close (`T30 + 30m <= t5 + 5m`). So the 5m bar
 * stamped 17:25 (closing 17:30) sees the 30m bar stamped 17:00, exactly the one the live context
 * buffer waits for; the bar stamped 17:20 sees only the 30m bar stamped 16:30. No look-ahead: a
 * 30m bar's context is never given to a 5m bar that closed before it.
 *
 * Null until the analyzer is warm (about 49 30m bars, ~25 hours of 5m bars) and across a gap in the
 * 5m series that left no complete 30m bar yet. One analyzer (with its own pattern store) per call
 * unless `analyzer` is given; pass one analyzer for several symbols to share the pattern memory as
 * the live strategic worker does, calling symbols in time order if you want the live outputs.
 */
export function strategicInputs(
  symbol: string,
  bars5m: readonly EnvBar[],
  analyzer: StrategicAnalyzer = new StrategicAnalyzer(),
): (StrategicInput | null)[] {
  const step5 = TIMEFRAME_MS['5m'];
  const asBars: Bar[] = bars5m.map((b) => ({ symbol, timeframe: '5m', ts: b.ts, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume }));
  const bars30 = resampleTo30m(asBars);
  const contexts: { closeTs: number; input: StrategicInput | null }[] = bars30.map((b) => {
    const out = analyzer.onBar(b);
    const input: StrategicInput | null =
      out.regime_probabilities === null
        ? null
        : {
            regime_probabilities: out.regime_probabilities,
            uncertainty: out.uncertainty,
            confidence: out.confidence,
            similar_patterns: out.similar_patterns,
          };
    return { closeTs: periodCloseOf(b.ts), input };
  });
  const result: (StrategicInput | null)[] = [];
  let j = -1;
  for (const bar of bars5m) {
    const close = bar.ts + step5;
    while (j + 1 < contexts.length && (contexts[j + 1] as { closeTs: number }).closeTs <= close) j++;
    result.push(j < 0 ? null : (contexts[j] as { input: StrategicInput | null }).input);
  }
  return result;
}

/** The analyzer options used for offline training and evaluation (the live defaults). */
export type StrategicSeriesOptions = StrategicAnalyzerOptions;
