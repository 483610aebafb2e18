import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TacticalPolicy } from '../../../src/learning/policy';
import { ModelRegistry } from '../../../src/learning/registry';
import { openModelRegistry } from '../../../src/state/model-files';

/**
 * What the trainer does, batch after batch: save a candidate whose parent is the promoted version,
 * promote it when `promote(i)` says so.
 */
// Each save fsyncs several files: slow on a busy disk, so more time than jest's 5 s default.
jest.setTimeout(60_000);

let policies: TacticalPolicy[] = [];

async function train(
  registry: ModelRegistry,
  batches: number,
  promote: (i: number) => boolean,
): Promise<string[]> {
  if (policies.length === 0) policies = [0, 1, 2].map((seed) => TacticalPolicy.initial(seed));
  const saved: string[] = [];
  for (let i = 0; i < batches; i++) {
    const parent = await registry.latestPromoted();
    const v = await registry.save(policies[i % 3] as TacticalPolicy, {
      parent,
      metrics: { sharpe: i },
    });
    saved.push(v);
    if (promote(i)) await registry.promote(v);
  }
  return saved;
}

describe('ModelRegistry retention', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'registry-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops growing: keeps the newest K and the promoted lineage, deletes the rest', async () => {
    const registry = openModelRegistry(dir, { keepVersions: 5 });
    const promotedAt = new Set([2, 9, 17]);
    const counts: number[] = [];
    const saved: string[] = [];
    for (let round = 0; round < 6; round++) {
      saved.push(...(await train(registry, 5, (i) => promotedAt.has(round * 5 + i))));
      counts.push((await registry.list()).length);
    }
    expect(saved).toHaveLength(30);
    const kept = await registry.list();
    // The lineage v0003 → v0010 → v0018 (each trained from the one promoted before) and the last 5.
    expect(kept).toEqual(['v0003', 'v0010', 'v0018', 'v0026', 'v0027', 'v0028', 'v0029', 'v0030']);
    expect(Math.max(...counts)).toBeLessThanOrEqual(8);
    expect(await registry.latestPromoted()).toBe('v0018');
    // Everything kept still loads, and no temporary or trash directory is left behind.
    for (const v of kept) expect((await registry.meta(v)).version).toBe(v);
    expect(readdirSync(join(dir, 'versions')).filter((f) => f.startsWith('.'))).toEqual([]);
    // Rolling back along the lineage still works after pruning.
    expect(await registry.rollback()).toBe('v0010');
  });

  it('prunes the same versions when the same saves and promotions happen again', async () => {
    const a = openModelRegistry(join(dir, 'a'), { keepVersions: 3 });
    const b = openModelRegistry(join(dir, 'b'), { keepVersions: 3 });
    const promote = (i: number): boolean => i % 7 === 3;
    await train(a, 20, promote);
    await train(b, 20, promote);
    expect(await a.list()).toEqual(await b.list());
    expect((await a.list()).length).toBeLessThan(20);
  });

  it('numbers versions past v9999 in order', async () => {
    const registry = openModelRegistry(dir, { keepVersions: 0 });
    const { mkdirSync } = await import('node:fs');
    for (const v of ['v9998', 'v9999', 'v10000'])
      mkdirSync(join(dir, 'versions', v), { recursive: true });
    expect(await registry.list()).toEqual(['v9998', 'v9999', 'v10000']);
    expect(await registry.save(TacticalPolicy.initial(1), { parent: null })).toBe('v10001');
  });
});
