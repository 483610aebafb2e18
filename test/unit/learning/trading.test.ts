import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend, tf, TfMlp } from './helpers/tfjs-oracle';
import { syntheticSeries } from '../../../src/learning/evaluation';
import { Mappo } from '../../../src/learning/mappo';
import { TacticalPolicy, type DecisionInput } from '../../../src/learning/policy';
import { promotionVerdict } from '../../../src/learning/registry';
import { openModelRegistry } from '../../../src/state/model-files';
import { collectEpisodes, TRADING_TEAM_SPEC, tradingParameterCounts } from '../../../src/learning/trading-agents';
import {
  act,
  advance,
  agentStateFromJSON,
  agentStateToJSON,
  initialAgentState,
  settle,
  type AgentState,
  type TradeDecision,
} from '../../../src/learning/trading-env';
import { MappoTrainer } from '../../../src/learning/trainer';
import { makeTransition, type Transition } from '../../../src/learning/transition';
import { SeededRandom } from '../../../src/util/random';

beforeAll(async () => {
  await selectBackend();
});

const costs = { takerFee: 0.0004, makerFee: 0.0001, halfSpread: 0.0002, limitOffsetVol: 0.25 };
const bar1 = { ts: 0, open: 100, high: 101, low: 99, close: 100, volume: 10 }; // range 2 % → rangeEma 0.02
const long = (execution: TradeDecision['execution']): TradeDecision => ({ tactical: 'LONG', risk: 1, execution, target_position: 1 });

function afterFirstBar(): AgentState {
  return settle(initialAgentState(), bar1, costs).state;
}

describe('trading environment cost accounting', () => {
  it('MARKET pays taker fee and half spread at the close, and the next bar pays the move', () => {
    const s = act(afterFirstBar(), long('MARKET'), costs);
    expect(s.position).toBe(1);
    expect(s.equity).toBeCloseTo(1 - 0.0006, 12);
    const next = settle(s, { ts: 300_000, open: 100, high: 102, low: 99.5, close: 101, volume: 10 }, costs);
    expect(next.state.equity).toBeCloseTo(0.9994 * 1.01, 12);
    expect(next.reward).toBeCloseTo((0.9994 * 1.01 - 1) / 0.02, 10);
  });

  it('LIMIT rests 0.25 vol below the close and fills at its price when the next low trades through', () => {
    const s = act(afterFirstBar(), long('LIMIT'), costs);
    expect(s.pending).toEqual({ delta: 1, limitPrice: 99.5 });
    expect(s.equity).toBe(1);
    const next = settle(s, { ts: 300_000, open: 100, high: 102, low: 99.4, close: 101, volume: 10 }, costs);
    const equity = (1 - 0.0001) * (101 / 99.5);
    expect(next.filled).toBe(true);
    expect(next.state.position).toBe(1);
    expect(next.state.entryPrice).toBe(99.5);
    expect(next.state.equity).toBeCloseTo(equity, 12);
    expect(next.reward).toBeCloseTo((equity - 1) / 0.02, 10);
    expect(next.state.pending).toBeNull();
  });

  it('LIMIT does not fill when the next bar only touches the limit price', () => {
    const s = act(afterFirstBar(), long('LIMIT'), costs);
    const next = settle(s, { ts: 300_000, open: 100, high: 102, low: 99.5, close: 101, volume: 10 }, costs);
    expect(next.filled).toBe(false);
    expect(next.state.position).toBe(0);
    expect(next.state.equity).toBe(1);
    expect(next.reward).toBe(0);
    expect(next.state.lastOrderUnfilled).toBe(true);
  });

  it('WAIT changes nothing and a short position gains when the price falls', () => {
    const s = act(afterFirstBar(), long('WAIT'), costs);
    expect(s.position).toBe(0);
    expect(s.pending).toBeNull();
    const short = act(afterFirstBar(), { tactical: 'SHORT', risk: 0.5, execution: 'MARKET', target_position: -0.5 }, costs);
    const next = settle(short, { ts: 300_000, open: 100, high: 100, low: 97, close: 98, volume: 10 }, costs);
    expect(next.state.equity).toBeCloseTo((1 - 0.5 * 0.0006) * (1 + -0.5 * -0.02), 12);
  });

  it('round-trips the agent state through JSON and advance() equals settle() then act()', () => {
    const s = advance(initialAgentState(), bar1, long('LIMIT'), costs).state;
    expect(agentStateFromJSON(agentStateToJSON(s))).toEqual(s);
    expect(s).toEqual(act(settle(initialAgentState(), bar1, costs).state, long('LIMIT'), costs));
    expect(() => agentStateFromJSON('{"v":2}')).toThrow(TypeError);
  });
});

describe('trading agents', () => {
  it('has about 102k parameters per actor', () => {
    expect(tradingParameterCounts()).toEqual({ tactical: 102_435, risk: 102_340, execution: 102_419, critic: 77_313 });
  });
});

function decisionInputs(n: number): DecisionInput[] {
  const [series] = syntheticSeries({ seeds: [5], bars: 120 });
  const out: DecisionInput[] = [];
  let state = initialAgentState();
  for (let t = 40; t < 40 + n; t++) {
    const bar = series!.bars[t]!;
    const strategic = t % 2 === 0 ? null : { regime_probabilities: { BULL: 0.7, BEAR: 0.1, SIDEWAYS: 0.1, VOLATILE: 0.1 }, uncertainty: 0.3, confidence: 'HIGH' as const, similar_patterns: { k: 5, mean_forward_return: 0.001, up_fraction: 0.6, mean_distance: 0.4 } };
    out.push({ indicators: series!.indicators[t]!, strategic, bar, agentState: state });
    state = advance(state, bar, { tactical: 'LONG', risk: 0.5, execution: 'MARKET', target_position: 0.5 }).state;
  }
  return out;
}

describe('TacticalPolicy', () => {
  it('computes the same action probabilities in plain JS as the tfjs actors', () => {
    const mappo = new Mappo(TRADING_TEAM_SPEC, { seed: 3, policyHeadGain: 1 });
    const policy = new TacticalPolicy('t', mappo.actors.map((a) => a.getWeights()));
    const refs = mappo.actors.map((a) => TfMlp.fromWeights(a.getWeights()));
    for (const input of decisionInputs(5)) {
      const d = policy.decide(input);
      const obs = [d.observations.tactical, d.observations.risk, d.observations.execution];
      const tfProbs = refs.map((a, i) => tf.tidy(() => Array.from(tf.softmax(a.forward(tf.tensor2d([obs[i]!]))).dataSync())));
      [d.probabilities.tactical, d.probabilities.risk, d.probabilities.execution].forEach((p, i) =>
        p.forEach((v, k) => expect(v).toBeCloseTo(tfProbs[i]![k]!, 5)),
      );
    }
    for (const r of refs) r.dispose();
    mappo.dispose();
  });

  it('is greedy, deterministic and reports a combined confidence in [0, 1]', () => {
    const a = TacticalPolicy.initial(7);
    const b = TacticalPolicy.initial(7);
    for (const input of decisionInputs(4)) {
      const d = a.decide(input);
      expect(b.decide(input)).toEqual(d);
      expect(d.actionIndices.tactical).toBe(d.probabilities.tactical.indexOf(Math.max(...d.probabilities.tactical)));
      expect(d.combined_confidence).toBeCloseTo(Math.cbrt(Math.exp(d.logProbs.tactical + d.logProbs.risk + d.logProbs.execution)), 10);
      expect(Math.abs(d.target_position)).toBeLessThanOrEqual(1);
    }
    expect(TacticalPolicy.initial(8).actorWeights()[0]!.data).not.toEqual(a.actorWeights()[0]!.data);
  });

  it('starts from the same actor weights as a Mappo team of the same seed', () => {
    const mappo = new Mappo(TRADING_TEAM_SPEC, { seed: 11 });
    const policy = TacticalPolicy.initial(11);
    mappo.actors.forEach((actor, i) => expect(Array.from(actor.getWeights().data)).toEqual(Array.from(policy.actorWeights()[i]!.data)));
    mappo.dispose();
  });
});

describe('ModelRegistry', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'registry-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('saves and loads a policy that makes identical decisions', async () => {
    const registry = openModelRegistry(dir);
    const mappo = new Mappo(TRADING_TEAM_SPEC, { seed: 4, policyHeadGain: 1 });
    const policy = new TacticalPolicy('x', mappo.actors.map((a) => a.getWeights()));
    const v = await registry.save(policy, { parent: null, metrics: { sharpe: 1.5 } });
    expect(v).toBe('v0001');
    const loaded = await registry.load(v);
    expect(loaded.version).toBe('v0001');
    for (const input of decisionInputs(4)) {
      const { model_version: _a, ...d1 } = policy.decide(input);
      const { model_version: _b, ...d2 } = loaded.decide(input);
      expect(d2).toEqual(d1);
    }
    expect((await registry.meta(v)).metrics).toEqual({ sharpe: 1.5 });
    mappo.dispose();
  });

  it('promotes, lists and rolls back versions', async () => {
    const registry = openModelRegistry(dir);
    expect(await registry.latestPromoted()).toBeNull();
    const v1 = await registry.save(TacticalPolicy.initial(1), { parent: null });
    const v2 = await registry.save(TacticalPolicy.initial(2), { parent: v1 });
    expect(await registry.list()).toEqual(['v0001', 'v0002']);
    await registry.promote(v1);
    await registry.promote(v2);
    expect(await registry.latestPromoted()).toBe(v2);
    expect((await TacticalPolicy.load(registry)).version).toBe(v2);
    expect(await registry.rollback()).toBe(v1);
    expect(await registry.latestPromoted()).toBe(v1);
    await expect(registry.promote('v0009')).rejects.toThrow();
  });

  it('promotes only on a paired bootstrap gain: never a tie, a worse candidate, a small window or a degenerate policy', () => {
    const rng = new SeededRandom(5);
    const market = Array.from({ length: 3000 }, () => rng.normal() * 0.002);
    const parent = { returns: market.map((r) => 0.5 * r), turnover: 40, dominantActionShare: 0.5 };
    const run = (returns: number[], turnover = 40, dominantActionShare = 0.5) => ({ returns, turnover, dominantActionShare });
    // A tie (identical runs) never promotes.
    expect(promotionVerdict(run(parent.returns), parent).promote).toBe(false);
    // A candidate with a clearly better edge on the same bars is promoted, with an interval above 0.
    const better = run(market.map((r, i) => 0.5 * r + 0.0004 + (i % 2 ? 1e-5 : -1e-5)));
    const v = promotionVerdict(better, parent);
    expect(v.promote).toBe(true);
    expect(v.sharpeGain!.lo).toBeGreaterThan(0.5);
    expect(v.sharpeGain!.estimate).toBeGreaterThan(v.sharpeGain!.lo);
    // The same candidate against itself or on too few bars is not.
    expect(promotionVerdict(better, better).promote).toBe(false);
    expect(promotionVerdict(run(better.returns.slice(0, 500)), run(parent.returns.slice(0, 500))).reason).toMatch(/500 bars, promotion needs 2000/);
    // Degenerate: never trades, or always the same position, whatever the returns say.
    expect(promotionVerdict(run(better.returns, 0), parent).reason).toMatch(/never trades/);
    expect(promotionVerdict(run(better.returns, 40, 0.995), parent).reason).toMatch(/same position in 99.5%/);
    // Slightly better but within noise: not promoted.
    const noisy = run(market.map((r, i) => 0.5 * r + (rng.normal() * 0.002) + (i % 2 ? 2e-6 : 0)));
    expect(promotionVerdict(noisy, parent).promote).toBe(false);
    expect(() => promotionVerdict(run([0, 0]), parent)).toThrow(/same held-out bars/);
  });
});

describe('MappoTrainer', () => {
  it('updates from transitions, saves with its critic and is deterministic for a seed', async () => {
    const series = syntheticSeries({ seeds: [9], bars: 400 });
    const run = async () => {
      const trainer = new MappoTrainer({ seed: 2, mappo: { ppoEpochs: 1 } });
      const { trajectories } = collectEpisodes(trainer.mappo, series, { rng: new SeededRandom(1), episodes: 2, steps: 20 });
      const transitions: Transition[] = [];
      trajectories.forEach((tr, e) =>
        tr.steps.forEach((s, k) => {
          transitions.push({
            v: 1,
            symbol: `S${e}`,
            ts: k * 300_000,
            model_version: 'p',
            observations: { tactical: Array.from(s.obs[0]!), risk: Array.from(s.obs[1]!), execution: Array.from(s.obs[2]!) },
            global_state: Array.from(s.state),
            actions: { tactical: s.actions[0]!, risk: s.actions[1]!, execution: s.actions[2]! },
            log_probs: { tactical: s.logProbs[0]!, risk: s.logProbs[1]!, execution: s.logProbs[2]! },
            reward: s.reward,
            done: false,
          });
        }),
      );
      const { metrics } = await trainer.update(transitions);
      return { trainer, metrics, weights: trainer.policy('p').actorWeights()[0]!.data };
    };
    const a = await run();
    const b = await run();
    expect(a.metrics.transitions).toBe(40);
    expect(a.metrics.samples).toBe(38); // one bootstrap-only transition per symbol
    expect(Array.from(a.weights)).toEqual(Array.from(b.weights));
    expect(Array.from(a.weights)).not.toEqual(Array.from(TacticalPolicy.initial(2).actorWeights()[0]!.data));
    const dir = await mkdtemp(join(tmpdir(), 'registry-'));
    try {
      const registry = openModelRegistry(dir);
      const v = await registry.save(a.trainer, { parent: null });
      const snap = await registry.loadSnapshot(v);
      expect(Array.from(snap.critic.data)).toEqual(Array.from(a.trainer.snapshot().critic.data));
    } finally {
      await rm(dir, { recursive: true, force: true });
      a.trainer.dispose();
      b.trainer.dispose();
    }
  }, 60_000);

  it('builds a transition from a decision', () => {
    const input = decisionInputs(1)[0]!;
    const d = TacticalPolicy.initial(1).decide(input);
    const t = makeTransition('BTCUSD', 0, d, 0.5);
    expect(t.actions).toEqual(d.actionIndices);
    expect(t.global_state).toHaveLength(43);
    expect(JSON.parse(JSON.stringify(t))).toEqual(t);
  });
});
