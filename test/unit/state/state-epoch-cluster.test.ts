import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { keySlot } from '../../../src/state/keys';
import { CLUSTER_MARKER_TAGS, StateEpochStore } from '../../../src/state/state-epoch-store';

/** A Redis Cluster client's view on a Map: single-key commands only (a cross-slot MGET would fail). */
class FakeCluster {
  readonly isCluster = true;
  readonly data = new Map<string, string>();

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.data.get(key) ?? null);
  }

  mget(...keys: string[]): Promise<(string | null)[]> {
    if (new Set(keys.map(keySlot)).size > 1) return Promise.reject(new Error("CROSSSLOT Keys in request don't hash to the same slot"));
    return Promise.resolve(keys.map((k) => this.data.get(k) ?? null));
  }

  set(key: string, value: string, nx?: 'NX'): Promise<'OK' | null> {
    if (nx === 'NX' && this.data.has(key)) return Promise.resolve(null);
    this.data.set(key, value);
    return Promise.resolve('OK');
  }

  incr(key: string): Promise<number> {
    const next = Number(this.data.get(key) ?? 0) + 1;
    this.data.set(key, String(next));
    return Promise.resolve(next);
  }

  nodes(): FakeCluster[] {
    return [this];
  }

  scan(_cursor: string, _match: 'MATCH', pattern: string): Promise<[string, string[]]> {
    const prefix = pattern.replace(/\*$/, '');
    return Promise.resolve(['0', [...this.data.keys()].filter((k) => k.startsWith(prefix))]);
  }

  unlink(...keys: string[]): Promise<number> {
    if (new Set(keys.map(keySlot)).size > 1) return Promise.reject(new Error('CROSSSLOT'));
    return Promise.resolve(keys.filter((k) => this.data.delete(k)).length);
  }
}

describe('StateEpochStore on a Redis Cluster', () => {
  let dir: string;
  let redis: FakeCluster;
  const store = (): StateEpochStore => new StateEpochStore(redis as unknown as Redis, { prefix: 'p:', dataDir: dir, name: 'tactical' });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'epoch-cluster-'));
    redis = new FakeCluster();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the epoch in all 16 copies and advances every sequence copy', async () => {
    const status = await store().verify(true);
    expect(status).toMatchObject({ kind: 'intact', how: 'created' });
    const epoch = (status as { epoch: string }).epoch;
    for (const tag of CLUSTER_MARKER_TAGS) expect((JSON.parse(redis.data.get(`p:epoch:{${tag}}`)!) as { id: string }).id).toBe(epoch);
    expect(await store().advance(epoch)).toBe(1);
    for (const tag of CLUSTER_MARKER_TAGS) expect(redis.data.get(`p:epoch:seq:{${tag}}`)).toBe('1');
    expect(await store().verify(true)).toMatchObject({ kind: 'intact', how: 'existing', seq: 1 });
  });

  it('sees one master losing its copies, one going back in time, and one holding another epoch', async () => {
    const epoch = ((await store().verify(true)) as { epoch: string }).epoch;
    await store().advance(epoch);
    await store().advance(epoch);
    const copy = `p:epoch:{${CLUSTER_MARKER_TAGS[7]}}`;
    const seqCopy = `p:epoch:seq:{${CLUSTER_MARKER_TAGS[7]}}`;
    const saved = [redis.data.get(copy)!, redis.data.get(seqCopy)!];

    redis.data.delete(copy);
    redis.data.delete(seqCopy);
    const missing = await store().verify(true);
    expect(missing).toMatchObject({ kind: 'lost', cause: 'missing' });
    expect((missing as { message: string }).message).toContain(copy);

    redis.data.set(copy, saved[0]!);
    redis.data.set(seqCopy, '1'); // recorded 2
    expect(await store().verify(true)).toMatchObject({ kind: 'lost', cause: 'older' });

    redis.data.set(seqCopy, saved[1]!);
    redis.data.set(copy, JSON.stringify({ id: 'another', createdAt: '', accepted: [] }));
    expect(await store().verify(true)).toMatchObject({ kind: 'lost', cause: 'different' });

    // accept-loss deletes every key one by one and writes the new epoch to every copy.
    const { epoch: fresh } = await store().acceptLoss();
    for (const tag of CLUSTER_MARKER_TAGS) expect((JSON.parse(redis.data.get(`p:epoch:{${tag}}`)!) as { id: string }).id).toBe(fresh);
    expect(await store().verify(true)).toMatchObject({ kind: 'intact', epoch: fresh });
  });
});
