import type { MappoSnapshot, ValueNormState } from './mappo';
import type { MlpWeights } from './network';
import type { PolicySource, TacticalPolicy } from './policy';
import { TRADING_TEAM_SPEC } from './trading-agents';
import type { MappoTrainer } from './trainer';
import { exportMlpToOnnx } from './onnx-export';
import { pairedSharpeGain, type BootstrapOptions, type Interval } from './stats';

/** Held-out evaluation of a model, the basis of promotion decisions. */
export interface ModelMetrics {
  /** Annualised Sharpe on the held-out window. */
  sharpe: number;
  /** Identifies the held-out window, so only like is compared with like. */
  window?: string;
  [key: string]: unknown;
}

/** Metadata of a saved version (`meta.json`). */
export interface ModelMeta {
  version: string;
  parent: string | null;
  metrics: ModelMetrics | null;
  /** ISO time of saving. */
  created: string;
  /** Per network: file name and layer sizes; weights are little-endian Float32, W0 b0 W1 b1 ... */
  networks: { name: string; file: string; sizes: number[]; /** The actor exported to ONNX (absent for the critic and older versions). */ onnx?: string }[];
  valueNorm: ValueNormState | null;
  options: MappoSnapshot['options'] | null;
}

interface PromotionFile {
  current: string | null;
  history: string[];
}

/** What the promotion rule needs of one policy's greedy run over the held-out window. */
export interface HeldOutRun {
  /** Per-bar returns after costs, bar for bar the same bars for candidate and parent. */
  returns: number[];
  /** Σ |position change|. */
  turnover: number;
  /** Share of decisions of the most frequent target position (1: always the same action). */
  dominantActionShare: number;
}

/** Options of {@link promotionVerdict}. */
export interface PromotionOptions {
  /**
   * The lower end of the 95 % paired bootstrap interval of the annualised Sharpe gain (candidate −
   * parent) must be strictly above this. @defaultValue 0.5
   */
  minSharpeGain?: number;
  /** Fewest held-out bars a promotion may rest on. @defaultValue 2000 */
  minHeldOutBars?: number;
  /** A candidate whose most frequent target position exceeds this share of decisions is degenerate. @defaultValue 0.98 */
  maxActionShare?: number;
  /** Bootstrap settings (resamples, block length, seed). @defaultValue 1000 resamples of 48-bar blocks, seed 1 */
  bootstrap?: BootstrapOptions;
}

/** The promotion rule's answer, with its reason (saved with the version). */
export interface PromotionVerdict {
  promote: boolean;
  reason: string;
  /** Paired bootstrap interval of the annualised Sharpe gain (null when not computed). */
  sharpeGain: Interval | null;
  heldOutBars: number;
}

/**
 * Promotion needs evidence, not a tie: the held-out window has at least `minHeldOutBars` bars, the
 * candidate trades (turnover > 0) and does not take one position almost always (degenerate), and
 * a paired moving-block bootstrap of the Sharpe gain over its parent on the same bars has its 95 %
 * interval's lower end above `minSharpeGain`. A parent that never trades has Sharpe 0, so a
 * candidate must then show a Sharpe reliably above the margin.
 */
export function promotionVerdict(candidate: HeldOutRun, parent: HeldOutRun, options: PromotionOptions = {}): PromotionVerdict {
  const bars = candidate.returns.length;
  if (parent.returns.length !== bars) throw new RangeError('candidate and parent must be run on the same held-out bars');
  const minBars = options.minHeldOutBars ?? 2000;
  const no = (reason: string, sharpeGain: Interval | null = null): PromotionVerdict => ({ promote: false, reason, sharpeGain, heldOutBars: bars });
  if (bars < Math.max(2, minBars)) return no(`held-out window has ${bars} bars, promotion needs ${minBars}`);
  if (!(candidate.turnover > 0)) return no('degenerate: the candidate never trades on the held-out window');
  const maxShare = options.maxActionShare ?? 0.98;
  if (candidate.dominantActionShare > maxShare) {
    return no(`degenerate: the candidate takes the same position in ${(candidate.dominantActionShare * 100).toFixed(1)}% of decisions`);
  }
  const gain = pairedSharpeGain(candidate.returns, parent.returns, options.bootstrap ?? {});
  const margin = options.minSharpeGain ?? 0.5;
  if (!(gain.lo > margin)) {
    return no(`Sharpe gain ${gain.estimate.toFixed(2)} [${gain.lo.toFixed(2)}, ${gain.hi.toFixed(2)}] does not clear the margin ${margin}`, gain);
  }
  return { promote: true, reason: `Sharpe gain ${gain.estimate.toFixed(2)} [${gain.lo.toFixed(2)}, ${gain.hi.toFixed(2)}] > ${margin}`, sharpeGain: gain, heldOutBars: bars };
}

/** Options of {@link ModelRegistry}. */
export interface ModelRegistryOptions {
  /**
   * Versions kept besides the promoted lineage (`PIPELINE_MODEL_KEEP`): after each save, every
   * version that is neither among the newest `keepVersions` nor promoted now or before, nor an
   * ancestor (by `parent`) of the promoted one, is deleted. 0 keeps everything. @defaultValue 20
   */
  keepVersions?: number;
  /**
   * Registry seeding: a registry directory (such as {@link BUNDLED_MODEL_DIR}, the model the
   * repository ships) whose promoted version is copied in as `v0001` and promoted the first time
   * this registry is asked for its promoted version while it has none and no versions at all. So a
   * fresh pipeline starts with the trained model, not random weights; an existing registry (even
   * one rolled back to the initial policy) is never touched. @defaultValue none (no seeding)
   */
  seedFrom?: ModelFiles;
}

/**
 * Where a registry keeps its files: what {@link ModelRegistry} needs of a store. The registry does no
 * I/O of its own; `ModelDirectory` in src/state/model-files.ts keeps them in a directory.
 */
export interface ModelFiles {
  /** Where the files are, for messages; two stores with the same location hold the same files. */
  readonly location: string;
  /** Names of the saved versions' entries, unsorted; [] when there are none. */
  listVersions(): Promise<string[]>;
  /** A file of a version; rejects (with code ENOENT) when it does not exist. */
  readVersionFile(version: string, file: string): Promise<Uint8Array>;
  /**
   * Writes the files of `version` so that no reader and no crash sees half of it; false (and nothing
   * written) when `version` already exists.
   */
  writeVersion(version: string, files: ReadonlyMap<string, string | Uint8Array>): Promise<boolean>;
  /** Deletes versions; no reader finds half of one under its name. */
  removeVersions(versions: readonly string[]): Promise<void>;
  /** A top-level file of the registry (`promoted.json`, side files); null when absent. */
  readFile(name: string): Promise<string | null>;
  /** Replaces a top-level file atomically. */
  writeFile(name: string, text: string): Promise<void>;
}

/**
 * Versioned models in a {@link ModelFiles} store (open one on a directory with `openModelRegistry`
 * of src/state/model-files.ts): versions `<version>/{meta.json, tactical.bin, risk.bin,
 * execution.bin[, critic.bin], *.onnx}` and `promoted.json` ({ current, history }). Versions are
 * `v0001`, `v0002`, ... in save order. The store writes a version and a promotion whole (see
 * {@link ModelFiles}). One writer at a time (the trainer worker). Retention ({@link ModelRegistryOptions.keepVersions}) depends only on the registry's
 * contents, never on the clock.
 */
export class ModelRegistry implements PolicySource {
  private readonly keepVersions: number;
  private readonly seedFrom: ModelFiles | null;

  constructor(
    readonly files: ModelFiles,
    options: ModelRegistryOptions = {},
  ) {
    this.keepVersions = options.keepVersions ?? 20;
    this.seedFrom = options.seedFrom ?? null;
    if (!(Number.isInteger(this.keepVersions) && this.keepVersions >= 0)) {
      throw new RangeError(`keepVersions must be a non-negative integer, got ${this.keepVersions}`);
    }
  }

  /** Where the registry's files are (for messages). */
  get location(): string {
    return this.files.location;
  }

  /** Saves the actors of a policy (or the whole team of a trainer, critic included); returns the new version. */
  async save(source: TacticalPolicy | MappoTrainer, meta: { parent: string | null; metrics?: ModelMetrics | null }): Promise<string> {
    const existing = await this.list();
    const last = existing.length > 0 ? Number((existing[existing.length - 1] as string).slice(1)) : 0;
    const version = `v${String(last + 1).padStart(4, '0')}`;
    const nets: { name: string; weights: MlpWeights }[] = [];
    let snapshot: MappoSnapshot | null = null;
    if ('actorWeights' in source) {
      source.actorWeights().forEach((w, i) => nets.push({ name: (TRADING_TEAM_SPEC.agents[i] as { name: string }).name, weights: w }));
    } else {
      snapshot = source.snapshot();
      snapshot.actors.forEach((w, i) => nets.push({ name: (snapshot as MappoSnapshot).spec.agents[i]?.name ?? `actor${i}`, weights: w }));
      nets.push({ name: 'critic', weights: snapshot.critic });
    }
    const files = new Map<string, string | Uint8Array>();
    for (const n of nets) {
      const d = n.weights.data;
      files.set(`${n.name}.bin`, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      // Every actor is also exported to ONNX (logits; see onnx-export.ts).
      if (n.name !== 'critic') files.set(`${n.name}.onnx`, exportMlpToOnnx(n.weights, n.name));
    }
    const m: ModelMeta = {
      version,
      parent: meta.parent,
      metrics: meta.metrics ?? null,
      created: new Date().toISOString(),
      networks: nets.map((n) => ({ name: n.name, file: `${n.name}.bin`, sizes: n.weights.sizes, ...(n.name === 'critic' ? {} : { onnx: `${n.name}.onnx` }) })),
      valueNorm: snapshot?.valueNorm ?? null,
      options: snapshot?.options ?? null,
    };
    files.set('meta.json', JSON.stringify(m, null, 2));
    if (!(await this.files.writeVersion(version, files))) throw new Error(`version ${version} already exists in ${this.location}: one writer at a time`);
    await this.prune();
    return version;
  }

  /**
   * Deletes the versions retention does not keep (see {@link ModelRegistryOptions.keepVersions});
   * returns them. Runs after every {@link save}.
   */
  async prune(): Promise<string[]> {
    if (this.keepVersions === 0) return [];
    const all = await this.list();
    const keep = new Set(all.slice(-this.keepVersions));
    const p = await this.readPromotion();
    for (const v of p.history) keep.add(v);
    // The promoted version's ancestors: what it was trained from, back to the seeded initial team.
    const seen = new Set<string>();
    for (let v = p.current; v !== null && !seen.has(v); ) {
      seen.add(v);
      keep.add(v);
      v = await this.meta(v).then(
        (m) => m.parent,
        () => null,
      );
    }
    const dropped = all.filter((v) => !keep.has(v));
    await this.files.removeVersions(dropped);
    return dropped;
  }

  /** Saved versions, oldest first (by number: v10000 comes after v9999). */
  async list(): Promise<string[]> {
    return (await this.files.listVersions()).filter((v) => /^v\d{4,}$/.test(v)).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  }

  async meta(version: string): Promise<ModelMeta> {
    if (!/^v\d{4,}$/.test(version)) throw new RangeError(`bad version ${version}`);
    return JSON.parse(Buffer.from(await this.files.readVersionFile(version, 'meta.json')).toString('utf8')) as ModelMeta;
  }

  private async readNet(version: string, net: ModelMeta['networks'][number]): Promise<MlpWeights> {
    const buf = await this.files.readVersionFile(version, net.file);
    const data = new Float32Array(buf.byteLength / 4);
    new Uint8Array(data.buffer).set(buf);
    return { sizes: net.sizes, data };
  }

  async loadActorWeights(version: string): Promise<MlpWeights[]> {
    const meta = await this.meta(version);
    const out: MlpWeights[] = [];
    for (const a of TRADING_TEAM_SPEC.agents) {
      const net = meta.networks.find((n) => n.name === a.name);
      if (!net) throw new RangeError(`version ${version} has no ${a.name} actor`);
      out.push(await this.readNet(version, net));
    }
    return out;
  }

  /** The inference policy of a version. */
  async load(version: string): Promise<TacticalPolicy> {
    const { TacticalPolicy } = await import('./policy');
    return TacticalPolicy.load(this, version);
  }

  /** The full team of a version saved from a trainer, to resume training from it. */
  async loadSnapshot(version: string): Promise<MappoSnapshot> {
    const meta = await this.meta(version);
    const critic = meta.networks.find((n) => n.name === 'critic');
    if (!critic || !meta.valueNorm || !meta.options) throw new RangeError(`version ${version} was saved without its critic`);
    return {
      spec: TRADING_TEAM_SPEC,
      options: meta.options,
      actors: await this.loadActorWeights(version),
      critic: await this.readNet(version, critic),
      valueNorm: meta.valueNorm,
    };
  }

  private async readPromotion(): Promise<PromotionFile> {
    const text = await this.files.readFile('promoted.json');
    return text === null ? { current: null, history: [] } : (JSON.parse(text) as PromotionFile);
  }

  private async writePromotion(p: PromotionFile): Promise<void> {
    await this.files.writeFile('promoted.json', JSON.stringify(p, null, 2));
  }

  /** A JSON side file of the registry (for example the trainer's held-out window); null when absent. */
  async readJson<T>(name: string): Promise<T | null> {
    if (!/^[a-z][a-z0-9-]*\.json$/.test(name)) throw new RangeError(`bad side file name ${name}`);
    const text = await this.files.readFile(name);
    return text === null ? null : (JSON.parse(text) as T);
  }

  /** Replaces a JSON side file atomically. */
  async writeJson(name: string, value: unknown): Promise<void> {
    if (!/^[a-z][a-z0-9-]*\.json$/.test(name)) throw new RangeError(`bad side file name ${name}`);
    await this.files.writeFile(name, JSON.stringify(value));
  }

  /** The newest saved version whose metrics carry `batch_id` (a batch already trained), or null. */
  async findByBatch(batchId: string): Promise<ModelMeta | null> {
    const versions = await this.list();
    for (let i = versions.length - 1; i >= 0; i--) {
      const meta = await this.meta(versions[i] as string);
      if (meta.metrics?.batch_id === batchId) return meta;
    }
    return null;
  }

  /** The version tactical workers should run (null: use the seeded initial policy). */
  async latestPromoted(): Promise<string | null> {
    const p = await this.readPromotion();
    if (p.current === null && p.history.length === 0 && this.seedFrom !== null) {
      // One seeding per directory at a time in this process (other processes: see seed()).
      let seeding = seedingDirs.get(this.location);
      if (seeding === undefined) {
        seeding = this.seed(this.seedFrom).finally(() => seedingDirs.delete(this.location));
        seedingDirs.set(this.location, seeding);
      }
      return seeding;
    }
    return p.current;
  }

  /**
   * Copies the promoted version of another registry in as `v0001` and promotes it, if this one has
   * no versions (see {@link ModelRegistryOptions.seedFrom}). Safe when two processes seed at once:
   * the version directory is renamed into place once, and both write the same promotion.
   */
  private async seed(from: ModelFiles): Promise<string | null> {
    const existing = await this.list();
    if (existing.length > 0) {
      // Another process may have just renamed its seed into place but not promoted it yet.
      const seededHere = existing.length === 1 && (await this.meta('v0001').then((m) => m.metrics?.seeded_from !== undefined, () => false));
      const p = await this.readPromotion();
      if (seededHere && p.current === null && p.history.length === 0) await this.writePromotion({ current: 'v0001', history: ['v0001'] });
      return (await this.readPromotion()).current;
    }
    const source = new ModelRegistry(from, { keepVersions: 0 });
    const version = await source.latestPromoted();
    if (version === null) throw new RangeError(`seed registry ${from.location} has no promoted version`);
    const meta = await source.meta(version);
    const files = new Map<string, string | Uint8Array>();
    for (const n of meta.networks) {
      files.set(n.file, await from.readVersionFile(version, n.file));
      if (n.onnx) files.set(n.onnx, await from.readVersionFile(version, n.onnx));
    }
    const seeded: ModelMeta = { ...meta, version: 'v0001', parent: null, metrics: { ...(meta.metrics ?? { sharpe: Number.NaN }), seeded_from: `bundled ${version}` } };
    files.set('meta.json', JSON.stringify(seeded, null, 2));
    // false: another process renamed its seed into place first; both write the same promotion.
    await this.files.writeVersion('v0001', files);
    const p = await this.readPromotion();
    if (p.current === null && p.history.length === 0) await this.writePromotion({ current: 'v0001', history: ['v0001'] });
    return (await this.readPromotion()).current;
  }

  /** Makes `version` the promoted one. */
  async promote(version: string): Promise<void> {
    await this.meta(version); // must exist
    const p = await this.readPromotion();
    if (p.current === version) return;
    await this.writePromotion({ current: version, history: [...p.history, version] });
  }

  /**
   * Goes back to `version` (any saved one), or, without an argument, to the version promoted
   * before the current one. Returns the now-current version.
   */
  async rollback(version?: string): Promise<string | null> {
    const p = await this.readPromotion();
    let target: string | null;
    if (version !== undefined) {
      await this.meta(version);
      target = version;
    } else {
      const i = p.current === null ? -1 : p.history.lastIndexOf(p.current);
      target = i > 0 ? (p.history[i - 1] as string) : null;
    }
    await this.writePromotion({ current: target, history: target === null ? p.history : [...p.history, target] });
    return target;
  }
}

/** Registry directories being seeded by this process. */
const seedingDirs = new Map<string, Promise<string | null>>();
