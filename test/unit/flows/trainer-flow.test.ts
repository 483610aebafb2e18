import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ExperienceSchema } from '../../../schemas/experience.schema';
import { TrainerFlow } from '../../../src/flows/trainer-flow';
import {
  MappoTrainer,
  promotionVerdict,
  TacticalPolicy,
} from '../../../src/learning';
import { experience } from '../../fixtures/experience';
import type { ExperienceTransition } from '../../../src/flows/agent-stage';
import { openModelRegistry } from '../../../src/state/model-files';

const log = pino({ level: 'silent' });
/** The same experience `ms` later (the transition's ts and its market bar's). */
const later = (t: ExperienceTransition, ms: number): ExperienceTransition => ({ ...t, ts: t.ts + ms, market: { ...t.market, bar: { ...t.market.bar, ts: t.market.bar.ts + ms } } });

describe('TrainerFlow', () => {
  let dir: string;
  const batch = experience(['AAA', 'BBB'], 40, 7);

  beforeAll(async () => {
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
    const flow = await TrainerFlow.create({ registry: openModelRegistry(dir), batchSize: 80, seed: 1, log });
    const shuffled = [...batch].reverse();
    const { training, window } = flow.split(shuffled);
    expect(training).toHaveLength(64); // 32 of each symbol's 40
    const last = (s: string) => batch.filter((t) => t.symbol === s).map((t) => t.ts);
    const a = last('AAA');
    const b = last('BBB');
    expect(window.id).toBe(`AAA:${a[32]}-${a[39]},BBB:${b[32]}-${b[39]}`);
    // 14 training bars before each segment warm the backtest's state; they are not evaluated.
    expect(window.series.map((s) => [s.symbol, s.from, s.series.bars.length])).toEqual([
      ['AAA', 14, 22],
      ['BBB', 14, 22],
    ]);
    expect(Math.max(...training.filter((t) => t.symbol === 'AAA').map((t) => t.ts))).toBeLessThan(a[32]!);
    // The initial flow starts from the workers' initial policy.
    const initial = TacticalPolicy.initial(1);
    expect(flow.evaluate(initial, window)).toEqual(flow.evaluate(initial, flow.split(batch).window));
  });

  it('saves a candidate with parent null, evaluates the seeded initial team as its parent, and decides by promotionVerdict', async () => {
    const registry = openModelRegistry(dir);
    const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log });
    const out = await flow.train(batch);
    if (out.skipped) throw new Error('not trained');
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
    // 2 × 8 held-out bars (14 returns) are far from the 2,000 a promotion needs.
    expect(out.promoted).toBe(false);
    expect(out.verdict.reason).toMatch(/14 bars, promotion needs 2000/);
    expect(out.promoted).toBe(promotionVerdict(flow.run(TacticalPolicy.initial(1), window).run, flow.run(TacticalPolicy.initial(1), window).run).promote);
    expect(await registry.latestPromoted()).toBeNull();
    expect(out.update.transitions).toBe(64);
    expect(out.stale).toBe(0);
  }, 30_000);

  it('trains from the promoted version and records it as the parent', async () => {
    const registry = openModelRegistry(dir);
    const seedTrainer = new MappoTrainer({ seed: 3 });
    const v1 = await registry.save(seedTrainer, { parent: null });
    seedTrainer.dispose();
    await registry.promote(v1);
    const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log });
    const evaluated: string[] = [];
    const real = flow.run.bind(flow);
    jest.spyOn(flow, 'run').mockImplementation((policy, w) => {
      evaluated.push(policy.version);
      return real(policy, w);
    });
    // The experience was made by v1, the promoted version (stale experience is not trained on).
    const out = await flow.train(batch.map((t) => ({ ...t, model_version: v1 })));
    if (out.skipped) throw new Error('not trained');
    expect(out.version).toBe('v0002');
    expect(out.parent).toBe(v1);
    expect((await registry.meta(out.version)).parent).toBe(v1);
    expect(evaluated).toEqual([v1, 'candidate']);
    const { window } = flow.split(batch);
    expect(out.parentMetrics?.sharpe).toBe(real(await registry.load(v1), window).metrics.sharpe);
    expect(out.stale).toBe(0);
  }, 30_000);

  it('saves but does not promote a candidate that does not beat its parent by a bootstrap margin; promotes one that does', async () => {
    const registry = openModelRegistry(dir);
    const permissive = { minHeldOutBars: 0 };
    const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, promotion: permissive, log });
    const real = flow.run.bind(flow);
    const n = 16;
    const fake = (returns: number[], turnover = 3, share = 0.5) => ({ returns, turnover, dominantActionShare: share });
    const noise = Array.from({ length: n }, (_, i) => (i % 2 ? 0.001 : -0.001) * (1 + (i % 3)));
    // A tie: the candidate runs exactly like its parent.
    jest.spyOn(flow, 'run').mockImplementation((policy, w) => ({ ...real(policy, w), run: fake(noise) }));
    const out = await flow.train(batch);
    if (out.skipped) throw new Error('not trained');
    expect(out.promoted).toBe(false);
    expect(out.verdict.reason).toMatch(/does not clear the margin/);
    expect(await registry.list()).toEqual(['v0001']);
    expect(await registry.latestPromoted()).toBeNull();
    expect((await registry.meta('v0001')).metrics?.promoted).toBe(false);
    expect(flow.parent).toBeNull();

    // A candidate that never trades is not promoted even when its parent loses money.
    jest.spyOn(flow, 'run').mockImplementation((policy, w) => ({
      ...real(policy, w),
      run: policy.version === 'candidate' ? fake(noise.map(() => 0), 0, 1) : fake(noise.map((r) => r - 0.002)),
    }));
    const flat = await flow.train(batch.slice(1));
    if (flat.skipped) throw new Error('not trained');
    expect(flat.promoted).toBe(false);
    expect(flat.verdict.reason).toMatch(/never trades/);

    // The next batch still trains from the promoted (initial) team; a candidate clearly better on
    // every resample is promoted.
    jest.spyOn(flow, 'run').mockImplementation((policy, w) => ({
      ...real(policy, w),
      run: policy.version === 'candidate' ? fake(noise.map((r) => r + 0.003)) : fake(noise),
    }));
    const next = await flow.train(batch.slice(2));
    if (next.skipped) throw new Error('not trained');
    expect(next.parent).toBeNull();
    expect(next.promoted).toBe(true);
    expect(next.verdict.sharpeGain!.lo).toBeGreaterThan(0.5);
    expect(await registry.latestPromoted()).toBe('v0003');
    expect(flow.parent).toBe('v0003');
  }, 60_000);

  it('trains on experience of the current version only, counting the stale, and skips a batch with none', async () => {
    const registry = openModelRegistry(dir);
    const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log });
    // Half of AAA's training bars were made by an older version.
    const mixed = batch.map((t, i) => (t.symbol === 'AAA' && i % 2 === 0 ? { ...t, model_version: 'v0042' } : t));
    const out = await flow.train(mixed);
    if (out.skipped) throw new Error('not trained');
    expect(out.stale).toBe(16);
    expect(out.update.transitions).toBe(48);
    expect((await registry.meta(out.version)).metrics?.stale_transitions).toBe(16);
    const old = await flow.train(batch.map((t) => ({ ...later(t, 1e9), model_version: 'v0042' })));
    expect(old).toMatchObject({ skipped: true, version: null, stale: 64, promoted: false });
    expect(await registry.list()).toEqual(['v0001']);
  }, 30_000);

  it('is idempotent across restarts: the same batch again gives the saved version, no new one', async () => {
    const registry = openModelRegistry(dir);
    const first = await (await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log })).train(batch);
    // A restarted trainer receives the batch again, redelivered in another order.
    const again = await (await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log })).train([...batch].reverse());
    expect(again).toMatchObject({ skipped: false, replayed: true, version: first.version, promoted: first.promoted });
    expect(await registry.list()).toEqual(['v0001']);
    expect(TrainerFlow.batchId(batch)).toBe(TrainerFlow.batchId([...batch].reverse()));
    expect(TrainerFlow.batchId(batch)).not.toBe(TrainerFlow.batchId(batch.slice(1)));
  }, 30_000);

  it('keeps a rolling held-out window across batches in the registry, bounded by heldOutBars', async () => {
    const registry = openModelRegistry(dir);
    const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, heldOutBars: 32, log });
    const second = experience(['AAA', 'BBB'], 40, 8).map((t) => later(t, 40 * 300_000));
    const a = await flow.train(batch);
    const b = await flow.train(second);
    if (a.skipped || b.skipped) throw new Error('not trained');
    // 8 held-out bars per symbol and batch, 7 returns each.
    expect(a.verdict.heldOutBars).toBe(14);
    expect(b.verdict.heldOutBars).toBe(28); // both batches' segments
    const third = experience(['AAA', 'BBB'], 40, 9).map((t) => later(t, 80 * 300_000));
    const c = await flow.train(third);
    if (c.skipped) throw new Error('not trained');
    expect(c.verdict.heldOutBars).toBe(28); // the oldest batch's dropped: at most 32 bars kept
    expect(c.candidate.window).not.toContain(String(a.candidate.window).split(',')[0]);
    const restarted = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, heldOutBars: 32, log });
    // Another batch (one transition by another version) whose held-out bars are already known.
    const again = await restarted.train(third.map((t, i) => (i === 0 ? { ...t, model_version: 'v0042' } : t)));
    if (again.skipped) throw new Error('not trained');
    expect(again.candidate.window).toBe(c.candidate.window);
  }, 60_000);

  it('is deterministic: the same batch and seed give the same weights and metrics', async () => {
    const dir2 = await mkdtemp(join(tmpdir(), 'trainer-flow-'));
    try {
      const run = async (d: string) => {
        const registry = openModelRegistry(d);
        const flow = await TrainerFlow.create({ registry, batchSize: 80, seed: 1, log });
        const out = await flow.train(batch);
        if (out.skipped) throw new Error('not trained');
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
    const flow = await TrainerFlow.create({ registry: openModelRegistry(dir), batchSize: 80, seed: 1, log });
    const one = ['A', 'B', 'C'].map((s) => ({ ...batch[0]!, symbol: s }));
    await expect(flow.train(one)).rejects.toThrow(/none to train on/);
  });
});
