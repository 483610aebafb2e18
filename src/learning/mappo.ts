import { SeededRandom } from '../util/random';
import { Mlp, type MlpWeights } from './network';
import { inferenceNet, type InferenceNet } from './simd-dense-net';
import { SimdMlp, trainModule } from './simd-mlp';
import { SimdWorker } from './simd-pool';
import { simdActorStep, simdCriticStep, type ActorStepMetrics as ActorStepMetricsLike } from './simd-steps';

/** The actor the training worker takes (the last one, execution), besides the critic. */
const WORKER_ACTOR = 2;

/**
 * Multi-agent PPO with a centralised critic (MAPPO), following the on-policy reference of
 * marlbenchmark (`r_mappo.py`, `shared_buffer.py`, `valuenorm.py`): one actor per agent on its own
 * observation, one critic on the global state, shared team reward, GAE, clipped surrogate, clipped
 * value loss on running-normalised returns, entropy bonus, Adam with global-norm clipping.
 */

/** Hyper-parameters of {@link Mappo}; every field is optional and documented with its default. */
export interface MappoOptions {
  /** Seed of initial weights, minibatch shuffling and action sampling. @defaultValue 1 */
  seed?: number;
  /** PPO ratio clip ε. @defaultValue 0.2 */
  clipParam?: number;
  /** Value clip around the old (normalised) value prediction. @defaultValue 0.2 */
  valueClipParam?: number;
  /** Use the clipped value loss max(L(v), L(v_clipped)). @defaultValue true */
  useClippedValueLoss?: boolean;
  /** Discount γ. @defaultValue 0.99 */
  gamma?: number;
  /** GAE λ. @defaultValue 0.95 */
  gaeLambda?: number;
  /** Entropy bonus coefficient. @defaultValue 0.01 */
  entropyCoef?: number;
  /** Weight of the value loss. @defaultValue 1 */
  valueLossCoef?: number;
  /** Huber loss (δ = huberDelta) for the value instead of squared error. @defaultValue true */
  useHuberLoss?: boolean;
  /** @defaultValue 10 */
  huberDelta?: number;
  /** Running mean/std normalisation of value targets (ValueNorm). @defaultValue true */
  useValueNorm?: boolean;
  /** ValueNorm's exponential weight β (debiased). @defaultValue 0.99999 */
  valueNormBeta?: number;
  /** Normalise advantages over the active samples of each update. @defaultValue true */
  normalizeAdvantages?: boolean;
  /** Actor Adam learning rate. @defaultValue 5e-4 */
  actorLr?: number;
  /** Critic Adam learning rate. @defaultValue 5e-4 */
  criticLr?: number;
  /** Adam ε. @defaultValue 1e-5 */
  adamEps?: number;
  /** Global-norm gradient clip per network. @defaultValue 10 */
  maxGradNorm?: number;
  /** Passes over each batch. @defaultValue 15 */
  ppoEpochs?: number;
  /** Minibatches per pass. @defaultValue 1 */
  numMiniBatch?: number;
  /** Orthogonal gain of the policy heads. @defaultValue 0.01 */
  policyHeadGain?: number;
  /** Orthogonal gain of hidden layers. @defaultValue √2 (ReLU) */
  hiddenGain?: number;
}

export type ResolvedMappoOptions = Required<MappoOptions>;

export const MAPPO_DEFAULTS: ResolvedMappoOptions = Object.freeze({
  seed: 1,
  clipParam: 0.2,
  valueClipParam: 0.2,
  useClippedValueLoss: true,
  gamma: 0.99,
  gaeLambda: 0.95,
  entropyCoef: 0.01,
  valueLossCoef: 1,
  useHuberLoss: true,
  huberDelta: 10,
  useValueNorm: true,
  valueNormBeta: 0.99999,
  normalizeAdvantages: true,
  actorLr: 5e-4,
  criticLr: 5e-4,
  adamEps: 1e-5,
  maxGradNorm: 10,
  ppoEpochs: 15,
  numMiniBatch: 1,
  policyHeadGain: 0.01,
  hiddenGain: Math.SQRT2,
});

/** One agent: its observation size, number of discrete actions and hidden layer sizes. */
export interface AgentSpec {
  name: string;
  obsDim: number;
  nActions: number;
  hidden: readonly number[];
}

/** The team: the agents and the critic's global state size and hidden layers. */
export interface TeamSpec {
  agents: readonly AgentSpec[];
  stateDim: number;
  criticHidden: readonly number[];
}

/** One time step of a team trajectory. */
export interface Step {
  /** Observation of each agent, in the order of {@link TeamSpec.agents}. */
  obs: ArrayLike<number>[];
  /** Global state seen by the critic. */
  state: ArrayLike<number>;
  actions: number[];
  /** Log-probability of each action under the policy that acted. */
  logProbs: number[];
  /** Team reward received after this step. */
  reward: number;
  /** Whether each agent acted at this step (inactive agents get no policy gradient). @defaultValue all true */
  active?: boolean[];
}

/** A run of consecutive steps of one environment. */
export interface Trajectory {
  steps: Step[];
  /** The episode ended after the last step: bootstrap with 0. Otherwise with V(nextState). */
  terminal: boolean;
  /** Global state after the last step; required when not terminal. */
  nextState?: ArrayLike<number>;
}

/**
 * Generalised advantage estimation over one trajectory:
 * δ_t = r_t + γ V_{t+1} − V_t, A_t = δ_t + γλ A_{t+1}, returns R_t = A_t + V_t,
 * with V_T = `nextValue` (0 for a terminal trajectory).
 */
export function computeGae(
  rewards: readonly number[],
  values: readonly number[],
  nextValue: number,
  gamma: number,
  lambda: number,
): { advantages: number[]; returns: number[] } {
  const n = rewards.length;
  const advantages = new Array<number>(n).fill(0);
  const returns = new Array<number>(n).fill(0);
  let gae = 0;
  for (let t = n - 1; t >= 0; t--) {
    const vNext = t + 1 < n ? (values[t + 1] as number) : nextValue;
    const delta = (rewards[t] as number) + gamma * vNext - (values[t] as number);
    gae = delta + gamma * lambda * gae;
    advantages[t] = gae;
    returns[t] = gae + (values[t] as number);
  }
  return { advantages, returns };
}

/** Serialised state of a {@link ValueNorm}. */
export interface ValueNormState {
  runningMean: number;
  runningMeanSq: number;
  debiasingTerm: number;
}

/**
 * Running mean/std of value targets with a debiased exponential moving average (marlbenchmark's
 * ValueNorm): mean = m/d, var = max(m₂/d − mean², 1e-2), with m ← βm + (1−β)·batchMean, etc.
 */
export class ValueNorm {
  private m = 0;
  private m2 = 0;
  private d = 0;

  constructor(readonly beta = 0.99999, readonly epsilon = 1e-5) {}

  update(batch: readonly number[]): void {
    if (batch.length === 0) return;
    let s = 0;
    let s2 = 0;
    for (const x of batch) {
      s += x;
      s2 += x * x;
    }
    const w = this.beta;
    this.m = w * this.m + (1 - w) * (s / batch.length);
    this.m2 = w * this.m2 + (1 - w) * (s2 / batch.length);
    this.d = w * this.d + (1 - w);
  }

  /** Debiased mean and variance. */
  stats(): { mean: number; variance: number } {
    const d = Math.max(this.d, this.epsilon);
    const mean = this.m / d;
    const variance = Math.max(this.m2 / d - mean * mean, 1e-2);
    return { mean, variance };
  }

  normalize(x: number): number {
    const { mean, variance } = this.stats();
    return (x - mean) / Math.sqrt(variance);
  }

  denormalize(x: number): number {
    const { mean, variance } = this.stats();
    return x * Math.sqrt(variance) + mean;
  }

  toJSON(): ValueNormState {
    return { runningMean: this.m, runningMeanSq: this.m2, debiasingTerm: this.d };
  }

  static fromJSON(state: ValueNormState, beta = 0.99999): ValueNorm {
    const v = new ValueNorm(beta);
    v.m = state.runningMean;
    v.m2 = state.runningMeanSq;
    v.d = state.debiasingTerm;
    return v;
  }
}

/** Softmax of logits (numerically stable, float64). */
export function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  const e: number[] = [];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = Math.exp((logits[i] as number) - max);
    e.push(v);
    sum += v;
  }
  return e.map((v) => v / sum);
}

/** Index of the largest value (the first on ties), so greedy choices are deterministic. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

/** Draws an index from a probability vector with one uniform of `rng`. */
export function sampleCategorical(probs: readonly number[], rng: SeededRandom): number {
  const u = rng.next();
  let acc = 0;
  for (let i = 0; i < probs.length; i++) {
    acc += probs[i] as number;
    if (u < acc) return i;
  }
  return probs.length - 1;
}

/** What the team did at one step. */
export interface TeamAction {
  actions: number[];
  logProbs: number[];
  probs: number[][];
}

/** Metrics of one {@link Mappo.update}. */
export interface MappoUpdateMetrics {
  samples: number;
  policyLoss: number[];
  entropy: number[];
  approxKl: number[];
  clipFraction: number[];
  actorGradNorm: number[];
  valueLoss: number;
  criticGradNorm: number;
  meanReturn: number;
  meanAdvantage: number;
}

/** Serialised team: options, specs, weights and value normaliser. */
export interface MappoSnapshot {
  spec: TeamSpec;
  options: ResolvedMappoOptions;
  actors: MlpWeights[];
  critic: MlpWeights;
  valueNorm: ValueNormState;
}

/**
 * Actors, critic and the PPO update. The minibatch steps (forward pass, backward pass, Adam) run in
 * WebAssembly SIMD ({@link SimdMlp}, simd-steps.ts); the unit tests hold them to tfjs's within 1e-5
 * (test/unit/learning/helpers/tfjs-oracle.ts).
 */
export class Mappo {
  readonly options: ResolvedMappoOptions;
  readonly actors: Mlp[];
  readonly critic: Mlp;
  readonly valueNorm: ValueNorm;
  /**
   * Train the execution actor and the critic in a worker thread while the
   * main thread trains the other two actors (same results to the bit). Where a second core or the
   * worker is unavailable the main thread does all four. Choose before the first update.
   * @defaultValue true
   */
  threads = true;
  private worker: SimdWorker | null | undefined;
  private readonly rng: SeededRandom;
  private simd: { actors: SimdMlp[]; critic: SimdMlp } | null = null;
  /** The batch-1 forward nets (the live path's, simd-dense-net.ts) of the actors and the critic, per weights revision. */
  private readonly forwardNets = new Map<Mlp, { revision: number; net: InferenceNet }>();

  constructor(readonly spec: TeamSpec, options: MappoOptions = {}, init?: MappoSnapshot) {
    this.options = { ...MAPPO_DEFAULTS, ...options };
    const o = this.options;
    const initRng = new SeededRandom(o.seed);
    this.rng = new SeededRandom((o.seed ^ 0x5bd1e995) >>> 0);
    this.actors = spec.agents.map((a, i) =>
      init
        ? Mlp.fromWeights(init.actors[i] as MlpWeights)
        : Mlp.create([a.obsDim, ...a.hidden, a.nActions], initRng, { hiddenGain: o.hiddenGain, outputGain: o.policyHeadGain }),
    );
    this.critic = init
      ? Mlp.fromWeights(init.critic)
      : Mlp.create([spec.stateDim, ...spec.criticHidden, 1], initRng, { hiddenGain: o.hiddenGain, outputGain: 1 });
    this.valueNorm = init ? ValueNorm.fromJSON(init.valueNorm, o.valueNormBeta) : new ValueNorm(o.valueNormBeta);
  }

  /** Threads the last update trained on: 2 with the worker, else 1. */
  get trainingThreads(): number {
    return this.worker ? 2 : 1;
  }

  /** The training worker, started and given its networks on first use (null: train in this thread). */
  private async trainingWorker(): Promise<SimdWorker | null> {
    if (!this.threads || this.actors.length <= WORKER_ACTOR) return null;
    if (this.worker === undefined) {
      const worker = SimdWorker.start();
      const o = this.options;
      if (worker) {
        await worker.init(WORKER_ACTOR, (this.actors[WORKER_ACTOR] as Mlp).sizes, { learningRate: o.actorLr, beta1: 0.9, beta2: 0.999, epsilon: o.adamEps });
        await worker.init(this.actors.length, this.critic.sizes, { learningRate: o.criticLr, beta1: 0.9, beta2: 0.999, epsilon: o.adamEps });
      }
      this.worker = worker;
    }
    if (this.worker) {
      await this.worker.load(WORKER_ACTOR, (this.actors[WORKER_ACTOR] as Mlp).getWeights().data);
      await this.worker.load(this.actors.length, this.critic.getWeights().data);
    }
    return this.worker;
  }

  /**
   * The SIMD networks (they hold the Adam moments), given the current weights: reloaded when
   * `reload` (every update starts so) or when never loaded; between updates they hold the weights
   * the last update wrote back.
   */
  private simdNets(reload = true): { actors: SimdMlp[]; critic: SimdMlp } {
    if (!reload && this.simd !== null) return this.simd;
    const module = trainModule();
    const o = this.options;
    this.simd ??= {
      actors: this.actors.map((a) => new SimdMlp(a.sizes, { learningRate: o.actorLr, beta1: 0.9, beta2: 0.999, epsilon: o.adamEps }, module)),
      critic: new SimdMlp(this.critic.sizes, { learningRate: o.criticLr, beta1: 0.9, beta2: 0.999, epsilon: o.adamEps }, module),
    };
    this.actors.forEach((a, i) => (this.simd?.actors[i] as SimdMlp).setWeights(a.getWeights().data));
    this.simd.critic.setWeights(this.critic.getWeights().data);
    return this.simd;
  }

  static fromSnapshot(snapshot: MappoSnapshot, options: MappoOptions = {}): Mappo {
    return new Mappo(snapshot.spec, { ...snapshot.options, ...options }, snapshot);
  }

  snapshot(): MappoSnapshot {
    return {
      spec: this.spec,
      options: { ...this.options },
      actors: this.actors.map((a) => a.getWeights()),
      critic: this.critic.getWeights(),
      valueNorm: this.valueNorm.toJSON(),
    };
  }

  /** The batch-1 forward pass of a network's current weights: the one live decisions use. */
  private forwardNet(mlp: Mlp): InferenceNet {
    let cached = this.forwardNets.get(mlp);
    if (cached?.revision !== mlp.revision) {
      cached = { revision: mlp.revision, net: inferenceNet(mlp.getWeights()) };
      this.forwardNets.set(mlp, cached);
    }
    return cached.net;
  }

  /**
   * Chooses every agent's action from its own observation (the SIMD batch-1 forward pass of live
   * decisions, simd-dense-net.ts). `greedy` takes
   * the argmax; otherwise actions are sampled with `rng` (the learner's own generator by default).
   */
  act(obs: ArrayLike<number>[], greedy: boolean, rng: SeededRandom = this.rng): TeamAction {
    const actions: number[] = [];
    const logProbs: number[] = [];
    const probs: number[][] = [];
    this.actors.forEach((actor, i) => {
      const p = softmax(this.forwardNet(actor).forward(obs[i] as ArrayLike<number>));
      const a = greedy ? argmax(p) : sampleCategorical(p, rng);
      actions.push(a);
      logProbs.push(Math.log(Math.max(p[a] as number, 1e-12)));
      probs.push(p);
    });
    return { actions, logProbs, probs };
  }

  /**
   * Sampled actions of a batch of independent environments in one batched forward pass per actor
   * (SIMD; much faster than per-environment passes).
   * `obs[agent][env]` is the observation of an agent in an environment.
   */
  actBatch(obs: ArrayLike<number>[][], rng: SeededRandom = this.rng): TeamAction[] {
    const nEnv = (obs[0] as ArrayLike<number>[]).length;
    const simd = this.simdNets(false);
    const probsPerAgent = this.actors.map((_, a) => {
      const { obsDim: dim, nActions } = this.spec.agents[a] as AgentSpec;
      const flat = new Float32Array(nEnv * dim);
      (obs[a] as ArrayLike<number>[]).forEach((o, e) => flat.set(o, e * dim));
      const logits = (simd.actors[a] as SimdMlp).forward(flat, nEnv);
      return Array.from({ length: nEnv }, (_, e) => softmax(logits.subarray(e * nActions, (e + 1) * nActions)));
    });
    const out: TeamAction[] = [];
    for (let e = 0; e < nEnv; e++) {
      const team: TeamAction = { actions: [], logProbs: [], probs: [] };
      probsPerAgent.forEach((pa) => {
        const p = pa[e] as number[];
        const a = sampleCategorical(p, rng);
        team.actions.push(a);
        team.logProbs.push(Math.log(Math.max(p[a] as number, 1e-12)));
        team.probs.push(p);
      });
      out.push(team);
    }
    return out;
  }

  /** Denormalised value of a global state (the SIMD batch-1 forward pass, as in {@link act}). */
  value(state: ArrayLike<number>): number {
    const v = this.forwardNet(this.critic).forward(state)[0] as number;
    return this.options.useValueNorm ? this.valueNorm.denormalize(v) : v;
  }

  /**
   * One PPO update on a batch of trajectories collected with the current policy. The work is
   * synchronous; the promise (rejected on bad input) keeps the interface open to an asynchronous
   * engine.
   */
  async update(trajectories: readonly Trajectory[]): Promise<MappoUpdateMetrics> {
    const o = this.options;
    const nAgents = this.spec.agents.length;
    const steps: Step[] = [];
    for (const tr of trajectories) steps.push(...tr.steps);
    const n = steps.length;
    if (n === 0) throw new RangeError('update needs at least one step');

    const stateDim = this.spec.stateDim;
    const states = new Float32Array(n * stateDim);
    steps.forEach((s, i) => states.set(Array.from(s.state), i * stateDim));

    const simd = this.simdNets();
    const worker = await this.trainingWorker();
    // Old (normalised) value predictions of the critic that acted, then GAE on denormalised values.
    const oldValuesNorm = simd.critic.forward(states, n);
    const denorm = (v: number): number => (o.useValueNorm ? this.valueNorm.denormalize(v) : v);
    const advantages = new Float32Array(n);
    const returns = new Float32Array(n);
    let off = 0;
    for (const tr of trajectories) {
      const len = tr.steps.length;
      const values: number[] = [];
      for (let t = 0; t < len; t++) values.push(denorm(oldValuesNorm[off + t] as number));
      let nextValue = 0;
      if (!tr.terminal) {
        if (!tr.nextState) throw new RangeError('a non-terminal trajectory needs nextState');
        nextValue = this.value(tr.nextState);
      }
      const g = computeGae(
        tr.steps.map((s) => s.reward),
        values,
        nextValue,
        o.gamma,
        o.gaeLambda,
      );
      advantages.set(g.advantages, off);
      returns.set(g.returns, off);
      off += len;
    }
    const returnsList = Array.from(returns);
    if (o.useValueNorm) this.valueNorm.update(returnsList);
    const targets = Float32Array.from(returnsList, (r) => (o.useValueNorm ? this.valueNorm.normalize(r) : r));

    // Per-agent data.
    const masks = this.spec.agents.map((_, a) => Float32Array.from(steps, (s) => (s.active?.[a] === false ? 0 : 1)));
    const normAdv = normalizeAdvantages(advantages, masks, o.normalizeAdvantages);
    const obs = this.spec.agents.map((spec, a) => {
      const arr = new Float32Array(n * spec.obsDim);
      steps.forEach((s, i) => arr.set(Array.from(s.obs[a] as ArrayLike<number>), i * spec.obsDim));
      return arr;
    });
    const actions = this.spec.agents.map((_, a) => Int32Array.from(steps, (s) => s.actions[a] as number));
    const oldLogp = this.spec.agents.map((_, a) => Float32Array.from(steps, (s) => s.logProbs[a] as number));

    const metrics: MappoUpdateMetrics = {
      samples: n,
      policyLoss: new Array<number>(nAgents).fill(0),
      entropy: new Array<number>(nAgents).fill(0),
      approxKl: new Array<number>(nAgents).fill(0),
      clipFraction: new Array<number>(nAgents).fill(0),
      actorGradNorm: new Array<number>(nAgents).fill(0),
      valueLoss: 0,
      criticGradNorm: 0,
      meanReturn: returnsList.reduce((a, b) => a + b, 0) / n,
      meanAdvantage: advantages.reduce((a, b) => a + b, 0) / n,
    };

    const index = Array.from({ length: n }, (_, i) => i);
    const batchSize = Math.ceil(n / o.numMiniBatch);
    for (let epoch = 0; epoch < o.ppoEpochs; epoch++) {
      shuffle(index, this.rng);
      for (let mb = 0; mb < o.numMiniBatch; mb++) {
        const idx = index.slice(mb * batchSize, Math.min(n, (mb + 1) * batchSize));
        if (idx.length === 0) continue;
        const m = idx.length;
        const last = epoch === o.ppoEpochs - 1 && mb === o.numMiniBatch - 1;
        const record = (a: number, r: ActorStepMetricsLike): void => {
          if (!last) return;
          metrics.policyLoss[a] = r.policyLoss;
          metrics.entropy[a] = r.entropy;
          metrics.approxKl[a] = r.approxKl;
          metrics.clipFraction[a] = r.clipFraction;
          metrics.actorGradNorm[a] = r.gradNorm;
        };
        const recordCritic = (c: { valueLoss: number; gradNorm: number }): void => {
          if (!last) return;
          metrics.valueLoss = c.valueLoss;
          metrics.criticGradNorm = c.gradNorm;
        };
        const criticArgs = [gather(states, idx, stateDim), Float32Array.from(idx, (i) => oldValuesNorm[i] as number), Float32Array.from(idx, (i) => targets[i] as number), m] as const;
        // The worker's networks first, so that it computes while the main thread does the others.
        const jobs: Promise<void>[] = [];
        const order = worker ? [WORKER_ACTOR, ...this.actors.map((_, a) => a).filter((a) => a !== WORKER_ACTOR)] : this.actors.map((_, a) => a);
        if (worker) jobs.push(worker.criticStep(this.actors.length, o, ...criticArgs).then(recordCritic));
        for (const a of order) {
          const spec = this.spec.agents[a] as AgentSpec;
          const maskA = masks[a] as Float32Array;
          if (!idx.some((i) => (maskA[i] as number) > 0)) continue;
          const args = [
            gather(obs[a] as Float32Array, idx, spec.obsDim),
            Int32Array.from(idx, (i) => (actions[a] as Int32Array)[i] as number),
            Float32Array.from(idx, (i) => (oldLogp[a] as Float32Array)[i] as number),
            Float32Array.from(idx, (i) => (normAdv[a] as Float32Array)[i] as number),
            Float32Array.from(idx, (i) => maskA[i] as number),
            m,
          ] as const;
          if (worker && a === WORKER_ACTOR) jobs.push(worker.actorStep(a, o, spec.nActions, ...args).then((r) => record(a, r)));
          else record(a, simdActorStep(simd.actors[a] as SimdMlp, o, spec.nActions, ...args));
        }
        if (!worker) recordCritic(simdCriticStep(simd.critic, o, ...criticArgs));
        await Promise.all(jobs);
      }
    }
    if (worker) {
      // The networks the worker trained: their weights back into the main thread's copies.
      (simd.actors[WORKER_ACTOR] as SimdMlp).setWeights(await worker.weights(WORKER_ACTOR));
      simd.critic.setWeights(await worker.weights(this.actors.length));
    }
    this.actors.forEach((actor, a) => actor.setWeights({ sizes: [...actor.sizes], data: (simd.actors[a] as SimdMlp).getWeights() }));
    this.critic.setWeights({ sizes: [...this.critic.sizes], data: simd.critic.getWeights() });
    return metrics;
  }

  dispose(): void {
    this.worker?.terminate();
    this.worker = null;
  }
}

/**
 * Per agent: advantages normalised with the mean and std over the active samples of all agents
 * (the reference normalises over its [T, envs, agents] array with inactive entries masked out).
 */
export function normalizeAdvantages(adv: Float32Array, masks: Float32Array[], enabled: boolean): Float32Array[] {
  if (!enabled) return masks.map(() => adv);
  let s = 0;
  let s2 = 0;
  let c = 0;
  for (const mask of masks) {
    for (let i = 0; i < adv.length; i++) {
      if ((mask[i] as number) > 0) {
        const v = adv[i] as number;
        s += v;
        s2 += v * v;
        c++;
      }
    }
  }
  const mean = c > 0 ? s / c : 0;
  const std = c > 0 ? Math.sqrt(Math.max(s2 / c - mean * mean, 0)) : 1;
  const norm = Float32Array.from(adv, (v) => (v - mean) / (std + 1e-5));
  return masks.map(() => norm);
}

function gather(src: Float32Array, idx: readonly number[], dim: number): Float32Array {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((i, k) => out.set(src.subarray(i * dim, (i + 1) * dim), k * dim));
  return out;
}

function shuffle(a: number[], rng: SeededRandom): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = a[i] as number;
    a[i] = a[j] as number;
    a[j] = t;
  }
}
