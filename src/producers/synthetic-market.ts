import { TIMEFRAME_MS, type Bar } from '../../schemas/bar.schema';
import { SeededRandom } from '../util/random';

/** The four market regimes of the wire contract. */
export const REGIMES = ['BULL', 'BEAR', 'SIDEWAYS', 'VOLATILE'] as const;
export type Regime = (typeof REGIMES)[number];

/** Options of {@link generateSyntheticMarket}. */
export interface SyntheticMarketOptions {
  /** Seed of the generator: the same options and seed give the same bars, bit for bit. */
  seed: number;
  /** Symbol written into every bar. @defaultValue `'SYN'` */
  symbol?: string;
  /** Number of 5m bars to generate. */
  bars: number;
  /** Open time of the first bar, a multiple of 5 minutes. @defaultValue 2024-01-01T00:00Z */
  startTs?: number;
  /** First open price. @defaultValue 100 */
  startPrice?: number;
  /** Base standard deviation of the 5m log return (the SIDEWAYS, BULL and BEAR volatility). @defaultValue 0.002 */
  baseVolatility?: number;
  /**
   * Drift of BULL (+) and BEAR (−) segments per 5m bar, in units of `baseVolatility`.
   * A number, or a `[min, max]` range drawn uniformly per segment. @defaultValue `[0.4, 0.8]`
   */
  driftSigma?: number | readonly [number, number];
  /**
   * Volatility of VOLATILE segments as a multiple of `baseVolatility` (their drift is 0).
   * A number, or a `[min, max]` range drawn per segment. @defaultValue `[2.5, 4]`
   */
  volatilityRatio?: number | readonly [number, number];
  /** Segment length in 5m bars, `[min, max]`, drawn per segment; rounded to whole 30m bars. @defaultValue `[288, 864]` */
  segmentBars?: readonly [number, number];
  /** Regimes to draw segments from (never the same twice in a row). @defaultValue all four */
  regimes?: readonly Regime[];
  /** Fixed sequence of regimes, used instead of random draws when given (cycled). */
  regimeSequence?: readonly Regime[];
  /** Probability that a bar is missing (a gap in the feed). @defaultValue 0 */
  gapProbability?: number;
  /** Mean volume per bar. @defaultValue 100 */
  meanVolume?: number;
}

/** A generated market: the bars and, for every bar, the regime that generated it. */
export interface SyntheticMarket {
  bars: Bar[];
  /** `labels[i]` is the regime of `bars[i]`. */
  labels: Regime[];
  /** Segments in order: the regime, the first and last bar index (inclusive, before gaps) and parameters. */
  segments: { regime: Regime; startTs: number; endTs: number; drift: number; volatility: number }[];
}

const DEFAULT_START_TS = Date.UTC(2024, 0, 1);

function draw(rng: SeededRandom, value: number | readonly [number, number]): number {
  return typeof value === 'number' ? value : rng.uniform(value[0], value[1]);
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/**
 * A seeded regime-switching market of 5m bars. Each segment is one regime:
 * - BULL: log-return drift `+driftSigma × baseVolatility` per bar, volatility `baseVolatility`;
 * - BEAR: the same drift negated;
 * - SIDEWAYS: no drift, volatility `baseVolatility`;
 * - VOLATILE: no drift, volatility `volatilityRatio × baseVolatility`.
 * Closes follow `close = open × exp(drift + volatility × N(0,1))`, each bar opens at the previous
 * close, highs and lows extend beyond the body by a half-normal wick of the same volatility, and
 * volume is log-normal around `meanVolume` (×2 in VOLATILE segments). Prices are rounded to 1e-6.
 * Segments start on 30m boundaries and last whole 30m bars, so every 30m bar lies in one regime.
 */
export function generateSyntheticMarket(options: SyntheticMarketOptions): SyntheticMarket {
  const rng = new SeededRandom(options.seed);
  const symbol = options.symbol ?? 'SYN';
  const step = TIMEFRAME_MS['5m'];
  const startTs = options.startTs ?? DEFAULT_START_TS;
  if (startTs % step !== 0) throw new RangeError('startTs must be a multiple of 5 minutes');
  const sigma = options.baseVolatility ?? 0.002;
  const driftSigma = options.driftSigma ?? [0.4, 0.8];
  const volRatio = options.volatilityRatio ?? [2.5, 4];
  const [segMin, segMax] = options.segmentBars ?? [288, 864];
  const regimes = options.regimes ?? REGIMES;
  const gapP = options.gapProbability ?? 0;
  const meanVolume = options.meanVolume ?? 100;

  const bars: Bar[] = [];
  const labels: Regime[] = [];
  const segments: SyntheticMarket['segments'] = [];
  let price = options.startPrice ?? 100;
  let index = 0;
  let previous: Regime | null = null;
  let seq = 0;
  // The first segment is cut short so that later segments begin on 30m boundaries.
  const firstOffset = (6 - ((startTs / step) % 6)) % 6;

  while (index < options.bars) {
    let regime: Regime;
    if (options.regimeSequence && options.regimeSequence.length > 0) {
      regime = options.regimeSequence[seq % options.regimeSequence.length] as Regime;
    } else {
      const choices = regimes.filter((r) => r !== previous);
      regime = rng.pick(choices.length > 0 ? choices : regimes);
    }
    seq++;
    previous = regime;
    let length = Math.max(6, Math.round(rng.int(segMin, segMax) / 6) * 6);
    if (segments.length === 0) length += firstOffset;
    const drift =
      regime === 'BULL' ? draw(rng, driftSigma) * sigma : regime === 'BEAR' ? -draw(rng, driftSigma) * sigma : 0;
    const volatility = regime === 'VOLATILE' ? draw(rng, volRatio) * sigma : sigma;
    const segStart = startTs + index * step;
    for (let i = 0; i < length && index < options.bars; i++, index++) {
      const open = price;
      const close = open * Math.exp(drift + volatility * rng.normal());
      const high = Math.max(open, close) * Math.exp(Math.abs(rng.normal()) * volatility * 0.5);
      const low = Math.min(open, close) * Math.exp(-Math.abs(rng.normal()) * volatility * 0.5);
      const volume = meanVolume * (regime === 'VOLATILE' ? 2 : 1) * Math.exp(0.5 * rng.normal() - 0.125);
      price = close;
      if (gapP > 0 && rng.next() < gapP) continue;
      bars.push({
        symbol,
        timeframe: '5m',
        ts: startTs + index * step,
        open: round6(open),
        high: round6(high),
        low: round6(low),
        close: round6(close),
        volume: round6(volume),
      });
      labels.push(regime);
    }
    segments.push({ regime, startTs: segStart, endTs: startTs + (index - 1) * step, drift, volatility });
  }
  return { bars, labels, segments };
}
