import type { Bar30m } from '../../schemas/bar.schema';
import type { StrategicContext } from '../../schemas/strategic-context.schema';

/** The strategic worker's per-symbol state, checkpointed in Redis with every 30m bar. */
export interface StrategicState {
  lastTs: number;
  /** Serialised analyzer state of the symbol. */
  analyzer: unknown;
}

/** What the analytics stage says about one 30m bar. */
export type StrategicAnalysis = Pick<
  StrategicContext,
  'regime' | 'regime_probabilities' | 'confidence' | 'uncertainty' | 'similar_patterns'
> & { degraded: string[] };

/** The strategic analytics stage, as the flow sees it. */
export interface StrategicStage {
  step(state: unknown, bar: Bar30m): Promise<{ state: unknown; analysis: StrategicAnalysis }>;
}

/** Turns a 30m bar and the symbol's state into its strategic context. */
export class StrategicFlow {
  constructor(private readonly stage: StrategicStage | null) {}

  async step(bar: Bar30m, state: StrategicState | null): Promise<{ context: StrategicContext; state: StrategicState }> {
    let analysis: StrategicAnalysis = {
      regime: null,
      regime_probabilities: null,
      confidence: null,
      uncertainty: null,
      similar_patterns: null,
      degraded: ['analytics'],
    };
    let analyzerState: unknown = null;
    if (this.stage !== null) {
      const out = await this.stage.step(state?.analyzer ?? null, bar);
      analysis = out.analysis;
      analyzerState = out.state;
    }
    const context: StrategicContext = {
      v: 1,
      symbol: bar.symbol,
      ts: bar.ts,
      bar_close_ts: bar.ts + 1_800_000,
      close: bar.close,
      regime: analysis.regime,
      regime_probabilities: analysis.regime_probabilities,
      confidence: analysis.confidence,
      uncertainty: analysis.uncertainty,
      similar_patterns: analysis.similar_patterns,
      degraded: analysis.degraded,
    };
    return { context, state: { lastTs: bar.ts, analyzer: analyzerState } };
  }
}
