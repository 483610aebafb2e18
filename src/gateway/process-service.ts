import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar, Bar30m } from '../../schemas/bar.schema';
import type { Feedback } from '../../schemas/feedback.schema';
import type {
  StrategicProcessResponse,
  TacticalProcessResponse,
} from '../../schemas/gateway.schema';
import type { StrategicContext } from '../../schemas/strategic-context.schema';
import type { PipelineConfig } from '../config/config';
import { ProcessInputError } from './http-error';
import { AgentStage } from '../flows/agent-stage';
import { AnalyticsStage } from '../flows/analytics-stage';
import type { TimeKeyedBufferFlow } from '../flows/context-buffer-flow';
import { StreamingIndicatorStage } from '../flows/indicator-stage';
import { resampleStep, type ResampleState } from '../flows/resample-flow';
import { StrategicFlow, type StrategicState } from '../flows/strategic-flow';
import { TacticalFlow, type TacticalState } from '../flows/tactical-flow';
import type { TacticalPolicy } from '../learning/policy';
import type { Logger } from '../observability/logger';
import { FEATURE_COUNT, FEATURE_NAMES, FeatureMatrix, WINDOW_BARS } from '../strategic';
import { settledContext } from '../util/periods';

/** Options of {@link ProcessService}. */
export interface ProcessServiceOptions {
  config: PipelineConfig;
  /** The policy the tactical workers would use now (the current promoted model, or the pinned one). */
  policy: () => Promise<TacticalPolicy>;
  log: Logger;
}

/**
 * The worker's Redis-backed {@link TimeKeyedBufferFlow}, answered from memory: {@link settledContext}
 * over the items that arrived, the answer the worker's buffer gives once its wait is over (here
 * nothing more will come): the item when it is there, else the newest older one marked stale.
 */
function settledBuffer<T>(byClose: ReadonlyMap<number, T>): TimeKeyedBufferFlow<T> {
  const lookup: Pick<TimeKeyedBufferFlow<T>, 'lookupItem'> = {
    lookupItem: (_symbol: string, requiredCloseTs: number | null) => Promise.resolve(settledContext(byClose, requiredCloseTs)),
  };
  return lookup as TimeKeyedBufferFlow<T>;
}

/**
 * POST /api/strategic/process and /api/tactical/process: the workers' own flows (StrategicFlow with
 * the AnalyticsStage, TacticalFlow with the streaming indicators and the AgentStage), run in this
 * process over the bars of one request, from a fresh state, with an empty pattern store in a
 * temporary directory deleted afterwards. Nothing is read from or written to the pipeline's Redis,
 * queues or pattern stores.
 *
 * The tactical call replays the whole tactical ↔ strategic loop for the symbol: each 5m bar is
 * resampled as the tactical worker does, every 30m bar it completes goes through the strategic flow
 * (with the six-bar feedback the earlier 5m bars produced, at the worker's feedback lag), and the 5m
 * bar is then decided with the context the worker's buffer would give it. For the same bars and the
 * same model version (PIPELINE_TRAINING=off, or no model swap during the bars) the result equals the
 * pipeline's apart from `latency_ms`.
 */
export class ProcessService {
  constructor(private readonly options: ProcessServiceOptions) {}

  /** The strategic analysis of the last of `bars` (30m bars of `symbol`, oldest first). */
  async strategic(symbol: string, bars: Bar[]): Promise<StrategicProcessResponse> {
    const started = performance.now();
    checkBars(symbol, bars, '30m');
    return this.withStage(async (stage) => {
      const flow = new StrategicFlow(stage, null, this.options.config.feedbackLag);
      const matrix = new FeatureMatrix();
      let state: StrategicState | null = null;
      let context: StrategicContext | null = null;
      for (const bar of bars) {
        const out = await flow.step(bar as Bar30m, state);
        state = out.state;
        context = out.context;
        matrix.update(bar);
      }
      const ctx = context as StrategicContext;
      const window = new Float64Array(WINDOW_BARS * FEATURE_COUNT);
      const rows = matrix.copyWindow(window);
      // One row a bar, a missing feature (NaN) as null.
      const out = Array.from({ length: rows }, (_, r) => Array.from(window.subarray(r * FEATURE_COUNT, (r + 1) * FEATURE_COUNT), (v) => (Number.isFinite(v) ? v : null)));
      return {
        symbol,
        bar_close_ts: ctx.bar_close_ts,
        features: [...FEATURE_NAMES],
        matrix: out,
        regime: ctx.regime,
        regime_probabilities: ctx.regime_probabilities,
        confidence: ctx.confidence,
        uncertainty: ctx.uncertainty,
        similar_patterns: ctx.similar_patterns,
        degraded: ctx.degraded,
        processing_time_ms: round3(performance.now() - started),
      };
    });
  }

  /** The tactical decision for the last of `bars` (5m bars of `symbol`, oldest first). */
  async tactical(symbol: string, bars: Bar[]): Promise<TacticalProcessResponse> {
    const started = performance.now();
    checkBars(symbol, bars, '5m');
    const policy = await this.options.policy();
    const agents = new AgentStage(policy, this.options.log, this.options.config.training);
    return this.withStage(async (stage) => {
      const feedback = new Map<number, Feedback>();
      const contexts = new Map<number, StrategicContext>();
      const strategicFlow = new StrategicFlow(stage, settledBuffer(feedback), this.options.config.feedbackLag);
      const tacticalFlow = new TacticalFlow({ indicators: new StreamingIndicatorStage(), agents });
      let strategicState: StrategicState | null = null;
      let state: TacticalState | null = null;
      let open: ResampleState | null = null;
      let last: Awaited<ReturnType<TacticalFlow['step']>>['result'] | null = null;
      for (const bar of bars) {
        const resampled = resampleStep(open, bar);
        open = resampled.state;
        for (const b30 of resampled.emitted) {
          const out = await strategicFlow.step(b30, strategicState);
          strategicState = out.state;
          contexts.set(out.context.bar_close_ts, out.context);
        }
        const required = tacticalFlow.requiredContext(bar, state);
        const { item, stale } = settledContext(contexts, required);
        const step = await tacticalFlow.step(bar, state, required, { context: item, stale });
        state = { ...step.state, resample: open };
        for (const f of step.feedback) feedback.set(f.window_close_ts, f);
        last = step.result;
      }
      const r = last!;
      return {
        symbol,
        ts: r.ts,
        indicators: r.indicators,
        strategic: r.strategic,
        actions: r.actions,
        target_position: r.target_position,
        combined_confidence: r.combined_confidence,
        model_version: r.model_version,
        degraded: r.degraded,
        processing_time_ms: round3(performance.now() - started),
      };
    });
  }

  /** Runs `fn` with an AnalyticsStage over a fresh temporary pattern-store directory. */
  private async withStage<T>(fn: (stage: AnalyticsStage) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), 'gateway-process-'));
    try {
      const stage = new AnalyticsStage({ dir, log: this.options.log });
      return await fn(stage);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** The bars of one request: one symbol, one timeframe, strictly increasing `ts`. */
function checkBars(symbol: string, bars: Bar[], timeframe: '5m' | '30m'): void {
  bars.forEach((bar, i) => {
    if (bar.symbol !== symbol) throw new ProcessInputError(`bars[${i}].symbol is ${bar.symbol}, expected ${symbol}: send one symbol per call`);
    if (bar.timeframe !== timeframe) throw new ProcessInputError(`bars[${i}].timeframe is ${bar.timeframe}, expected ${timeframe}`);
    const prev = bars[i - 1];
    if (prev !== undefined && bar.ts <= prev.ts) {
      throw new ProcessInputError(`bars[${i}].ts ${bar.ts} is not after bars[${i - 1}].ts ${prev.ts}: send the bars oldest first, without duplicates`);
    }
  });
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
