import { TIMEFRAME_MS } from '../../schemas/bar.schema';
import { Mappo, type MappoOptions, type MappoSnapshot, type MappoUpdateMetrics, type Step, type Trajectory } from './mappo';
import { TacticalPolicy } from './policy';
import { TRADING_MAPPO_OPTIONS, TRADING_TEAM_SPEC } from './trading-agents';
import type { DEFAULT_COSTS } from './trading-env';
import type { Transition } from './transition';

/** Options of {@link MappoTrainer}. */
export interface MappoTrainerOptions {
  /** Seed of initial weights and of minibatch shuffling. @defaultValue 1 */
  seed?: number;
  /** MAPPO hyper-parameters. @defaultValue {@link TRADING_MAPPO_OPTIONS} over the MAPPO defaults */
  mappo?: MappoOptions;
  /** Resume from a saved team (weights, critic, value normaliser). */
  snapshot?: MappoSnapshot;
  /**
   * Train part of the team in a worker thread ({@link Mappo.threads}; the same updates to the bit).
   * @defaultValue true
   */
  threads?: boolean;
}

/** Metrics of one {@link MappoTrainer.update}. */
export interface TrainerUpdateMetrics extends MappoUpdateMetrics {
  transitions: number;
  trajectories: number;
  /** Transitions used only to bootstrap the value of a cut trajectory. */
  bootstrapOnly: number;
}

/**
 * Online PPO updates from published transitions. Transitions are grouped per symbol, ordered by
 * `ts` and cut into trajectories at `done` and at gaps (consecutive `ts` more than one 5m bar
 * apart). A trajectory that does not end with `done` is bootstrapped with the critic's value of its
 * last transition's global state, and that last transition is not trained on (its successor state
 * is not known yet): send overlapping batches, or accept losing one transition per symbol per batch.
 *
 * Caveat: a greedy (argmax) policy's log-probabilities are not those of a sampling policy, so the
 * PPO ratio is only approximate for greedy data; use `decide(input, { explore })` for data
 * meant for training.
 */
export class MappoTrainer {
  readonly mappo: Mappo;

  constructor(options: MappoTrainerOptions = {}) {
    const mappoOptions = { ...TRADING_MAPPO_OPTIONS, ...options.mappo, seed: options.seed ?? options.mappo?.seed ?? 1 };
    this.mappo = options.snapshot ? Mappo.fromSnapshot(options.snapshot, options.mappo ?? {}) : new Mappo(TRADING_TEAM_SPEC, mappoOptions);
    this.mappo.threads = options.threads ?? true;
  }

  /** Splits transitions into trajectories (see the class comment). */
  static trajectories(transitions: readonly Transition[]): { trajectories: Trajectory[]; bootstrapOnly: number } {
    const bySymbol = new Map<string, Transition[]>();
    for (const t of transitions) {
      const list = bySymbol.get(t.symbol) ?? [];
      list.push(t);
      bySymbol.set(t.symbol, list);
    }
    const out: Trajectory[] = [];
    let bootstrapOnly = 0;
    for (const symbol of [...bySymbol.keys()].sort()) {
      const list = (bySymbol.get(symbol) as Transition[]).sort((a, b) => a.ts - b.ts);
      let run: Transition[] = [];
      const flush = (terminal: boolean): void => {
        if (run.length === 0) return;
        if (terminal) out.push({ steps: run.map(toStep), terminal: true });
        else {
          bootstrapOnly++;
          const last = run[run.length - 1] as Transition;
          if (run.length > 1) out.push({ steps: run.slice(0, -1).map(toStep), terminal: false, nextState: last.global_state });
        }
        run = [];
      };
      for (const t of list) {
        const prev = run[run.length - 1];
        if (prev && t.ts - prev.ts > TIMEFRAME_MS['5m']) flush(false);
        if (prev && t.ts === prev.ts) continue; // duplicate delivery
        run.push(t);
        if (t.done) flush(true);
      }
      flush(false);
    }
    return { trajectories: out, bootstrapOnly };
  }

  /** One PPO update on a batch of transitions. */
  async update(transitions: readonly Transition[]): Promise<{ metrics: TrainerUpdateMetrics }> {
    const { trajectories, bootstrapOnly } = MappoTrainer.trajectories(transitions);
    if (trajectories.length === 0) throw new RangeError('no trainable transitions (need at least two consecutive per symbol, or done)');
    const m = await this.mappo.update(trajectories);
    return { metrics: { ...m, transitions: transitions.length, trajectories: trajectories.length, bootstrapOnly } };
  }

  /** The current actors as an inference policy with the given version name. */
  policy(version: string, costs?: typeof DEFAULT_COSTS): TacticalPolicy {
    return new TacticalPolicy(version, this.mappo.actors.map((a) => a.getWeights()), costs);
  }

  snapshot(): MappoSnapshot {
    return this.mappo.snapshot();
  }

  dispose(): void {
    this.mappo.dispose();
  }
}

function toStep(t: Transition): Step {
  return {
    obs: [t.observations.tactical, t.observations.risk, t.observations.execution],
    state: t.global_state,
    actions: [t.actions.tactical, t.actions.risk, t.actions.execution],
    logProbs: [t.log_probs.tactical, t.log_probs.risk, t.log_probs.execution],
    reward: t.reward,
  };
}
