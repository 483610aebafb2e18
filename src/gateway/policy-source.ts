import { join } from 'node:path';
import type { PipelineConfig } from '../config/config';
import { TacticalPolicy } from '../learning/policy';
import { BUNDLED_MODEL_DIR, openModelRegistry } from '../state/model-files';
import { INITIAL_POLICY_SEED } from '../supervisor/stages';

/**
 * The policy a tactical worker would load now: the pinned version (PIPELINE_MODEL_VERSION), else
 * the latest promoted, else the seeded initial one. The returned function caches the loaded policy
 * and loads again only when the wanted version changes. Imports are static: this runs in the
 * process pool's threads, where the TypeScript loader serves `require` but not a relative `import()`.
 */
export function currentPolicy(config: PipelineConfig): () => Promise<TacticalPolicy> {
  let cache: TacticalPolicy | null = null;
  return async () => {
    const registry = openModelRegistry(join(config.dataDir, 'models'), { keepVersions: config.modelKeep, seedFrom: BUNDLED_MODEL_DIR });
    const wanted = config.modelVersion ?? (await registry.latestPromoted().catch(() => null));
    if (cache !== null && cache.version === (wanted ?? `initial-${INITIAL_POLICY_SEED}`)) return cache;
    cache = wanted === null ? TacticalPolicy.initial(INITIAL_POLICY_SEED) : await TacticalPolicy.load(registry, wanted);
    return cache;
  };
}
