import type { Bar30m } from '../../schemas/bar.schema';
import type { Feedback } from '../../schemas/feedback.schema';
import type { RegimeName, StrategicContext } from '../../schemas/strategic-context.schema';
import type { TacticalFeedback } from '../strategic/uncertainty';
import { periodCloseOf } from '../util/periods';
import type { TimeKeyedBufferFlow } from './context-buffer-flow';

/** Feedback windows remembered per regime. */
export const FEEDBACK_WINDOWS_PER_REGIME = 8;

/** Recent tactical outcomes per regime, plain data. */
export interface RegimeFeedbackState {
  /** Close time of the last feedback window applied. */
  applied: number | null;
  /** Per regime, the last windows: [directional, hits, realised return]. */
  byRegime: Partial<Record<RegimeName, [number, number, number][]>>;
}

/** The strategic worker's per-symbol state, checkpointed in Redis with every 30m bar. */
export interface StrategicState {
  lastTs: number;
  /** Serialised analyzer state of the symbol. */
  analyzer: unknown;
  feedback?: RegimeFeedbackState;
  /** Close times of the symbol's last 30m bars (oldest first), to find the window `lag` bars back. */
  recentCloses?: number[];
}

/** What the analytics stage says about one 30m bar. */
export type StrategicAnalysis = Pick<
  StrategicContext,
  'regime' | 'regime_probabilities' | 'confidence' | 'uncertainty' | 'similar_patterns'
> & { degraded: string[] };

/**
 * A durable write a step started and did not wait for (the pattern store's append and fdatasync):
 * the context leaves without it, the bar's commit (state checkpoint and ack) waits for it.
 */
export interface DurableWrite {
  /** Resolves once the write is on disk; rejects when it failed (observed: never unhandled). */
  done: Promise<void>;
  /** Writes again what a failed write left unwritten; resolves once it is on disk. */
  retry(): Promise<void>;
}

/** A bar readied by {@link StrategicStage.prepare}: its analysis runs synchronously. */
export interface PreparedStage {
  /**
   * Analyses the bar (regime, neighbours, confidence); `finish` then does the rest of the bar
   * (pattern insert, merge, sync start, checkpoint state), which the analysis does not depend on.
   * `finish` must be called, once, before the symbol's next bar. A sync `finish` starts is returned as its
   * `durable` write, never awaited here.
   */
  analyse(feedback: ((regime: RegimeName) => TacticalFeedback | null) | null): {
    analysis: StrategicAnalysis;
    finish: () => { state: unknown; durable: DurableWrite | null };
  };
}

/** The strategic analytics stage, as the flow sees it. */
export interface StrategicStage {
  /** Optional split of {@link step}: readies a bar so that its analysis runs in a synchronous pass. */
  prepare?(state: unknown, bar: Bar30m): PreparedStage | Promise<PreparedStage>;
  step(
    state: unknown,
    bar: Bar30m,
    feedback: ((regime: RegimeName) => TacticalFeedback | null) | null,
  ): Promise<{ state: unknown; analysis: StrategicAnalysis; durable?: DurableWrite | null }>;
}

/** A bar after {@link StrategicFlow.prepare}: `run` (synchronous) or, for a stage without `prepare`, `step`. */
export type PreparedBar =
  | { run: () => { context: StrategicContext; finish: () => { state: StrategicState; durable: DurableWrite | null } }; step?: undefined }
  | { run?: undefined; step: () => Promise<{ context: StrategicContext; state: StrategicState; durable: DurableWrite | null }> };

const NO_ANALYSIS: StrategicAnalysis = {
  regime: null,
  regime_probabilities: null,
  confidence: null,
  uncertainty: null,
  similar_patterns: null,
  degraded: [],
};

/** Aggregates a regime's remembered windows into the analyzer's feedback input. */
export function feedbackFor(state: RegimeFeedbackState, regime: RegimeName): TacticalFeedback | null {
  const windows = state.byRegime[regime] ?? [];
  let directional = 0;
  let hits = 0;
  let ret = 0;
  for (const [d, h, r] of windows) {
    directional += d;
    hits += h;
    ret += r;
  }
  if (directional === 0) return null;
  return { hitRate: hits / directional, realisedReturn: ret, windows: windows.length, directional };
}

/** Adds one feedback window to the per-regime memory (once per window). */
export function applyFeedback(state: RegimeFeedbackState, feedback: Feedback): RegimeFeedbackState {
  if (state.applied !== null && feedback.window_close_ts <= state.applied) return state;
  const next: RegimeFeedbackState = { applied: feedback.window_close_ts, byRegime: { ...state.byRegime } };
  if (feedback.regime !== null) {
    const list = [...(next.byRegime[feedback.regime] ?? []), [feedback.directional, feedback.hits, feedback.realised_return] as [number, number, number]];
    next.byRegime[feedback.regime] = list.slice(-FEEDBACK_WINDOWS_PER_REGIME);
  }
  return next;
}

/**
 * Turns a 30m bar and the symbol's state into its strategic context.
 *
 * Feedback is fixed by the bars, not by arrival: the context of a symbol's n-th 30m bar applies the
 * tactical feedback window of its (n − lag)-th 30m bar, waiting (bounded) for it, so the 30m bar
 * closing at T uses windows that closed at or before T − lag × 30m. No cycle: that window needs
 * only contexts of earlier bars. With `lag` 1 every 30m bar waits for the window just closed, which
 * makes the two workers take turns once per period; a larger lag lets the strategic worker run
 * `lag` periods ahead, so in a replay the tactical worker finds its contexts ready.
 *
 * `durable` is what the stage still writes to disk for this bar (see {@link DurableWrite}): the
 * context does not wait for it, the bar's commit must.
 */
export class StrategicFlow {
  constructor(
    private readonly stage: StrategicStage | null,
    private readonly feedbackBuffer: TimeKeyedBufferFlow<Feedback> | null = null,
    private readonly lag = 4,
  ) {
    if (!Number.isInteger(lag) || lag < 1) throw new RangeError(`feedback lag must be a positive integer, got ${lag}`);
  }

  /** `abandon` ends the wait for feedback at once (the bar's delivery is gone; it comes again). */
  async step(
    bar: Bar30m,
    state: StrategicState | null,
    abandon?: AbortSignal,
  ): Promise<{ context: StrategicContext; state: StrategicState; durable: DurableWrite | null }> {
    const prepared = await this.prepare(bar, state, abandon, false);
    if (prepared.run !== undefined) {
      const { context, finish } = prepared.run();
      return { context, ...finish() };
    }
    return prepared.step();
  }

  /**
   * The waits of a bar (its feedback window, the stage's readiness), then either `run`: its context
   * synchronously, and `finish` for the rest (store insert, checkpoint state), or, for a stage
   * without `prepare` (or with `split` false), `step`: all of it, asynchronously, by the stage's
   * `step` (which may await its durable write, see AnalyticsStageOptions.overlapSync). Results are those of {@link step}
   * whatever runs between `run` and `finish` for other symbols; `finish` must come before the
   * symbol's next bar.
   */
  async prepare(bar: Bar30m, state: StrategicState | null, abandon?: AbortSignal, split = true): Promise<PreparedBar> {
    const degraded: string[] = [];
    let feedback: RegimeFeedbackState = state?.feedback ?? { applied: null, byRegime: {} };
    const recent = [...(state?.recentCloses ?? []), periodCloseOf(bar.ts)].slice(-(this.lag + 1));
    if (this.feedbackBuffer !== null && recent.length === this.lag + 1) {
      const required = recent[0] as number;
      const lookup = await this.feedbackBuffer.lookupItem(bar.symbol, required, abandon);
      if (lookup.stale) degraded.push('feedback');
      if (lookup.item !== null) feedback = applyFeedback(feedback, lookup.item);
    }
    const remembered = feedback;
    const feedbackOf = (regime: RegimeName): TacticalFeedback | null => feedbackFor(remembered, regime);
    const contextOf = (analysis: StrategicAnalysis): StrategicContext => ({
      v: 1,
      symbol: bar.symbol,
      ts: bar.ts,
      bar_close_ts: periodCloseOf(bar.ts),
      close: bar.close,
      regime: analysis.regime,
      regime_probabilities: analysis.regime_probabilities,
      confidence: analysis.confidence,
      uncertainty: analysis.uncertainty,
      similar_patterns: analysis.similar_patterns,
      degraded: [...analysis.degraded, ...degraded],
    });
    // Keep the last `lag` close times: with the next bar's they make the lag + 1 the lookup needs.
    // (Saving `recent.slice(1)` kept the list below lag + 1 forever, so no feedback was ever applied
    // and the feedback hash in Redis was never trimmed, issue 10.)
    const stateOf = (analyzer: unknown): StrategicState => ({ lastTs: bar.ts, analyzer, feedback, recentCloses: recent.slice(-this.lag) });
    const stage = this.stage;
    if (stage === null) {
      return {
        run: () => ({
          context: contextOf({ ...NO_ANALYSIS, degraded: ['analytics'] }),
          finish: () => ({ state: stateOf(null), durable: null }),
        }),
      };
    }
    if (stage.prepare === undefined || !split) {
      return {
        step: async () => {
          const out = await stage.step(state?.analyzer ?? null, bar, feedbackOf);
          return { context: contextOf(out.analysis), state: stateOf(out.state), durable: out.durable ?? null };
        },
      };
    }
    const readied = stage.prepare(state?.analyzer ?? null, bar);
    const ready = readied instanceof Promise ? await readied : readied;
    return {
      run: () => {
        const { analysis, finish } = ready.analyse(feedbackOf);
        return {
          context: contextOf(analysis),
          finish: () => {
            const out = finish();
            return { state: stateOf(out.state), durable: out.durable };
          },
        };
      },
    };
  }
}
