import type { Bar, Bar30m } from '../../schemas/bar.schema';
import { completesPeriod, periodCloseOf, periodOpenOf } from '../util/periods';

/** The resampler's state for one symbol: the 30m bar being built. Plain data. */
export interface ResampleState {
  periodTs: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  count: number;
}

/**
 * Turns 5m bars into 30m bars, one symbol at a time, as a pure function of the state.
 *
 * A 30m bar covers the six 5m bars whose open times lie in `[T, T + 30m)`, T a multiple of 30
 * minutes. It is emitted when its last 5m bar (open `T + 25m`) arrives. Gaps: when a bar of a later
 * period arrives while a period is still open, the open period is emitted as it is (`bars` < 6 tells
 * how many 5m bars it holds), so a 30m bar exists for every period in which at least one 5m bar was
 * accepted and for no other, and the same 5m bars always give the same 30m bars. A period with no
 * 5m bar at all gives no 30m bar. Callers pass bars in `ts` order (they dedupe and reject
 * out-of-order bars before this).
 */
export function resampleStep(
  state: ResampleState | null,
  bar: Bar,
): { state: ResampleState | null; emitted: Bar30m[] } {
  const periodTs = periodOpenOf(bar.ts);
  const emitted: Bar30m[] = [];
  let current = state;
  if (current !== null && current.periodTs !== periodTs) {
    emitted.push(toBar(bar.symbol, current));
    current = null;
  }
  if (current === null) {
    current = {
      periodTs,
      open: bar.open,
      high: bar.high,
      low: bar.low,
      close: bar.close,
      volume: bar.volume,
      count: 1,
    };
  } else {
    current = {
      periodTs,
      open: current.open,
      high: Math.max(current.high, bar.high),
      low: Math.min(current.low, bar.low),
      close: bar.close,
      volume: current.volume + bar.volume,
      count: current.count + 1,
    };
  }
  if (completesPeriod(bar.ts)) {
    emitted.push(toBar(bar.symbol, current));
    current = null;
  }
  return { state: current, emitted };
}

function toBar(symbol: string, s: ResampleState): Bar30m {
  return {
    symbol,
    timeframe: '30m',
    ts: s.periodTs,
    open: s.open,
    high: s.high,
    low: s.low,
    close: s.close,
    volume: s.volume,
    bars: s.count,
  };
}

/**
 * The 30m bars that `ahead` (the symbol's next bars in processing order, after the bar that left
 * `state`, whose open time is `lastTs`) will complete, up to those closing at `untilClose`: exactly
 * what {@link resampleStep} emits when the same bars come one by one, as long as each of them is
 * accepted. Stops early, conservatively, at a bar that is not after the previous one (a duplicate
 * or an out-of-order bar, which the worker would not accept) and at the first bar at or past
 * `untilClose` (a gap's period emitted by a later bar is then left to the worker itself).
 */
export function resampleAhead(
  state: ResampleState | null,
  lastTs: number,
  ahead: Iterable<Bar>,
  untilClose: number,
): Bar30m[] {
  const out: Bar30m[] = [];
  let s = state;
  let last = lastTs;
  for (const bar of ahead) {
    if (bar.ts <= last || bar.ts >= untilClose) break;
    const r = resampleStep(s, bar);
    s = r.state;
    last = bar.ts;
    for (const e of r.emitted) {
      if (periodCloseOf(e.ts) > untilClose) return out;
      out.push(e);
    }
  }
  return out;
}
