import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TacticalPolicy } from '../../../src/learning/policy';
import { BUNDLED_MODEL_DIR, openModelRegistry } from '../../../src/state/model-files';

describe('registry seeding', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'registry-seed-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a fresh registry starts with the seed registry’s promoted model, once, even with two seeders at once', async () => {
    const source = openModelRegistry(join(dir, 'source'));
    const trained = TacticalPolicy.initial(5);
    await source.save(TacticalPolicy.initial(4), { parent: null });
    const v = await source.save(trained, { parent: null, metrics: { sharpe: 1 } });
    await source.promote(v);
    const a = openModelRegistry(join(dir, 'fresh'), { seedFrom: join(dir, 'source') });
    const b = openModelRegistry(join(dir, 'fresh'), { seedFrom: join(dir, 'source') });
    expect(await Promise.all([a.latestPromoted(), b.latestPromoted()])).toEqual(['v0001', 'v0001']);
    expect(await a.list()).toEqual(['v0001']);
    const loaded = await TacticalPolicy.load(a);
    expect(Array.from(loaded.actorWeights()[0]!.data)).toEqual(Array.from(trained.actorWeights()[0]!.data));
    expect((await a.meta('v0001')).metrics?.seeded_from).toBe(`bundled ${v}`);
    // Without seedFrom nothing is seeded; a registry rolled back to the initial policy stays there.
    expect(await openModelRegistry(join(dir, 'plain')).latestPromoted()).toBeNull();
    expect(await a.rollback()).toBeNull();
    expect(await a.latestPromoted()).toBeNull();
  }, 30_000);

  it('fails clearly when the seed registry has no promoted version', async () => {
    const r = openModelRegistry(join(dir, 'fresh'), { seedFrom: join(dir, 'missing') });
    await expect(r.latestPromoted()).rejects.toThrow(/has no promoted version/);
  });

  it('the repository ships a promoted, offline-trained model with its provenance', async () => {
    expect(existsSync(BUNDLED_MODEL_DIR)).toBe(true);
    const shipped = openModelRegistry(BUNDLED_MODEL_DIR, { keepVersions: 0 });
    const version = await shipped.latestPromoted();
    expect(version).not.toBeNull();
    const meta = await shipped.meta(version!);
    expect(meta.metrics?.offline).toMatchObject({ seed: 1, trainFraction: 2 / 3 });
    const policy = await TacticalPolicy.load(shipped);
    expect(Array.from(policy.actorWeights()[0]!.data)).not.toEqual(Array.from(TacticalPolicy.initial(1).actorWeights()[0]!.data));
    // Each actor is shipped in ONNX too.
    expect(meta.networks.filter((n) => n.onnx).map((n) => n.name)).toEqual(['tactical', 'risk', 'execution']);
  });
});
