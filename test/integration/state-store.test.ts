import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { SymbolStateStore } from '../../src/state/symbol-state-store';
import { clearRedis } from '../fixtures/pipeline';

interface S {
  lastTs: number;
  values: number[];
}

const M5 = 300_000;

describe('SymbolStateStore group commits', () => {
  let redis: Redis;
  let prefix: string;

  beforeEach(async () => {
    prefix = `test:${randomUUID().slice(0, 8)}:`;
    redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
    await redis.connect();
  });

  afterEach(async () => {
    await clearRedis(prefix);
    await redis.quit();
  });

  it('writes many bars of many symbols in few transactions, keeps the newest state and every dedupe mark', async () => {
    const store = new SymbolStateStore<S>(redis, { prefix, stage: 'tactical' });
    let execs = 0;
    const multi = redis.multi.bind(redis);
    jest.spyOn(redis, 'multi').mockImplementation(((...args: Parameters<typeof redis.multi>) => {
      execs++;
      return multi(...args);
    }));
    const commits: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      for (const symbol of ['A', 'B.C', 'D']) {
        commits.push(store.commit(symbol, { lastTs: i * M5, values: [i, -0, 1 / 3] }, { timeframeMs: M5, ts: [i * M5] }));
      }
    }
    await Promise.all(commits);
    expect(execs).toBeLessThanOrEqual(2);
    for (const symbol of ['A', 'B.C', 'D']) {
      const state = await store.load(symbol);
      // Binary: exact doubles, and -0 stays -0 (JSON would make it 0).
      expect(state).toEqual({ lastTs: 49 * M5, values: [49, -0, 1 / 3] });
      expect(Object.is(state!.values[1], -0)).toBe(true);
      for (let i = 0; i < 50; i++) expect(await store.wasAccepted(symbol, M5, i * M5)).toBe(true);
      expect(await store.wasAccepted(symbol, M5, 50 * M5)).toBe(false);
    }
  });

  it('retries a symbol whose write fails on its own while the others commit', async () => {
    let failing = true;
    const store = new SymbolStateStore<S>(redis, {
      prefix,
      stage: 'tactical',
      retryDelayMs: 20,
      faultCheck: (what) => {
        if (failing && what === 'state:BAD') throw new Error('injected');
      },
    });
    let badDone = false;
    const bad = store.commit('BAD', { lastTs: 0, values: [] }, { timeframeMs: M5, ts: [0] }).then(() => (badDone = true));
    await store.commit('GOOD', { lastTs: 0, values: [1] }, { timeframeMs: M5, ts: [0] });
    expect(badDone).toBe(false);
    expect(await store.load('BAD')).toBeNull();
    // A newer state of the failing symbol joins the pending one; both commits resolve together.
    const newer = store.commit('BAD', { lastTs: M5, values: [2] }, { timeframeMs: M5, ts: [M5] });
    failing = false;
    await Promise.all([bad, newer]);
    expect(await store.load('BAD')).toEqual({ lastTs: M5, values: [2] });
    expect(await store.wasAccepted('BAD', M5, 0)).toBe(true);
    expect(await store.wasAccepted('BAD', M5, M5)).toBe(true);
  });

  it('reads a state written as JSON by an earlier version', async () => {
    await redis.set(`${prefix}tactical:state:OLD`, JSON.stringify({ lastTs: 5 * M5, values: [1.5] }));
    const store = new SymbolStateStore<S>(redis, { prefix, stage: 'tactical' });
    expect(await store.load('OLD')).toEqual({ lastTs: 5 * M5, values: [1.5] });
  });

  it('fails the commits not yet written when the state is discarded (the broker redelivers them)', async () => {
    const store = new SymbolStateStore<S>(redis, { prefix, stage: 'tactical', faultCheck: () => { throw new Error('down'); } });
    const pending = store.commit('X', { lastTs: 0, values: [] }, { timeframeMs: M5, ts: [0] });
    store.discardPending();
    await expect(pending).rejects.toThrow(/reset before the commit/);
  });
});
