import type { Bar } from '../../schemas/bar.schema';
import type {
  ConfidenceLevel,
  RegimeName,
  RegimeProbabilities,
  SimilarPatterns,
} from '../../schemas/strategic-context.schema';
import { OutOfOrderError } from '../errors';
import { PERIOD_MS } from '../util/periods';
import { decodeFloat, encodeFloat, type EncodedFloat } from '../indicators/float-codec';
import { EMBEDDING_DIM, embedWindow } from './embedding';
import { decodeFloat32Bits, encodeFloat32Bits } from './float-bits';
import { FEATURE_COUNT, FeatureMatrix, WINDOW_BARS, type FeatureMatrixState } from './feature-matrix';
import { PatternStore } from './pattern-store';
import {
  REGIME_INPUTS,
  RegimeDetector,
  SWITCH_EVIDENCE,
  regimeName,
  regimePosterior,
  toRegimeProbabilities,
  type RegimeDetectorState,
  type VolatilityBaselineState,
} from './regime';
import { assessUncertainty, feedbackPenalty, type TacticalFeedback } from './uncertainty';

/** Options of {@link StrategicAnalyzer}. */
export interface StrategicAnalyzerOptions {
  /** The shared pattern store. @defaultValue a new in-memory store of dimension 32 */
  store?: PatternStore;
  /** Neighbours per query. @defaultValue 10 */
  neighbours?: number;
  /** Forward-outcome horizon in strategic bars. @defaultValue 6 */
  horizonBars?: number;
  /** Length of a strategic bar. @defaultValue 1,800,000 (30 minutes) */
  barMs?: number;
  /** Fresh vectors merged into the HNSW graph per bar (count-bounded, hence deterministic). @defaultValue 2 */
  mergePerBar?: number;
  /** Regime softmax weights (fitting and evaluation). @defaultValue `REGIME_MODEL_WEIGHTS` */
  regimeWeights?: Float64Array;
  /** Confidence model weights (fitting and evaluation). @defaultValue `CONFIDENCE_MODEL_WEIGHTS` */
  confidenceWeights?: Float64Array;
}

/** The strategic output for one bar; every field null during warm-up. */
export interface StrategicOutput {
  regime: RegimeName | null;
  regime_probabilities: RegimeProbabilities | null;
  confidence: ConfidenceLevel | null;
  uncertainty: number | null;
  /** Null until the window is fully warm ({@link FULL_WARMUP_BARS} bars), or when the store failed. */
  similar_patterns: SimilarPatterns | null;
  /** Whether the pattern store served this bar: `failed` when it threw, `skipped` when told to. */
  patternStore?: 'ok' | 'failed' | 'skipped';
  /** The evidence behind the confidence (for evaluation and fitting; not on the wire). */
  evidence?: StrategicEvidence;
}

/** What {@link StrategicAnalyzer.onBar} based its confidence on. */
export interface StrategicEvidence {
  /** Probability of the called regime. */
  regimeProbability: number;
  baselineSamples: number;
  /** `RegimeDetector.ambiguity` of the symbol. */
  ambiguity: number;

  jumpInWindow: boolean;
  /** `RegimeDetector.switchEvidence` of the window. */
  switchEvidence: number[];
  neighbours: number;
  neighbourAgreement: number;
  /** Log-odds removed by tactical feedback. */
  feedbackPenalty: number;
  /** Estimated probability that the call is right (`1 − uncertainty`). */
  pCorrect: number;
}

/** Options of {@link StrategicAnalyzer.onBar}. */
export interface OnBarOptions {
  /** Do not call the pattern store (its breaker is open). @defaultValue false */
  skipPatterns?: boolean;
  /**
   * Leave the bar's pattern insert and graph merge for {@link StrategicAnalyzer.completeBar}: the
   * output (regime, neighbours, confidence) is final without them, so a caller can send it first.
   * Until completed, the next `onBar` (or `completeBar`) does them first, so the store's answers are
   * those of an undeferred run. An insert that fails then is reported by `completeBar`, not in
   * this output's `patternStore`. @defaultValue false
   */
  deferInsert?: boolean;
}

interface PendingOutcome {
  ts: number;
  close: number;
  /** The pattern stored for this bar, kept so a restore can re-add it if the store lost it. */
  vector: Float32Array | null;
  regime: RegimeName | null;
}

/** Serialised per-symbol state of a {@link StrategicAnalyzer} (plain JSON, restored bit for bit). */
export interface StrategicSymbolState {
  v: 1;
  symbol: string;
  lastTs: number | null;
  features: FeatureMatrixState;
  /** The baseline (also inside `detector`; kept for states saved before the detector existed). */
  baseline: VolatilityBaselineState;
  /** The regime detector; absent in states saved before it existed (then rebuilt on restore). */
  detector?: RegimeDetectorState;
  /** `vector`: {@link encodeFloat32Bits} (number arrays in states saved before are read too). */
  pending: { ts: number; close: EncodedFloat; vector: string | EncodedFloat[] | null; regime: RegimeName | null }[];
  /** The last outcomes written to the store (ts of the pattern, outcome), re-applied on restore. */
  settled?: { ts: number; outcome: EncodedFloat }[];
}

class SymbolState {
  lastTs: number | null = null;
  features = new FeatureMatrix();
  detector = new RegimeDetector();
  pending: PendingOutcome[] = [];
  /** Outcomes set in the store by the last `horizonBars` bars (a disk copy may predate them). */
  settled: { ts: number; outcome: number }[] = [];
}

const NULL_OUTPUT: StrategicOutput = Object.freeze({
  regime: null,
  regime_probabilities: null,
  confidence: null,
  uncertainty: null,
  similar_patterns: null,
});

/**
 * Strategic compute for any number of symbols: per-symbol feature matrix, volatility baseline and
 * outcome bookkeeping, plus one shared {@link PatternStore}. Pure compute, no I/O. Emits no events.
 *
 * Per 30m bar ({@link onBar}): update the 48×13 matrix; fill the forward outcome (log return over
 * the next `horizonBars` bars) of the pattern stored `horizonBars` bars ago; once 48 returns exist,
 * sample the baseline and compute the regime posterior; once the window is fully warm, embed it,
 * query the `neighbours` nearest patterns whose outcome is known and whose ts is at most
 * `bar.ts − horizonBars × barMs` (so nothing after the bar is used), then store the new pattern
 * keyed by (symbol, ts) and merge `mergePerBar` fresh vectors into the graph; finally combine
 * posterior, neighbour agreement and `feedback` into uncertainty and confidence.
 *
 * **State and determinism.** Per-symbol state ({@link toJSON}/{@link restore}) holds the matrix,
 * the baseline and the last `horizonBars` bars with their patterns. The store holds every pattern
 * with its regime and outcome; it is saved separately ({@link PatternStore.save}). Outputs are a
 * function of the bars given, in the order given (across symbols too, since the store is shared),
 * and of the store's contents: the store is idempotent on (symbol, ts), merging is count-bounded,
 * and a saved store loads to the same graphs. After a crash, {@link restore} re-adds the pending
 * patterns the store lost (idempotently), and replayed bars re-add theirs, so a worker that saves
 * the store at least as often as every `horizonBars` bars and replays from its checkpoint gets the
 * same outputs as an uninterrupted run. Patterns older than that which were added after the last
 * store save are lost with a crash; later outputs then differ from an uninterrupted run only by
 * their absence.
 */
export class StrategicAnalyzer {
  /** The shared pattern store. */
  readonly store: PatternStore;
  private readonly k: number;
  private readonly horizonBars: number;
  private readonly barMs: number;
  private readonly mergePerBar: number;
  private readonly regimeWeights: Float64Array | undefined;
  private readonly confidenceWeights: Float64Array | undefined;
  private readonly symbols = new Map<string, SymbolState>();
  private readonly inputs = new Float64Array(REGIME_INPUTS);
  private readonly probs = new Float64Array(4);
  private readonly switchEvidence = new Float64Array(SWITCH_EVIDENCE);
  private readonly window = new Float64Array(WINDOW_BARS * FEATURE_COUNT);
  private readonly vector = new Float32Array(EMBEDDING_DIM);
  /** A bar's store work left by `deferInsert`: its pattern (if any) and its merge step. */
  private deferred: { vector: Float32Array | null; symbol: string; ts: number; regime: RegimeName | null } | null = null;

  constructor(options: StrategicAnalyzerOptions = {}) {
    this.store = options.store ?? new PatternStore({ dim: EMBEDDING_DIM });
    if (this.store.dim !== EMBEDDING_DIM) {
      throw new RangeError(`pattern store has dimension ${this.store.dim}, expected ${EMBEDDING_DIM}`);
    }
    this.k = options.neighbours ?? 10;
    this.horizonBars = options.horizonBars ?? 6;
    this.barMs = options.barMs ?? PERIOD_MS;
    this.mergePerBar = options.mergePerBar ?? 2;
    this.regimeWeights = options.regimeWeights;
    this.confidenceWeights = options.confidenceWeights;
    for (const [name, v] of [
      ['neighbours', this.k],
      ['horizonBars', this.horizonBars],
      ['barMs', this.barMs],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    if (!Number.isInteger(this.mergePerBar) || this.mergePerBar < 0) {
      throw new RangeError(`mergePerBar must be a non-negative integer, got ${this.mergePerBar}`);
    }
  }

  /**
   * Processes the next 30m bar of `bar.symbol` (bars of one symbol in strictly increasing `ts`;
   * deduplication is the caller's job). `feedback` is the tactical feedback for this symbol and
   * the regime this bar is called (see {@link TacticalFeedback}), or a function that gives it for
   * the regime once the call is made.
   * @throws OutOfOrderError when `bar.ts` is not after the symbol's last bar.
   */
  onBar(
    bar: Bar,
    feedback?: TacticalFeedback | null | ((regime: RegimeName) => TacticalFeedback | null),
    options: OnBarOptions = {},
  ): StrategicOutput {
    if (this.deferred !== null) this.completeBar();
    let s = this.symbols.get(bar.symbol);
    if (!s) {
      s = new SymbolState();
      this.symbols.set(bar.symbol, s);
    }
    if (s.lastTs !== null && bar.ts <= s.lastTs) {
      throw new OutOfOrderError(`bar ${bar.symbol} ts ${bar.ts} is not after the last bar (ts ${s.lastTs})`);
    }
    const periods = s.lastTs === null ? 1 : Math.max(1, Math.round((bar.ts - s.lastTs) / this.barMs));
    s.lastTs = bar.ts;
    const fm = s.features;
    fm.update(bar);
    if (fm.bars >= 2) s.detector.update(fm.logReturnOver(1), periods);

    s.pending.push({ ts: bar.ts, close: bar.close, vector: null, regime: null });
    if (s.pending.length > this.horizonBars) {
      const due = s.pending.shift() as PendingOutcome;
      if (due.vector) {
        const outcome = Math.log(bar.close / due.close);
        this.store.setOutcome(bar.symbol, due.ts, outcome);
        s.settled.push({ ts: due.ts, outcome });
        if (s.settled.length > this.horizonBars) s.settled.shift();
      }
    }

    if (fm.returnCount < WINDOW_BARS) return NULL_OUTPUT;
    const baseline = s.detector.baselineVariance;
    if (!s.detector.inputs(this.inputs)) return NULL_OUTPUT;
    const best = regimePosterior(this.inputs, this.probs, this.regimeWeights);
    const regime = regimeName(best);

    let similar: SimilarPatterns | null = null;
    let agreement = 0;
    let found = 0;
    let patternStore: StrategicOutput['patternStore'] = 'ok';
    if (fm.fullyWarm && options.skipPatterns === true) {
      patternStore = 'skipped';
    } else if (fm.fullyWarm) {
      embedWindow(fm, baseline, this.vector, this.window);
      let neighbours: ReturnType<PatternStore['search']>;
      try {
        neighbours = this.store.search(this.vector, this.k, bar.ts - this.horizonBars * this.barMs);
      } catch {
        // The store failed: no neighbours, confidence from the posterior (and feedback) alone.
        neighbours = [];
        patternStore = 'failed';
      }
      found = neighbours.length;
      let sumReturn = 0;
      let up = 0;
      let sumDistance = 0;
      for (const n of neighbours) {
        sumReturn += n.outcome;
        if (n.outcome > 0) up++;
        sumDistance += n.distance;
        if (n.regime === regime) agreement++;
      }
      similar =
        found === 0
          ? { k: 0, mean_forward_return: null, up_fraction: null, mean_distance: null }
          : { k: found, mean_forward_return: sumReturn / found, up_fraction: up / found, mean_distance: sumDistance / found };
      if (found > 0) agreement /= found;
      if (patternStore === 'failed') similar = null;
      const mine = s.pending[s.pending.length - 1] as PendingOutcome;
      mine.vector = this.vector.slice();
      mine.regime = regime;
      if (options.deferInsert === true) {
        this.deferred = { vector: mine.vector, symbol: bar.symbol, ts: bar.ts, regime };
      } else {
        try {
          this.store.add(this.vector, { symbol: bar.symbol, ts: bar.ts, regime });
        } catch {
          patternStore = 'failed';
        }
      }
    }
    if (options.deferInsert === true) this.deferred ??= { vector: null, symbol: bar.symbol, ts: bar.ts, regime: null };
    else if (this.mergePerBar > 0) this.store.mergeStep(this.mergePerBar);

    s.detector.switchEvidence(this.switchEvidence);
    const fb = typeof feedback === 'function' ? feedback(regime) : (feedback ?? null);
    const evidence = {
      regimeProbability: this.probs[best] as number,
      baselineSamples: s.detector.baselineSamples,
      ambiguity: s.detector.ambiguity,
      jumpInWindow: s.detector.jumpInWindow,
      switchEvidence: this.switchEvidence,
      neighbours: found,
      neighbourAgreement: agreement,
      feedback: fb,
    };
    const assessed = assessUncertainty(evidence, this.confidenceWeights);
    return {
      regime,
      regime_probabilities: toRegimeProbabilities(this.probs),
      confidence: assessed.confidence,
      uncertainty: assessed.uncertainty,
      similar_patterns: similar,
      patternStore,
      evidence: {
        regimeProbability: evidence.regimeProbability,
        baselineSamples: evidence.baselineSamples,
        ambiguity: evidence.ambiguity,
        jumpInWindow: evidence.jumpInWindow,
        switchEvidence: Array.from(this.switchEvidence),
        neighbours: found,
        neighbourAgreement: agreement,
        feedbackPenalty: feedbackPenalty(fb),
        pCorrect: assessed.pCorrect,
      },
    };
  }

  /**
   * Does the store work the last `onBar` left with `deferInsert` (its pattern insert, then its
   * merge step), exactly as `onBar` would have. Returns `'failed'` when the insert threw (the
   * store is then left as a failed insert leaves it), `'ok'` otherwise, also when nothing was left.
   */
  completeBar(): 'ok' | 'failed' {
    const d = this.deferred;
    if (d === null) return 'ok';
    this.deferred = null;
    let result: 'ok' | 'failed' = 'ok';
    if (d.vector !== null && d.regime !== null) {
      try {
        this.store.add(d.vector, { symbol: d.symbol, ts: d.ts, regime: d.regime });
      } catch {
        result = 'failed';
      }
    }
    if (this.mergePerBar > 0) this.store.mergeStep(this.mergePerBar);
    return result;
  }

  /** Symbols with state. */
  get symbolNames(): string[] {
    return [...this.symbols.keys()];
  }

  /** The state of one symbol as plain JSON (null when the symbol is unknown), for checkpoints. */
  toJSON(symbol: string): StrategicSymbolState | null {
    const s = this.symbols.get(symbol);
    if (!s) return null;
    const detector = s.detector.toJSON();
    return {
      v: 1,
      symbol,
      lastTs: s.lastTs,
      features: s.features.toJSON(),
      baseline: detector.baseline,
      detector,
      settled: s.settled.map((o) => ({ ts: o.ts, outcome: encodeFloat(o.outcome) })),
      pending: s.pending.map((p) => ({
        ts: p.ts,
        close: encodeFloat(p.close),
        vector: p.vector ? encodeFloat32Bits(p.vector) : null,
        regime: p.regime,
      })),
    };
  }

  /**
   * Restores one symbol's state saved with {@link toJSON} (replacing any it has), and re-adds its
   * pending patterns to the store when the store does not hold them (see the class comment).
   */
  restore(state: StrategicSymbolState): void {
    if (state.v !== 1) throw new TypeError(`unsupported strategic state version ${String(state.v)}`);
    const s = new SymbolState();
    s.lastTs = state.lastTs;
    s.features = FeatureMatrix.fromJSON(state.features);
    s.detector =
      state.detector !== undefined
        ? RegimeDetector.fromJSON(state.detector)
        : RegimeDetector.fromMatrix(s.features, state.baseline);
    s.pending = state.pending.map((p) => ({
      ts: p.ts,
      close: decodeFloat(p.close, 'pending.close'),
      vector: p.vector ? decodeFloat32Bits(p.vector, EMBEDDING_DIM, 'pending.vector') : null,
      regime: p.regime,
    }));
    s.settled = (state.settled ?? []).map((o) => ({ ts: o.ts, outcome: decodeFloat(o.outcome, 'settled.outcome') }));
    // The store on disk may predate the last few bars: put back the outcomes they set (setOutcome
    // only fills an unknown outcome, so this is a no-op when the store has them).
    for (const o of s.settled) this.store.setOutcome(state.symbol, o.ts, o.outcome);
    for (const p of s.pending) {
      if (p.vector && p.regime) this.store.add(p.vector, { symbol: state.symbol, ts: p.ts, regime: p.regime });
    }
    this.symbols.set(state.symbol, s);
  }

  /** A new analyzer with the given per-symbol states, sharing `options.store`. */
  static fromJSON(states: readonly StrategicSymbolState[], options: StrategicAnalyzerOptions = {}): StrategicAnalyzer {
    const analyzer = new StrategicAnalyzer(options);
    for (const state of states) analyzer.restore(state);
    return analyzer;
  }
}
