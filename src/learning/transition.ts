import type { Decision } from './policy';

/**
 * One experience record as the tactical worker sends it to the trainer (`tactical_experience`):
 * the decision made on the close of bar `ts` and the team reward it earned, which is known when the
 * next bar of the symbol arrives (`advance(...).reward`). On the wire it is a record of the binary
 * experience frame (schemas/experience-frame.ts), or a JSON experience message.
 */
export interface Transition {
  v: 1;
  symbol: string;
  /** Open time of the bar the decision was made on. */
  ts: number;
  model_version: string | null;
  /** float32 values (see {@link makeTransition}). */
  observations: { tactical: number[]; risk: number[]; execution: number[] };
  /** The critic's input: the three observations concatenated (not sent in a frame: rebuilt on decode). */
  global_state: number[];
  /** Action indices (TACTICAL_ACTIONS, RISK_SIZES, EXECUTION_ACTIONS). */
  actions: { tactical: number; risk: number; execution: number };
  /** Log-probabilities of those actions under the policy that acted, float32 values. */
  log_probs: { tactical: number; risk: number; execution: number };
  reward: number;
  /** The symbol's episode ended here (for example the stream stopped for good); usually false. */
  done: boolean;
}

/**
 * Builds the transition of a decision once its reward is known. Observations and log-probabilities
 * are rounded to float32 (`Math.fround`): the networks read them as float32 anyway (inference,
 * the PPO update and the critic's bootstrap value all copy them into Float32Arrays), so training
 * is unchanged, and the binary experience frame then carries them exactly: the trainer decodes a
 * frame to the very objects the JSON message gives it.
 */
export function makeTransition(symbol: string, ts: number, decision: Decision, reward: number, done = false): Transition {
  const { tactical, risk, execution } = decision.observations;
  const t = tactical.map(Math.fround);
  const r = risk.map(Math.fround);
  const e = execution.map(Math.fround);
  const { logProbs } = decision;
  return {
    v: 1,
    symbol,
    ts,
    model_version: decision.model_version,
    observations: { tactical: t, risk: r, execution: e },
    global_state: [...t, ...r, ...e],
    actions: { ...decision.actionIndices },
    log_probs: { tactical: Math.fround(logProbs.tactical), risk: Math.fround(logProbs.risk), execution: Math.fround(logProbs.execution) },
    reward,
    done,
  };
}
