import type { Decision } from './policy';

/**
 * One experience record, plain JSON, as the tactical worker publishes it to the
 * `tactical_experience` queue: the decision made on the close of bar `ts` and the team reward it
 * earned, which is known when the next bar of the symbol arrives (`advance(...).reward`).
 */
export interface Transition {
  v: 1;
  symbol: string;
  /** Open time of the bar the decision was made on. */
  ts: number;
  model_version: string | null;
  observations: { tactical: number[]; risk: number[]; execution: number[] };
  global_state: number[];
  /** Action indices (TACTICAL_ACTIONS, RISK_SIZES, EXECUTION_ACTIONS). */
  actions: { tactical: number; risk: number; execution: number };
  /** Log-probabilities of those actions under the policy that acted. */
  log_probs: { tactical: number; risk: number; execution: number };
  reward: number;
  /** The symbol's episode ended here (for example the stream stopped for good); usually false. */
  done: boolean;
}

/** Builds the transition of a decision once its reward is known. */
export function makeTransition(symbol: string, ts: number, decision: Decision, reward: number, done = false): Transition {
  return {
    v: 1,
    symbol,
    ts,
    model_version: decision.model_version,
    observations: {
      tactical: [...decision.observations.tactical],
      risk: [...decision.observations.risk],
      execution: [...decision.observations.execution],
    },
    global_state: [...decision.observations.global],
    actions: { ...decision.actionIndices },
    log_probs: { ...decision.logProbs },
    reward,
    done,
  };
}
