import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ExperienceSchema } from '../../../schemas/experience.schema';
import { TrainerFlow } from '../../../src/flows/trainer-flow';
import {
  MappoTrainer,
  ModelRegistry,
  selectBackend,
  shouldPromote,
  TacticalPolicy,
} from '../../../src/learning';
import { experience } from '../../fixtures/experience';

const log = pino({ level: 'silent' });

describe('TrainerFlow', () => {
  let dir: string;
  const batch = experience(['AAA', 'BBB'], 40, 7);

  beforeAll(async () => {
    await selectBackend();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trainer-flow-'));
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  it('builds experience that the wire schema accepts', () => {
    expect(batch).toHaveLength(80);
    for (const t of batch) expect(ExperienceSchema.safeParse(JSON.parse(JSON.stringify(t))).success).toBe(true);
  });

  it('holds out the latest bars of each symbol and names the window by symbols and ts ranges', async () => {
    const flow = await TrainerFlow.create({ registry: new ModelRegistry(dir), batchSize: 80, seed: 1, log });
    const shuffled = [...batch].reverse();
    const { training, window } = flow.split(shuffled);
    expect(training).toHaveLength(64); // 32 of each symbol's 40
    const last = (s: string) => batch.filter((t) => t.symbol === s).map((t) => t.ts);
    const a = last('AAA');
    const b = last('BBB');
    expect(window.id).toBe(`AAA:${a[32]}-${a[39]},BBB:${b[32]}-${b[39]}`);
    expect(window.series.map((s) => [s.symbol, s.from, s.series.bars.length])).toEqual([
      ['AAA', 32, 40],
      ['BBB', 32, 40],
    ]);
    expect(Math.max(...training.filter((t) => t.symbol === 'AAA').map((t) => t.ts))).toBeLessThan(a[32]!);
    // The initial flow starts from the workers' initial policy.
    const initial = TacticalPolicy.initial(1);
    expect(flow.evaluate(initial, window)).toEqual(flow.evaluate(initial, flow.split(batch).window));
  });

  it('saves a candidate with parent null, evaluates the seeded initial team as its parent, and promotes by shouldPromote', async () => {
    const registry = new ModelRegistry(dir);
    const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log });
    const out = await flow.train(batch);
    expect(out.version).toBe('v0001');
    expect(out.parent).toBeNull();
    const meta = await registry.meta(out.version);
    expect(meta.parent).toBeNull();
    expect(meta.metrics?.sharpe).toBe(out.candidate.sharpe);
    expect(meta.metrics?.window).toBe(out.candidate.window);
    expect(meta.metrics?.parent_sharpe).toBe(out.parentMetrics?.sharpe);
    expect(out.parentMetrics?.window).toBe(out.candidate.window);
    // The parent of the first candidate is the initial policy the workers ran.
    const { window } = flow.split(batch);
    expect(out.parentMetrics?.sharpe).toBe(flow.evaluate(TacticalPolicy.initial(1), window).sharpe);
    expect(out.promoted).toBe(shouldPromote(out.candidate, out.parentMetrics));
    expect(await registry.latestPromoted()).toBe(out.promoted ? out.version : null);
    expect(out.update.transitions).toBe(64);
  }, 30_000);

  it('trains from the promoted version and records it as the parent', async () => {
    const registry = new ModelRegistry(dir);
    const seedTrainer = new MappoTrainer({ seed: 3 });
    const v1 = await registry.save(seedTrainer, { parent: null });
    seedTrainer.dispose();
    await registry.promote(v1);
    const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log });
    const evaluated: string[] = [];
    const real = flow.evaluate.bind(flow);
    jest.spyOn(flow, 'evaluate').mockImplementation((policy, w) => {
      evaluated.push(policy.version);
      return real(policy, w);
    });
    const out = await flow.train(batch);
    expect(out.version).toBe('v0002');
    expect(out.parent).toBe(v1);
    expect((await registry.meta(out.version)).parent).toBe(v1);
    expect(evaluated).toEqual([v1, 'candidate']);
    const { window } = flow.split(batch);
    expect(out.parentMetrics?.sharpe).toBe(real(await registry.load(v1), window).sharpe);
  }, 30_000);

  it('saves but does not promote a candidate whose held-out Sharpe is below its parent’s', async () => {
    const registry = new ModelRegistry(dir);
    const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log });
    const real = flow.evaluate.bind(flow);
    // Make the parent look better than the candidate on the same window.
    jest.spyOn(flow, 'evaluate').mockImplementation((policy, w) => {
      const m = real(policy, w);
      return policy.version === 'candidate' ? m : { ...m, sharpe: Math.max(m.sharpe, 0) + 1 };
    });
    const out = await flow.train(batch);
    expect(out.promoted).toBe(false);
    expect(out.candidate.sharpe).toBeLessThan(out.parentMetrics!.sharpe);
    expect(await registry.list()).toEqual(['v0001']);
    expect(await registry.latestPromoted()).toBeNull();
    expect((await registry.meta('v0001')).metrics?.promoted).toBe(false);
    expect(flow.parent).toBeNull();

    // The next batch still trains from the promoted (initial) team, and a better candidate is promoted.
    jest.spyOn(flow, 'evaluate').mockImplementation((policy, w) => {
      const m = real(policy, w);
      return policy.version === 'candidate' ? { ...m, sharpe: 10 } : m;
    });
    const next = await flow.train(batch);
    expect(next.parent).toBeNull();
    expect(next.promoted).toBe(true);
    expect(await registry.latestPromoted()).toBe('v0002');
    expect(flow.parent).toBe('v0002');
    // Both candidates came from the same parent and batch: same weights.
    const w1 = await registry.loadActorWeights('v0001');
    const w2 = await registry.loadActorWeights('v0002');
    expect(Array.from(w2[0]!.data)).toEqual(Array.from(w1[0]!.data));
  }, 40_000);

  it('is deterministic: the same batch and seed give the same weights and metrics', async () => {
    const dir2 = await mkdtemp(join(tmpdir(), 'trainer-flow-'));
    try {
      const run = async (d: string) => {
        const registry = new ModelRegistry(d);
        const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log });
        const out = await flow.train(batch);
        return { out, weights: (await registry.loadActorWeights(out.version)).map((w) => Array.from(w.data)) };
      };
      const a = await run(dir);
      const b = await run(dir2);
      expect(b.out).toEqual(a.out);
      expect(b.weights).toEqual(a.weights);
      expect(a.weights[0]).not.toEqual(Array.from(TacticalPolicy.initial(1).actorWeights()[0]!.data));
    } finally {
      await rm(dir2, { recursive: true, force: true });
    }
  }, 40_000);

  it('refuses a batch with nothing to train on, with a reason', async () => {
    const flow = await TrainerFlow.create({ registry: new ModelRegistry(dir), batchSize: 80, seed: 1, log });
    const one = ['A', 'B', 'C'].map((s) => ({ ...batch[0]!, symbol: s }));
    await expect(flow.train(one)).rejects.toThrow(/none to train on/);
  });
});
