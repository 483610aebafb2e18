import type { IntegratedResult } from '../../../schemas/integrated-result.schema';
import { SeededRandom } from '../../../src/util/random';

const BAR = 300_000;
export const T0 = Date.UTC(2025, 3, 3, 17, 5);

/** A v1 result with only the fields a test cares about set; the rest plausible and fixed. */
export function result(
  symbol: string,
  i: number,
  close: number,
  extra: Partial<IntegratedResult> = {},
): IntegratedResult {
  return {
    v: 1,
    symbol,
    ts: T0 + i * BAR,
    close_ts: T0 + (i + 1) * BAR,
    close,
    indicators: {
      sma20: null,
      ema12: null,
      ema26: null,
      rsi14: null,
      macd: null,
      macd_signal: null,
      macd_hist: null,
      bb_upper: null,
      bb_middle: null,
      bb_lower: null,
      atr14: null,
    },
    strategic: {
      bar_close_ts: null,
      regime: null,
      regime_probabilities: null,
      confidence: null,
      uncertainty: null,
      similar_patterns: null,
      stale: false,
    },
    actions: { tactical: 'FLAT', risk: 0, execution: 'WAIT' },
    target_position: 0,
    combined_confidence: 0.5,
    model_version: 'initial-1',
    degraded: [],
    latency_ms: 1,
    ...extra,
  };
}

/**
 * A seeded random market of `n` results per symbol with regimes, positions, stale flags and
 * degraded stages, so that every chart of the report has something to draw.
 */
export function randomResults(
  symbols: readonly string[],
  n: number,
  seed: number,
): IntegratedResult[] {
  const rng = new SeededRandom(seed);
  const regimes = ['BULL', 'BEAR', 'SIDEWAYS', 'VOLATILE'] as const;
  const out: IntegratedResult[] = [];
  for (const symbol of symbols) {
    let price = 100 + 100 * rng.next();
    let regime: (typeof regimes)[number] = 'SIDEWAYS';
    for (let i = 0; i < n; i++) {
      price *= Math.exp(0.002 * rng.normal());
      if (i % 6 === 0 && rng.next() < 0.2)
        regime = regimes[rng.int(0, 3)] as (typeof regimes)[number];
      const p = 0.25 + 0.7 * rng.next();
      const rest = (1 - p) / 3;
      const probs = { BULL: rest, BEAR: rest, SIDEWAYS: rest, VOLATILE: rest, [regime]: p };
      const pos = Math.round((rng.next() * 2 - 1) * 4) / 4;
      const warm = i < 50;
      out.push(
        result(symbol, i, Number(price.toFixed(4)), {
          strategic: {
            bar_close_ts: warm ? null : T0 + Math.floor((i + 1) / 6) * 6 * BAR,
            regime: warm ? null : regime,
            regime_probabilities: warm ? null : probs,
            confidence: warm ? null : p > 0.7 ? 'HIGH' : p > 0.5 ? 'MEDIUM' : 'LOW',
            uncertainty: warm ? null : 1 - p,
            similar_patterns: null,
            stale: rng.next() < 0.01,
          },
          actions: {
            tactical: pos > 0 ? 'LONG' : pos < 0 ? 'SHORT' : 'FLAT',
            risk: Math.abs(pos),
            execution: 'MARKET',
          },
          target_position: pos,
          degraded: rng.next() < 0.02 ? ['context_buffer'] : [],
          latency_ms: Math.round(rng.next() ** 3 * 5000) / 100,
        }),
      );
    }
  }
  return out;
}
