import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ModelRegistry, type ModelFiles, type ModelRegistryOptions } from '../learning/registry';
import { fsyncDir, writeFileAtomic, writeFileDurably } from './atomic-file';

/** The model the repository ships (`models/agents`, made by `pipeline models train`; see docs/agents.md). */
export const BUNDLED_MODEL_DIR = bundledModelDir();

/** `models/agents` at the repository root, from the TypeScript sources (src/state) or the build (dist/src/state). */
function bundledModelDir(): string {
  const candidates = [join(__dirname, '..', '..', 'models', 'agents'), join(__dirname, '..', '..', '..', 'models', 'agents')];
  return candidates.find((dir) => existsSync(join(dir, 'promoted.json'))) ?? candidates[0]!;
}

/** Distinguishes temporary directories of one process. */
let tmpCounter = 0;

/**
 * A model registry's files in a directory: `<dir>/versions/<version>/<file>` and top-level JSON files
 * (`promoted.json`, side files). A version directory is built under a temporary name, every file in
 * it fsynced, and renamed into place (then the parent directory fsynced); top-level files are
 * replaced atomically; a removed version is renamed away before it is deleted. So readers and a
 * crash never see half a model or half a promotion.
 */
export class ModelDirectory implements ModelFiles {
  readonly location: string;

  constructor(readonly dir: string) {
    this.location = resolve(dir);
  }

  private versionsDir(): string {
    return join(this.dir, 'versions');
  }

  async listVersions(): Promise<string[]> {
    try {
      return await readdir(this.versionsDir());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async readVersionFile(version: string, file: string): Promise<Uint8Array> {
    return readFile(join(this.versionsDir(), version, file));
  }

  async writeVersion(version: string, files: ReadonlyMap<string, string | Uint8Array>): Promise<boolean> {
    await mkdir(this.versionsDir(), { recursive: true });
    const tmp = join(this.versionsDir(), `.tmp-${version}-${process.pid}-${++tmpCounter}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
    for (const [name, data] of files) await writeFileDurably(join(tmp, name), data);
    await fsyncDir(tmp);
    try {
      await rename(tmp, join(this.versionsDir(), version));
      await fsyncDir(this.versionsDir());
      return true;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
      throw err;
    }
  }

  async removeVersions(versions: readonly string[]): Promise<void> {
    for (const v of versions) {
      // Renamed away first, so no reader ever finds half a version under its name.
      const trash = join(this.versionsDir(), `.trash-${v}-${process.pid}-${++tmpCounter}`);
      await rename(join(this.versionsDir(), v), trash);
      await rm(trash, { recursive: true, force: true });
    }
    if (versions.length > 0) await fsyncDir(this.versionsDir());
  }

  async readFile(name: string): Promise<string | null> {
    try {
      return await readFile(join(this.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async writeFile(name: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(join(this.dir, name), text);
  }
}

/** Options of {@link openModelRegistry}: those of the registry, with the seed as a directory. */
export interface OpenModelRegistryOptions extends Omit<ModelRegistryOptions, 'seedFrom'> {
  /** A registry directory (such as {@link BUNDLED_MODEL_DIR}) to seed an empty registry from. */
  seedFrom?: string;
}

/** The model registry kept in `dir` (see {@link ModelRegistry} and {@link ModelDirectory}). */
export function openModelRegistry(dir: string, options: OpenModelRegistryOptions = {}): ModelRegistry {
  const { seedFrom, ...rest } = options;
  return new ModelRegistry(new ModelDirectory(dir), { ...rest, ...(seedFrom === undefined ? {} : { seedFrom: new ModelDirectory(seedFrom) }) });
}

