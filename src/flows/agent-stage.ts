import type { Bar } from '../../schemas/bar.schema';
import type { Indicators } from '../../schemas/integrated-result.schema';
import type { StrategicContext } from '../../schemas/strategic-context.schema';
// The modules, not the learning barrel: the barrel would load the trainer, the training kernels
// and the evaluation into the live worker, which only decides.
import type { StrategicInput } from '../learning/features';
import type { DecideOptions, Decision, DecisionInput, TacticalPolicy } from '../learning/policy';
import { advance, initialAgentState, type AgentState, type TradeDecision } from '../learning/trading-env';
import { makeTransition, type Transition } from '../learning/transition';
import type { Logger } from '../observability/logger';
import { callWithFallback, callWithFallbackNow, createBreaker, type CountBreaker } from './breakers';
import { NO_FAULTS, type FaultInjector } from './fault-injection';

/**
 * A transition as published to `tactical_experience`: the learning `Transition` plus the market
 * inputs of the decision, so the trainer can replay a held-out window with a candidate policy.
 */
export type ExperienceTransition = Transition & {
  market: {
    bar: { ts: number; open: number; high: number; low: number; close: number; volume: number };
    indicators: Indicators;
    strategic: StrategicInput | null;
  };
};

/** The agents' per-symbol state: the environment state and the decision awaiting its reward. */
export interface AgentStageState {
  env: AgentState;
  /** The last decision's transition, its reward filled in when the next bar arrives. */
  pending: ExperienceTransition | null;
}

/** What the agents decided for one bar. */
export interface AgentOutcome {
  decision: TradeDecision;
  combinedConfidence: number;
  modelVersion: string | null;
  /** True when the model failed or its breaker is open and the FLAT fallback decided. */
  degraded: boolean;
  /** True when the decision was sampled for exploration (online training), not the greedy one. */
  exploring: boolean;
  /** The previous decision's completed transition (for the trainer), if any. */
  transition: ExperienceTransition | null;
  state: AgentStageState;
}

/**
 * The transition of a decision made on `bar`, its reward still 0: the trainer's record of what the
 * agents saw and did, completed with the reward when the symbol's next bar arrives.
 */
export function pendingExperience(
  bar: Pick<Bar, 'symbol' | 'ts' | 'open' | 'high' | 'low' | 'close' | 'volume'>,
  decision: Decision,
  indicators: Indicators,
  strategic: StrategicInput | null,
): ExperienceTransition {
  const { ts, open, high, low, close, volume } = bar;
  return {
    ...makeTransition(bar.symbol, ts, decision, 0),
    market: { bar: { ts, open, high, low, close, volume }, indicators, strategic },
  };
}

/** The fallback when no model can decide: stay flat, trade nothing. */
export const FALLBACK_DECISION: TradeDecision = { tactical: 'FLAT', risk: 0, execution: 'WAIT', target_position: 0 };

interface DecisionRequest {
  policy: TacticalPolicy;
  input: DecisionInput;
  options: DecideOptions;
  resolve: (decision: Decision) => void;
  reject: (err: Error) => void;
}

/**
 * Gathers the decisions asked for in one turn of the event loop and runs them through
 * {@link TacticalPolicy.decideBatch} together, once the turn's promise jobs have run (a
 * `process.nextTick` queued from a promise job runs after the whole microtask queue): the bars of
 * different symbols in hand share each actor's forward pass, and no bar waits for a timer. Every
 * decision is bit-identical to deciding it alone; a symbol has one bar in its lane at a time, so
 * one batch never holds two bars of a symbol.
 */
class DecisionBatch {
  private queue: DecisionRequest[] = [];

  decide(policy: TacticalPolicy, input: DecisionInput, options: DecideOptions): Promise<Decision> {
    return new Promise<Decision>((resolve, reject) => {
      if (this.queue.length === 0) process.nextTick(() => this.flush());
      this.queue.push({ policy, input, options, resolve, reject });
    });
  }

  private flush(): void {
    const queue = this.queue;
    this.queue = [];
    // Normally one policy; a swap in the middle of a turn splits the batch by version.
    const byPolicy = new Map<TacticalPolicy, DecisionRequest[]>();
    for (const r of queue) {
      const group = byPolicy.get(r.policy);
      if (group === undefined) byPolicy.set(r.policy, [r]);
      else group.push(r);
    }
    for (const [policy, group] of byPolicy) {
      let decisions: (Decision | Error)[];
      try {
        decisions = policy.decideBatch(group);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        for (const r of group) r.reject(error);
        continue;
      }
      group.forEach((r, k) => {
        const d = decisions[k] as Decision | Error;
        if (d instanceof Error) r.reject(d);
        else r.resolve(d);
      });
    }
  }
}

/**
 * The three MAPPO actors as a stage of the tactical flow. Inference goes through a circuit breaker
 * (`agents`); when the model throws or the breaker is open the decision is FLAT with size 0 and the
 * result names `agents` in `degraded`. The policy can be swapped between bars ({@link swap}).
 * The decisions of one turn of the event loop (other symbols' bars)
 * share one batched forward pass per actor ({@link DecisionBatch}); each call still goes through
 * the breaker on its own, and each decision is the one it would be alone.
 */
export class AgentStage {
  private readonly breaker: CountBreaker;
  private readonly batch = new DecisionBatch();

  constructor(
    private policy: TacticalPolicy,
    log: Logger,
    /**
     * Online training: sample actions (seeded by version, symbol and ts) instead of the argmax, and
     * record each decision's transition for the trainer.
     */
    private readonly explore = false,
    private readonly faults: FaultInjector = NO_FAULTS,
  ) {
    this.breaker = createBreaker({ stage: 'agents', log });
  }

  /** The version deciding now. */
  get version(): string {
    return this.policy.version;
  }

  /** Replaces the policy; the next bar uses the new one. */
  swap(policy: TacticalPolicy): Promise<void> {
    this.policy = policy;
    return Promise.resolve();
  }

  async step(
    state: AgentStageState | null,
    bar: Bar,
    indicators: Indicators,
    context: StrategicContext | null,
  ): Promise<AgentOutcome> {
    const asked = this.ask(state, bar, indicators, context);
    const { value, degraded } = await callWithFallback(this.breaker, 'agents', () => null, () => {
      this.faults.check('agents');
      // Decided with the other symbols' bars of this turn (see DecisionBatch).
      return this.batch.decide(asked.policy, asked.input, asked.options);
    });
    return this.outcome(state, bar, asked, value, degraded);
  }

  /**
   * {@link step} decided at once, alone (a replay batch's loop: the next bar of the symbol needs
   * this one's outcome); the same decision, through the same breaker.
   */
  stepNow(state: AgentStageState | null, bar: Bar, indicators: Indicators, context: StrategicContext | null): AgentOutcome {
    const asked = this.ask(state, bar, indicators, context);
    const { value, degraded } = callWithFallbackNow(this.breaker, 'agents', () => null, () => {
      this.faults.check('agents');
      return asked.policy.decide(asked.input, asked.options);
    });
    return this.outcome(state, bar, asked, value, degraded);
  }

  private ask(state: AgentStageState | null, bar: Bar, indicators: Indicators, context: StrategicContext | null) {
    const env = state?.env ?? initialAgentState();
    const policy = this.policy; // a swap during this step takes effect on the next bar
    const strategic =
      context === null
        ? null
        : {
            regime_probabilities: context.regime_probabilities,
            uncertainty: context.uncertainty,
            confidence: context.confidence,
            similar_patterns: context.similar_patterns,
          };
    const input = { indicators, strategic, bar: { ...bar }, agentState: env, symbol: bar.symbol };
    const options: DecideOptions = this.explore ? { explore: { symbol: bar.symbol, ts: bar.ts } } : {};
    return { env, policy, strategic, indicators, input, options };
  }

  private outcome(
    state: AgentStageState | null,
    bar: Bar,
    { env, policy, strategic, indicators }: ReturnType<AgentStage['ask']>,
    decision: Decision | null,
    degraded: boolean,
  ): AgentOutcome {
    const chosen: TradeDecision = decision ?? FALLBACK_DECISION;
    const advanced = advance(env, { ...bar }, chosen, policy.costs);
    const transition =
      state?.pending != null && advanced.reward !== null ? { ...state.pending, reward: advanced.reward } : null;
    return {
      decision: { tactical: chosen.tactical, risk: chosen.risk, execution: chosen.execution, target_position: chosen.target_position },
      combinedConfidence: decision?.combined_confidence ?? 0,
      modelVersion: decision?.model_version ?? null,
      degraded,
      exploring: this.explore && decision !== null,
      transition,
      state: {
        env: advanced.state,
        // Transitions exist for the trainer; without online training they would only bloat the
        // state written to Redis with every bar.
        pending:
          decision === null || !this.explore ? null : pendingExperience(bar, decision, indicators, strategic),
      },
    };
  }
}
