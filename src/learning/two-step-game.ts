import { SeededRandom } from '../util/random';
import { Mappo, type MappoOptions, type Step, type TeamSpec, type Trajectory } from './mappo';

/**
 * The three-agent two-step cooperative game, a small proof that the MAPPO update assigns credit
 * through a shared team reward. Step 0: tactical picks branch A (the team then gets 7 whatever
 * happens) or B. Step 1: risk and execution each pick 0 or 1; in branch B the team gets
 * PAYOFF_B[risk][execution] = [[0,1],[1,8]]. The optimum is 8 (B, 1, 1), but under uniform play B
 * is worth only 2.5 < 7, so tactical must keep trying B until the other two have coordinated.
 *
 * Every agent and the critic observe [step0, step1, branchA, branchB]: the second-step agents must
 * see the branch. Tactical is active only at step 0, risk and execution only at step 1 (inactive
 * agents get no policy gradient). The reward is 0 at step 0 and paid at step 1, and tactical's
 * credit comes from GAE over the two steps through the centralised critic.
 *
 * The actors here are small (4-64-64-2, 4,546 parameters each) so that CI can run two seeds in
 * seconds; the trading actors are ~102k parameters (see `trading-agents.ts`).
 */

export const TWO_STEP_OPTIMUM = 8;
export const PAYOFF_A = 7;
export const PAYOFF_B: readonly (readonly number[])[] = [
  [0, 1],
  [1, 8],
];

/** Observation (and global state) of the game at a step and branch. */
export function twoStepObservation(step: 0 | 1, branch: 0 | 1 | null): number[] {
  return [step === 0 ? 1 : 0, step === 1 ? 1 : 0, branch === 0 ? 1 : 0, branch === 1 ? 1 : 0];
}

/** Team return of one episode given the three actions. */
export function twoStepReturn(tactical: number, risk: number, execution: number): number {
  return tactical === 0 ? PAYOFF_A : ((PAYOFF_B[risk] as readonly number[])[execution] as number);
}

export function twoStepTeamSpec(hidden: readonly number[] = [64, 64]): TeamSpec {
  return {
    agents: [
      { name: 'tactical', obsDim: 4, nActions: 2, hidden },
      { name: 'risk', obsDim: 4, nActions: 2, hidden },
      { name: 'execution', obsDim: 4, nActions: 2, hidden },
    ],
    stateDim: 4,
    criticHidden: hidden,
  };
}

/** Defaults used by the game: MAPPO defaults except a higher learning rate and 10 epochs. */
export const TWO_STEP_MAPPO_OPTIONS: MappoOptions = { actorLr: 1e-3, criticLr: 1e-3, ppoEpochs: 10 };

/** Plays one episode; greedy or sampled. Returns the trajectory and the team return. */
export function playTwoStep(mappo: Mappo, greedy: boolean, rng?: SeededRandom): { trajectory: Trajectory; teamReturn: number } {
  const s0 = twoStepObservation(0, null);
  const a0 = mappo.act([s0, s0, s0], greedy, rng);
  const branch = a0.actions[0] === 0 ? 0 : 1;
  const s1 = twoStepObservation(1, branch);
  const a1 = mappo.act([s1, s1, s1], greedy, rng);
  const r = twoStepReturn(a0.actions[0] as number, a1.actions[1] as number, a1.actions[2] as number);
  const steps: Step[] = [
    { obs: [s0, s0, s0], state: s0, actions: a0.actions, logProbs: a0.logProbs, reward: 0, active: [true, false, false] },
    { obs: [s1, s1, s1], state: s1, actions: a1.actions, logProbs: a1.logProbs, reward: r, active: [false, true, true] },
  ];
  return { trajectory: { steps, terminal: true }, teamReturn: r };
}

/** Options of {@link runTwoStepGame}. */
export interface TwoStepRunOptions {
  seed: number;
  /** @defaultValue 100 */
  iterations?: number;
  /** @defaultValue 64 */
  episodesPerIteration?: number;
  /** Consecutive greedy evaluations (one after each iteration) returning 8 that count as stable. @defaultValue 3 */
  stableChecks?: number;
  /** Stop as soon as the optimum is stable. @defaultValue true */
  stopWhenStable?: boolean;
  hidden?: readonly number[];
  mappo?: MappoOptions;
}

export interface TwoStepRunResult {
  seed: number;
  /** Iteration (1-based) at which the greedy return had been 8 for `stableChecks` consecutive checks; null if never. */
  iterationsToOptimum: number | null;
  greedyReturns: number[];
  meanSampledReturns: number[];
}

/**
 * Trains a fresh team on the game with a fixed seed. "Stable optimum": the greedy team return is 8
 * after each of `stableChecks` consecutive iterations; the reported iteration is the last of them.
 */
export async function runTwoStepGame(options: TwoStepRunOptions): Promise<TwoStepRunResult> {
  const iterations = options.iterations ?? 100;
  const episodes = options.episodesPerIteration ?? 64;
  const stable = options.stableChecks ?? 3;
  const mappo = new Mappo(twoStepTeamSpec(options.hidden), { ...TWO_STEP_MAPPO_OPTIONS, ...options.mappo, seed: options.seed });
  const greedyReturns: number[] = [];
  const meanSampledReturns: number[] = [];
  let streak = 0;
  let reached: number | null = null;
  try {
    for (let it = 1; it <= iterations; it++) {
      const trajectories: Trajectory[] = [];
      let total = 0;
      for (let e = 0; e < episodes; e++) {
        const ep = playTwoStep(mappo, false);
        trajectories.push(ep.trajectory);
        total += ep.teamReturn;
      }
      meanSampledReturns.push(total / episodes);
      await mappo.update(trajectories);
      const g = playTwoStep(mappo, true).teamReturn;
      greedyReturns.push(g);
      streak = g === TWO_STEP_OPTIMUM ? streak + 1 : 0;
      if (streak >= stable && reached === null) {
        reached = it;
        if (options.stopWhenStable ?? true) break;
      }
    }
  } finally {
    mappo.dispose();
  }
  return { seed: options.seed, iterationsToOptimum: reached, greedyReturns, meanSampledReturns };
}
