import { join } from 'node:path';
import type { PipelineConfig } from '../config/config';
import type { TacticalPolicy } from '../learning/policy';

/**
 * The policy a tactical worker would load now: the pinned version (PIPELINE_MODEL_VERSION), else
 * the latest promoted, else the seeded initial one. The returned function caches the loaded policy
 * and loads again only when the wanted version changes.
 */
export function currentPolicy(config: PipelineConfig): () => Promise<TacticalPolicy> {
  let cache: TacticalPolicy | null = null;
  return async () => {
    const { openModelRegistry, BUNDLED_MODEL_DIR } = await import('../state/model-files');
    const { TacticalPolicy } = await import('../learning/policy');
    const { INITIAL_POLICY_SEED } = await import('../supervisor/stages');
    const registry = openModelRegistry(join(config.dataDir, 'models'), { keepVersions: config.modelKeep, seedFrom: BUNDLED_MODEL_DIR });
    const wanted = config.modelVersion ?? (await registry.latestPromoted().catch(() => null));
    if (cache !== null && cache.version === (wanted ?? `initial-${INITIAL_POLICY_SEED}`)) return cache;
    cache = wanted === null ? TacticalPolicy.initial(INITIAL_POLICY_SEED) : await TacticalPolicy.load(registry, wanted);
    return cache;
  };
}
