import type { Bar } from '../../schemas/bar.schema';
import type { Indicators, IntegratedResult } from '../../schemas/integrated-result.schema';
import type { ContextLookup } from './context-buffer-flow';
import { requiredContextClose } from './context-buffer-flow';

/** The tactical worker's per-symbol state, plain data checkpointed in Redis with every bar. */
export interface TacticalState {
  lastTs: number;
  /** Close time of the 30m context the last bar needed. */
  requiredCloseTs: number | null;
  /** Serialised indicator state, or null before the first bar. */
  indicators: unknown;
}

/** The streaming indicator stage, as the flow sees it. */
export interface IndicatorStage {
  /** Advances the serialised state by one bar; returns the new state and the bar's values. */
  step(state: unknown, bar: Bar): { state: unknown; values: Indicators };
}

const NULL_INDICATORS: Indicators = {
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
};

/** Dependencies of {@link TacticalFlow}; a stage that is absent leaves its fields null and is named in `degraded`. */
export interface TacticalFlowStages {
  indicators?: IndicatorStage;
}

/**
 * Turns one 5m bar, the symbol's state and the strategic context it is due into the integrated
 * result and the next state. Pure apart from the stages it is given; the consumer does the I/O.
 */
export class TacticalFlow {
  constructor(private readonly stages: TacticalFlowStages) {}

  /** Which 30m context this bar must use (see {@link requiredContextClose}). */
  requiredContext(bar: Bar, state: TacticalState | null): number | null {
    return requiredContextClose(bar.ts, state?.lastTs ?? null, state?.requiredCloseTs ?? null);
  }

  /** Computes the result for `bar`. `latency_ms` is left 0 for the caller to set at publish time. */
  step(
    bar: Bar,
    state: TacticalState | null,
    requiredCloseTs: number | null,
    lookup: ContextLookup,
  ): { result: IntegratedResult; state: TacticalState } {
    const degraded: string[] = [];
    let indicators = NULL_INDICATORS;
    let indicatorState: unknown = null;
    if (this.stages.indicators !== undefined) {
      const out = this.stages.indicators.step(state?.indicators ?? null, bar);
      indicators = out.values;
      indicatorState = out.state;
    } else {
      degraded.push('indicators');
    }
    const ctx = lookup.context;
    if (lookup.stale) degraded.push('context_buffer');
    if (ctx !== null) for (const d of ctx.degraded) if (!degraded.includes(`strategic.${d}`)) degraded.push(`strategic.${d}`);
    degraded.push('agents');
    const result: IntegratedResult = {
      v: 1,
      symbol: bar.symbol,
      ts: bar.ts,
      close_ts: bar.ts + 300_000,
      close: bar.close,
      indicators,
      strategic: {
        bar_close_ts: ctx?.bar_close_ts ?? null,
        regime: ctx?.regime ?? null,
        regime_probabilities: ctx?.regime_probabilities ?? null,
        confidence: ctx?.confidence ?? null,
        uncertainty: ctx?.uncertainty ?? null,
        similar_patterns: ctx?.similar_patterns ?? null,
        stale: lookup.stale,
      },
      actions: { tactical: null, risk: null, execution: null },
      target_position: null,
      combined_confidence: null,
      model_version: null,
      degraded,
      latency_ms: 0,
    };
    return {
      result,
      state: { lastTs: bar.ts, requiredCloseTs, indicators: indicatorState },
    };
  }
}
