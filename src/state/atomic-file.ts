import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The one atomic writer of this code base: every file that readers or a crash must see whole (model
 * registry files, the pattern store's manifest and indexes, the state epoch and sequence, the shard
 * layout) is written by {@link writeFileAtomic} or {@link writeAtomicWith}.
 */

let temporaries = 0;

/**
 * A temporary name beside `path` (ending in `.tmp`), unique per process and per call: two writes of
 * one path that overlap, in one process or in several, never share a temporary file, so neither
 * can rename the other's half-written bytes into place.
 */
export function temporaryPath(path: string): string {
  return `${path}.${process.pid}.${++temporaries}.${randomBytes(4).toString('hex')}.tmp`;
}

/**
 * Flushes a directory's entries (a created, renamed or removed name) to disk. Without it, a file
 * that was fsynced and renamed can still be missing after a power cut.
 */
export function fsyncDir(dir: string): Promise<void> {
  return fsync(dir, 'r');
}

/** Flushes a file's contents (`r+`) or a directory's entries (`r`) to disk. */
async function fsync(path: string, flags: 'r' | 'r+'): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `path` (created or truncated) and fsyncs it: in place, not atomic. */
export async function writeFileDurably(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes `path` so that readers and a crash see either the old contents or the new ones, whole:
 * write a temporary file beside it, fsync it, rename it over `path`, fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = temporaryPath(path);
  await writeFileDurably(tmp, data);
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/**
 * {@link writeFileAtomic} for a file another function writes (`write(tmpPath)`), such as an HNSW
 * index: `write` fills the temporary file, which is then fsynced and renamed over `path`.
 */
export async function writeAtomicWith(
  path: string,
  write: (tmpPath: string) => Promise<unknown>,
): Promise<void> {
  const tmp = temporaryPath(path);
  try {
    await write(tmp);
    await fsync(tmp, 'r+');
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}
