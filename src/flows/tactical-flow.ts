import type { Bar } from '../../schemas/bar.schema';
import type { Indicators, IntegratedResult } from '../../schemas/integrated-result.schema';
import type { ContextLookup } from './context-buffer-flow';
import type { Feedback } from '../../schemas/feedback.schema';
import { requiredContextClose } from '../util/periods';
import { feedbackStep, type FeedbackWindowState } from './feedback-flow';
import type { ResampleState } from './resample-flow';
import type { AgentOutcome, AgentStage, AgentStageState, ExperienceTransition } from './agent-stage';

/** The tactical worker's per-symbol state, plain data checkpointed in Redis with every bar. */
export interface TacticalState {
  lastTs: number;
  /** Close time of the 30m context the last bar needed. */
  requiredCloseTs: number | null;
  /** Serialised indicator state, or null before the first bar. */
  indicators: unknown;
  /** The agents' state, or null before the first bar or without agents. */
  agents: AgentStageState | null;
  /** The open six-bar feedback window. */
  feedback?: FeedbackWindowState | null;
  /** The 30m bar being built from the symbol's 5m bars (set by the consumer). */
  resample?: ResampleState | null;
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
  agents?: AgentStage;
}

/** What the flow produced for one bar. */
export interface TacticalStep {
  result: IntegratedResult;
  state: TacticalState;
  /** The previous decision's completed transition, for the trainer. */
  transition: ExperienceTransition | null;
  /** Feedback windows this bar closed (usually none, one every six bars). */
  feedback: Feedback[];
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
  async step(bar: Bar, state: TacticalState | null, requiredCloseTs: number | null, lookup: ContextLookup): Promise<TacticalStep> {
    const ind = this.indicatorsOf(bar, state);
    const agents = await this.stages.agents?.step(state?.agents ?? null, bar, ind.values, lookup.context);
    return this.finish(bar, state, requiredCloseTs, lookup, ind, agents);
  }

  /** {@link step} at once: the agents decide this bar alone (a replay batch's loop). */
  stepNow(bar: Bar, state: TacticalState | null, requiredCloseTs: number | null, lookup: ContextLookup): TacticalStep {
    const ind = this.indicatorsOf(bar, state);
    const agents = this.stages.agents?.stepNow(state?.agents ?? null, bar, ind.values, lookup.context);
    return this.finish(bar, state, requiredCloseTs, lookup, ind, agents);
  }

  private indicatorsOf(bar: Bar, state: TacticalState | null): { values: Indicators; state: unknown } {
    return this.stages.indicators?.step(state?.indicators ?? null, bar) ?? { values: NULL_INDICATORS, state: null };
  }

  private finish(
    bar: Bar,
    state: TacticalState | null,
    requiredCloseTs: number | null,
    lookup: ContextLookup,
    { values: indicators, state: indicatorState }: { values: Indicators; state: unknown },
    out: AgentOutcome | undefined,
  ): TacticalStep {
    const degraded: string[] = [];
    if (this.stages.indicators === undefined) degraded.push('indicators');
    const ctx = lookup.context;
    if (lookup.stale) degraded.push('context_buffer');
    if (ctx !== null) for (const d of ctx.degraded) if (!degraded.includes(`strategic.${d}`)) degraded.push(`strategic.${d}`);
    let actions: IntegratedResult['actions'] = { tactical: null, risk: null, execution: null };
    let targetPosition: number | null = null;
    let combinedConfidence: number | null = null;
    let modelVersion: string | null = null;
    let exploring = false;
    let agentState: AgentStageState | null = null;
    let transition: ExperienceTransition | null = null;
    if (out !== undefined) {
      actions = { tactical: out.decision.tactical, risk: out.decision.risk, execution: out.decision.execution };
      targetPosition = out.decision.target_position === 0 ? 0 : out.decision.target_position;
      combinedConfidence = out.combinedConfidence;
      modelVersion = out.modelVersion;
      exploring = out.exploring;
      agentState = out.state;
      transition = out.transition;
      if (out.degraded) degraded.push('agents');
    } else {
      degraded.push('agents');
    }
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
      actions,
      target_position: targetPosition,
      combined_confidence: combinedConfidence,
      model_version: modelVersion,
      degraded,
      latency_ms: 0,
      // Only sampled decisions carry the field, so a greedy result's body is the contract-1 one.
      ...(exploring ? { exploring: true } : {}),
    };
    const fb = feedbackStep(state?.feedback ?? null, {
      symbol: bar.symbol,
      ts: bar.ts,
      close: bar.close,
      before: state?.agents?.env ?? null,
      after: agentState?.env ?? null,
      regime: ctx?.regime ?? null,
      confidence: ctx?.confidence ?? null,
      modelVersion,
    });
    return {
      result,
      state: { lastTs: bar.ts, requiredCloseTs, indicators: indicatorState, agents: agentState, feedback: fb.window },
      transition,
      feedback: fb.emitted,
    };
  }
}
