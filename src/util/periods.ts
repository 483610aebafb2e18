import { TIMEFRAME_MS } from '../../schemas/bar.schema';

/**
 * The 30-minute period rules, in one place (pure; a layout test keeps 30m period arithmetic out of
 * every other file). A period is `[T, T + 30m)` with T a multiple of 30 minutes since the epoch
 * (UTC); it holds the six 5m bars opening at `T, T + 5m, …, T + 25m`, and its 30m bar has `ts = T`
 * and closes at `T + 30m`. Everything here is a function of bar times alone, never of arrival,
 * which is why the same bars always give the same 30m bars, feedback windows and contexts.
 *
 * Used by the resampler, the six-bar feedback, the context buffer, the tactical look-ahead, the
 * strategic flow, the offline series and evaluations, and (through this module) the gateway's
 * process endpoints. It lives in src/util so that the compute folders may use it too.
 */

/** Length of one period (and of one 30m bar), in ms. */
export const PERIOD_MS: number = TIMEFRAME_MS['30m'];

const BAR_5M_MS: number = TIMEFRAME_MS['5m'];

/** Open time of the period that contains `ts` (the `ts` of its 30m bar). */
export function periodOpenOf(ts: number): number {
  return Math.floor(ts / PERIOD_MS) * PERIOD_MS;
}

/** Close time of the period that contains `ts` (a 5m bar's open time, or a 30m bar's `ts`). */
export function periodCloseOf(ts: number): number {
  return periodOpenOf(ts) + PERIOD_MS;
}

/** True when the 5m bar opening at `ts` is the last of its period: it completes the 30m bar. */
export function completesPeriod(ts5m: number): boolean {
  return ts5m + BAR_5M_MS === periodCloseOf(ts5m);
}

/** The time `n` periods after `ts` (before it for a negative `n`). */
export function periodsAfter(ts: number, n: number): number {
  return ts + n * PERIOD_MS;
}

/** How many whole periods lie between two period-aligned times (rounded; negative when `to` is earlier). */
export function periodsBetween(fromTs: number, toTs: number): number {
  return Math.round((toTs - fromTs) / PERIOD_MS);
}

/**
 * Which context the 5m bar opening at `ts` needs: the one of the latest period with data that
 * closes at or before the bar's close, as the close time of that period (null: no earlier period
 * with data yet). `previousTs` is the symbol's previous accepted 5m bar and `previousRequired` what
 * it needed. The bar that completes a period needs that period's own context; after a gap, the
 * period of the previous bar (when it closed by now), else what the previous bar needed.
 */
export function requiredContextClose(ts: number, previousTs: number | null, previousRequired: number | null): number | null {
  const barClose = ts + BAR_5M_MS;
  if (completesPeriod(ts)) return barClose;
  if (previousTs === null) return null;
  const previousPeriodClose = periodCloseOf(previousTs);
  if (previousPeriodClose <= barClose && previousPeriodClose !== periodCloseOf(ts)) return previousPeriodClose;
  return previousRequired;
}

/**
 * The stale-context rule: when the context a bar needs (closing at `requiredCloseTs`) did not come
 * in time, or never will (a gap), the bar is decided with the newest context that closes before it,
 * and the result says `stale`. `byClose` maps close times to contexts; null when none is older.
 */
export function staleContext<T>(byClose: Iterable<readonly [number, T]>, requiredCloseTs: number): T | null {
  let best: T | null = null;
  let bestTs = -Infinity;
  for (const [closeTs, item] of byClose) {
    if (closeTs < requiredCloseTs && closeTs > bestTs) {
      best = item;
      bestTs = closeTs;
    }
  }
  return best;
}

/**
 * What a bar that needs the context closing at `requiredCloseTs` gets once no more waiting
 * happens: that context when it is there, else the {@link staleContext} marked stale (null
 * required: no context, not stale). The context buffer answers this after its wait; an in-memory
 * run (the gateway's process endpoints) answers it at once.
 */
export function settledContext<T>(byClose: ReadonlyMap<number, T>, requiredCloseTs: number | null): { item: T | null; stale: boolean } {
  if (requiredCloseTs === null) return { item: null, stale: false };
  const ready = byClose.get(requiredCloseTs);
  if (ready !== undefined) return { item: ready, stale: false };
  return { item: staleContext(byClose, requiredCloseTs), stale: true };
}
