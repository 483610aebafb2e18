import type { Bar, Bar30m } from '../../schemas/bar.schema';
import { completesPeriod, periodCloseOf, periodOpenOf, periodsAfter } from '../util/periods';

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

/** Options of {@link ResampleFlow}. */
export interface ResampleFlowOptions {
  /**
   * Periods a symbol's 30m bars may be sent ahead of the bar that completes them, when the bars
   * are already in hand (see the tactical consumer's option of the same name). @defaultValue 0
   */
  lookaheadPeriods?: number;
  /** Upgrades: the 30m bar a separate resampler had open for a symbol. @defaultValue none */
  legacyResample?: (symbol: string) => Promise<ResampleState | null>;
}

/** A 30m bar a 5m bar completed, and what became of its look-ahead send. */
export interface Completed30m {
  bar: Bar30m;
  /** The confirm of the send of this same bar ahead of time, when it was sent ahead. */
  sentAhead?: Promise<void>;
  /** True when a different bar was sent ahead for this period (a bar in between was not accepted). */
  differsFromSentAhead?: boolean;
}

/** What a 5m bar did to its symbol's 30m bars: the one left open and those it completed. */
export interface Resampled {
  state: ResampleState | null;
  completed: Completed30m[];
}

/** A symbol's bars delivered for the first time and not yet processed, in lane order. */
interface BarsInHand {
  bars: Bar[];
  head: number;
}

/** A 30m bar sent ahead of the bar that completes it. */
interface SentAhead {
  json: string;
  confirm: Promise<void>;
}

/**
 * The tactical worker's resampling, per worker: each 5m bar advances its symbol's open 30m bar
 * ({@link resampleStep}), and, with look-ahead on, the bars already delivered but not yet processed
 * tell which 30m bars the lane will build next, so those can be sent to the strategic side early
 * ({@link resampleAhead}): exactly the bars the lane builds, each once. The consumer sends what this
 * says and reports each send's confirm back ({@link recordSentAhead}); nothing here does I/O.
 */
export class ResampleFlow {
  private readonly lookaheadPeriods: number;
  private inHand = new Map<string, BarsInHand>();
  private sent = new Map<string, Map<number, SentAhead>>();
  /** Per symbol: the latest close time up to which 30m bars were looked ahead for. */
  private aheadUntil = new Map<string, number>();

  constructor(private readonly options: ResampleFlowOptions = {}) {
    this.lookaheadPeriods = options.lookaheadPeriods ?? 0;
  }

  /**
   * A bar was delivered. First deliveries are remembered per symbol until processed: the lane then
   * knows the bars that follow the one it is processing. Redeliveries are not (after a crash a bar
   * may yet be dead-lettered as poison, which would change the 30m bar it belongs to).
   */
  delivered(bar: Bar, redelivered: boolean): void {
    if (this.lookaheadPeriods === 0 || redelivered) return;
    let q = this.inHand.get(bar.symbol);
    if (q === undefined) {
      q = { bars: [], head: 0 };
      this.inHand.set(bar.symbol, q);
    }
    q.bars.push(bar);
  }

  /** Forgets the bars in hand and what was sent ahead (the deliveries are gone). */
  reset(): void {
    this.inHand = new Map();
    this.sent = new Map();
    this.aheadUntil = new Map();
  }

  /**
   * Advances the symbol's open 30m bar by `bar`. `previous` is the bar's stage state (its
   * `resample` field; a state without one predates the tactical resampler: see `legacyResample`).
   */
  async step(bar: Bar, previous: { resample?: ResampleState | null } | null): Promise<Resampled> {
    const legacy = this.options.legacyResample;
    const open = this.openNow(previous);
    return this.stepFrom(bar, open === undefined && legacy !== undefined ? await legacy(bar.symbol) : (open ?? null));
  }

  /** The open 30m bar `previous` holds; undefined when it must be loaded first (`legacyResample`). */
  openNow(previous: { resample?: ResampleState | null } | null): ResampleState | null | undefined {
    if (previous !== null && previous.resample === undefined && this.options.legacyResample !== undefined) return undefined;
    return previous?.resample ?? null;
  }

  /** {@link step} from the open 30m bar `open` (see {@link openNow}). */
  stepFrom(bar: Bar, open: ResampleState | null): Resampled {
    const resampled = resampleStep(open, bar);
    const sent = this.sent.get(bar.symbol);
    const completed = resampled.emitted.map((b): Completed30m => {
      const ahead = sent?.get(b.ts);
      if (ahead === undefined) return { bar: b };
      sent?.delete(b.ts);
      return ahead.json === JSON.stringify(b) ? { bar: b, sentAhead: ahead.confirm } : { bar: b, differsFromSentAhead: true };
    });
    return { state: resampled.state, completed };
  }

  /**
   * The 30m bars to send ahead now, after `bar` (processed, leaving `state`): those the bars in hand
   * after it complete, up to `lookaheadPeriods` periods past `bar`'s own, not sent before. Report
   * each send with {@link recordSentAhead}.
   */
  ahead(bar: Bar, state: ResampleState | null): Bar30m[] {
    if (this.lookaheadPeriods === 0) return [];
    const q = this.takeInHand(bar);
    if (q === null) return [];
    const horizon = periodsAfter(periodCloseOf(bar.ts), this.lookaheadPeriods);
    if ((this.aheadUntil.get(bar.symbol) ?? 0) >= horizon) return [];
    const ahead = resampleAhead(state, bar.ts, q.bars.slice(q.head, q.head + 6 * (this.lookaheadPeriods + 1)), horizon);
    if (ahead.length === 0) return [];
    const sent = this.sent.get(bar.symbol);
    this.aheadUntil.set(bar.symbol, periodCloseOf((ahead[ahead.length - 1] as Bar30m).ts));
    return sent === undefined ? ahead : ahead.filter((b) => !sent.has(b.ts));
  }

  /** A 30m bar returned by {@link ahead} was sent; `confirm` is its send's confirm. */
  recordSentAhead(b: Bar30m, confirm: Promise<void>): void {
    let sent = this.sent.get(b.symbol);
    if (sent === undefined) {
      sent = new Map();
      this.sent.set(b.symbol, sent);
    }
    sent.set(b.ts, { json: JSON.stringify(b), confirm });
  }

  /** Takes `bar` and the bars before it off the symbol's bars in hand; null unless `bar` was among them. */
  private takeInHand(bar: Bar): BarsInHand | null {
    const q = this.inHand.get(bar.symbol);
    if (q === undefined) return null;
    let found = false;
    while (q.head < q.bars.length && (q.bars[q.head] as Bar).ts <= bar.ts) {
      if ((q.bars[q.head] as Bar).ts === bar.ts) found = true;
      q.head++;
    }
    if (q.head === q.bars.length) this.inHand.delete(bar.symbol);
    else if (q.head > 1024 && q.head * 2 > q.bars.length) {
      q.bars = q.bars.slice(q.head);
      q.head = 0;
    }
    return found ? q : null;
  }
}
