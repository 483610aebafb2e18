import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { StateEpochStore } from '../../../src/state/state-epoch-store';

/** The few Redis commands the epoch store uses, on a Map. */
class FakeRedis {
  readonly data = new Map<string, string>();

  mget(...keys: string[]): Promise<(string | null)[]> {
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

  scan(_cursor: string, _match: 'MATCH', pattern: string): Promise<[string, string[]]> {
    const prefix = pattern.replace(/\*$/, '');
    return Promise.resolve(['0', [...this.data.keys()].filter((k) => k.startsWith(prefix))]);
  }

  unlink(...keys: string[]): Promise<number> {
    return Promise.resolve(keys.filter((k) => this.data.delete(k)).length);
  }

  flushall(): void {
    this.data.clear();
  }
}

describe('StateEpochStore', () => {
  let dir: string;
  let redis: FakeRedis;
  const store = (name: string | null = 'tactical') =>
    new StateEpochStore(redis as unknown as Redis, { prefix: 'p:', dataDir: dir, name });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'epoch-'));
    redis = new FakeRedis();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates one epoch at the first start, in Redis and in the data directory, and finds it intact after', async () => {
    const first = await store().verify(true);
    expect(first).toMatchObject({ kind: 'intact', how: 'created' });
    const epoch = (first as { epoch: string }).epoch;
    expect(JSON.parse(readFileSync(join(dir, 'state-epoch'), 'utf8'))).toMatchObject({ epoch });
    expect(JSON.parse(redis.data.get('p:epoch')!)).toMatchObject({ id: epoch, accepted: [] });
    expect(await store('strategic').verify(true)).toMatchObject({
      kind: 'intact',
      epoch,
      how: 'existing',
    });
  });

  it('reports a flushed Redis as lost (missing) and does not create a new epoch over it', async () => {
    await store().verify(true);
    redis.flushall();
    expect(await store().verify(true)).toMatchObject({
      kind: 'lost',
      cause: 'missing',
      redisEpoch: null,
    });
    expect(redis.data.has('p:epoch')).toBe(false);
  });

  it('reports a Redis holding another epoch as lost (different)', async () => {
    await store().verify(true);
    redis.data.set('p:epoch', JSON.stringify({ id: 'other', createdAt: '', accepted: [] }));
    expect(await store().verify(true)).toMatchObject({
      kind: 'lost',
      cause: 'different',
      redisEpoch: 'other',
    });
  });

  it('reports a Redis that went back in time (sequence below what a worker recorded) as lost (older)', async () => {
    const s = store();
    const { epoch } = (await s.verify(true)) as { epoch: string };
    await s.advance(epoch);
    await s.advance(epoch);
    redis.data.set('p:epoch:seq', '1'); // a replica or snapshot from before the second step
    expect(await s.verify(true)).toMatchObject({ kind: 'lost', cause: 'older' });
    expect(await store(null).verify(false)).toMatchObject({ kind: 'lost', cause: 'older' }); // the CLI reads every worker's file
  });

  it('adopts the epoch of an intact Redis when the data directory is new', async () => {
    const { epoch } = (await store().verify(true)) as { epoch: string };
    rmSync(join(dir, 'state-epoch'));
    expect(await store().verify(true)).toMatchObject({ kind: 'intact', epoch, how: 'adopted' });
  });

  it('accept-loss deletes every key under the prefix, and the workers whose epoch was lost adopt the new one', async () => {
    const s = store();
    const { epoch: lostEpoch } = (await s.verify(true)) as { epoch: string };
    await s.advance(lostEpoch);
    redis.flushall();
    redis.data.set('p:tactical:state:X', '{}'); // written after the loss
    redis.data.set('q:other', 'kept'); // another pipeline's key
    expect(await store(null).verify(false)).toMatchObject({ kind: 'lost', cause: 'missing' });
    const accepted = await store(null).acceptLoss();
    expect(accepted).toMatchObject({ deletedKeys: 1, replaced: ['*', lostEpoch] });
    expect(redis.data.get('q:other')).toBe('kept');
    expect(await s.verify(true)).toMatchObject({ kind: 'intact', epoch: accepted.epoch });
  });

  it('accept-loss run where no data directory names the lost epoch still lets every worker resume', async () => {
    const s = store();
    await s.verify(true);
    redis.flushall();
    const cli = new StateEpochStore(redis as unknown as Redis, {
      prefix: 'p:',
      dataDir: join(dir, 'none'),
      name: null,
    });
    const accepted = await cli.acceptLoss();
    expect(accepted.replaced).toEqual(['*']);
    expect(await s.verify(true)).toMatchObject({
      kind: 'intact',
      epoch: accepted.epoch,
      how: 'accepted',
    });
  });
});
