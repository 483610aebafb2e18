import type { Indicators } from '../../schemas/integrated-result.schema';
import { SeededRandom } from '../util/random';
import type { BarInput, Observations, StrategicInput } from './features';
import { argmax, MAPPO_DEFAULTS, sampleCategorical, softmax } from './mappo';
import { initialWeights, type MlpWeights } from './network';
import { inferenceNet, type InferenceNet } from './simd-dense-net';
import { TRADING_TEAM_SPEC } from './trading-agents';
import { DEFAULT_COSTS, decodeActions, observe, type AgentState, type TradeDecision, type TradingCosts } from './trading-env';

/** What the tactical worker knows when a 5m bar closes. */
export interface DecisionInput {
  indicators: Indicators;
  strategic: StrategicInput | null;
  /** The bar just closed (`ts` optional; used only for seeded exploration). */
  bar: BarInput & { ts?: number };
  /**
   * The symbol's agent state BEFORE this bar. `decide` settles the bar internally to build the
   * observations; afterwards the worker calls `advance(agentState, bar, decision, costs)`.
   */
  agentState: AgentState;
}

/** The joint decision of the three actors, plus what a training transition needs. */
export interface Decision extends TradeDecision {
  /**
   * Geometric mean of the three chosen actions' probabilities, (p_tactical·p_risk·p_execution)^(1/3),
   * in (0, 1]: 1 when all three actors are certain.
   */
  combined_confidence: number;
  /** Action indices in TACTICAL_ACTIONS / RISK_SIZES / EXECUTION_ACTIONS. */
  actionIndices: { tactical: number; risk: number; execution: number };
  logProbs: { tactical: number; risk: number; execution: number };
  probabilities: { tactical: number[]; risk: number[]; execution: number[] };
  observations: Observations;
  model_version: string;
  /** Team reward of the previous decision, known now that this bar has arrived (null if none). */
  previousReward: number | null;
}

/** Options of {@link TacticalPolicy.decide}. */
export interface DecideOptions {
  /**
   * Sample instead of taking the argmax, with a generator seeded by (version, symbol, ts), so that
   * exploration is still reproducible. @defaultValue false (greedy)
   */
  explore?: { symbol: string; ts: number } | false;
}

/** Something a policy can be loaded from (a `ModelRegistry`). */
export interface PolicySource {
  loadActorWeights(version: string): Promise<MlpWeights[]>;
  latestPromoted(): Promise<string | null>;
}

/**
 * The live network: inference of the three trading actors on the WebAssembly SIMD kernel
 * (`SimdDenseNet`, no tfjs): greedy, deterministic for a version. The decisions of the
 * workers, `greedyRule` and the eval command all come from here.
 */
export class TacticalPolicy {
  private readonly nets: InferenceNet[];

  constructor(readonly version: string, private readonly weights: readonly MlpWeights[], readonly costs: TradingCosts = DEFAULT_COSTS) {
    TRADING_TEAM_SPEC.agents.forEach((a, i) => {
      const w = weights[i];
      const want = [a.obsDim, ...a.hidden, a.nActions];
      if (!w || w.sizes.join() !== want.join()) throw new RangeError(`actor ${a.name} must have sizes ${want.join('-')}`);
    });
    this.nets = weights.map((w) => inferenceNet(w));
  }

  /**
   * The seeded initial policy: the same actor weights as a `Mappo`/`MappoTrainer` created with this
   * seed, version `initial-<seed>`.
   */
  static initial(seed = 1, costs: TradingCosts = DEFAULT_COSTS): TacticalPolicy {
    const rng = new SeededRandom(seed);
    const weights = TRADING_TEAM_SPEC.agents.map((a) =>
      initialWeights([a.obsDim, ...a.hidden, a.nActions], rng, { hiddenGain: MAPPO_DEFAULTS.hiddenGain, outputGain: MAPPO_DEFAULTS.policyHeadGain }),
    );
    return new TacticalPolicy(`initial-${seed}`, weights, costs);
  }

  /** Loads a version from a registry (the latest promoted one when `version` is omitted). */
  static async load(source: PolicySource, version?: string, costs: TradingCosts = DEFAULT_COSTS): Promise<TacticalPolicy> {
    const v = version ?? (await source.latestPromoted());
    if (v === null) throw new RangeError('no promoted model version');
    return new TacticalPolicy(v, await source.loadActorWeights(v), costs);
  }

  /** Actor weights in agent order (tactical, risk, execution). */
  actorWeights(): MlpWeights[] {
    return this.weights.map((w) => ({ sizes: [...w.sizes], data: w.data.slice() }));
  }

  decide(input: DecisionInput, options: DecideOptions = {}): Decision {
    const { observations, settled } = this.observe(input);
    const obs = [observations.tactical, observations.risk, observations.execution];
    return this.choose(this.nets.map((net, i) => net.forward(obs[i] as number[])), observations, settled.reward, options);
  }

  /**
   * {@link decide} for several inputs at once (of different symbols: a symbol's next input depends
   * on its previous decision). Each actor runs one batched forward pass over all inputs, so its
   * weights are read once per batch instead of once per input; every decision is bit-identical to
   * `decide(inputs[k], options[k])`. An input that fails gets its error in its place, the others
   * are decided.
   */
  decideBatch(requests: readonly { input: DecisionInput; options?: DecideOptions }[]): (Decision | Error)[] {
    const out: (Decision | Error)[] = new Array<Decision | Error>(requests.length);
    const ok: { k: number; observed: ReturnType<typeof observe> }[] = [];
    requests.forEach((r, k) => {
      try {
        ok.push({ k, observed: this.observe(r.input) });
      } catch (err) {
        out[k] = asError(err);
      }
    });
    if (ok.length === 0) return out;
    let logits: Float32Array[][];
    try {
      logits = [
        this.nets[0]!.forwardBatch(ok.map((o) => o.observed.observations.tactical)),
        this.nets[1]!.forwardBatch(ok.map((o) => o.observed.observations.risk)),
        this.nets[2]!.forwardBatch(ok.map((o) => o.observed.observations.execution)),
      ];
    } catch (err) {
      for (const o of ok) out[o.k] = asError(err);
      return out;
    }
    ok.forEach((o, j) => {
      try {
        const l = [logits[0]![j]!, logits[1]![j]!, logits[2]![j]!];
        out[o.k] = this.choose(l, o.observed.observations, o.observed.settled.reward, requests[o.k]!.options ?? {});
      } catch (err) {
        out[o.k] = asError(err);
      }
    });
    return out;
  }

  /** The observations of a decision input (the bar settled internally). */
  private observe(input: DecisionInput): ReturnType<typeof observe> {
    const bar = { ...input.bar, ts: input.bar.ts ?? 0 };
    return observe(input.agentState, bar, input.indicators, input.strategic, this.costs);
  }

  /** The decision from the three actors' logits (greedy, or sampled with the seeded generator). */
  private choose(logits: readonly ArrayLike<number>[], observations: Observations, previousReward: number | null, options: DecideOptions): Decision {
    const rng = options.explore ? new SeededRandom(hashSeed(`${this.version}|${options.explore.symbol}|${options.explore.ts}`)) : null;
    const probs = logits.map((l) => softmax(l));
    const idx = probs.map((p) => (rng ? sampleCategorical(p, rng) : argmax(p))) as [number, number, number];
    const chosen = idx.map((a, i) => (probs[i] as number[])[a] as number);
    const decision = decodeActions(idx, observations);
    return {
      ...decision,
      combined_confidence: Math.min(1, Math.max(0, Math.cbrt(chosen[0]! * chosen[1]! * chosen[2]!))),
      actionIndices: { tactical: idx[0], risk: idx[1], execution: idx[2] },
      logProbs: { tactical: Math.log(chosen[0]!), risk: Math.log(chosen[1]!), execution: Math.log(chosen[2]!) },
      probabilities: { tactical: probs[0]!, risk: probs[1]!, execution: probs[2]! },
      observations,
      model_version: this.version,
      previousReward,
    };
  }

  /**
   * The greedy joint decision from observations already built (for example by `backtest`, whose
   * `DecisionRule` receives them), so a policy can be evaluated as a decision rule:
   * `backtest(series, ({ observations }) => policy.decideObservations(observations))`.
   * Same networks and argmax as {@link decide} without exploration.
   */
  decideObservations(observations: Observations): TradeDecision & { actionIndices: Decision['actionIndices'] } {
    const obs = [observations.tactical, observations.risk, observations.execution];
    const idx = this.nets.map((net, i) => argmax(softmax(net.forward(obs[i] as number[])))) as [number, number, number];
    return { ...decodeActions(idx, observations), actionIndices: { tactical: idx[0], risk: idx[1], execution: idx[2] } };
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** FNV-1a of a string, as a 32-bit seed. */
function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
