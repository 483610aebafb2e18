import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { temporaryPath, writeAtomicWith, writeFileAtomic } from '../../../src/state/atomic-file';

describe('the atomic writer', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'atomic-file-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives every write its own temporary name beside the file', () => {
    const path = join(dir, 'state-seq.json');
    const names = new Set(Array.from({ length: 100 }, () => temporaryPath(path)));
    expect(names.size).toBe(100);
    for (const name of names) {
      expect(name.startsWith(`${path}.${process.pid}.`)).toBe(true);
      expect(name.endsWith('.tmp')).toBe(true);
    }
  });

  it('lets overlapping writes of one path all finish, leaving one whole content and no temporary file', async () => {
    const path = join(dir, 'manifest.json');
    const contents = Array.from({ length: 20 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(10_000 + i) }));
    const outcomes = await Promise.allSettled([
      ...contents.slice(0, 10).map((c) => writeFileAtomic(path, c)),
      ...contents.slice(10).map((c) => writeAtomicWith(path, async (tmp) => writeFileAtomic(tmp, c))),
    ]);
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    expect(contents).toContain(await readFile(path, 'utf8'));
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
