import { deserialize } from 'node:v8';
import type Redis from 'ioredis';
import { keySlot } from '../../../src/state/keys';
import { SymbolStateStore } from '../../../src/state/symbol-state-store';

/** A MULTI that, like Redis Cluster, refuses keys of more than one slot. */
class FakeMulti {
  private readonly ops: (() => void)[] = [];
  private readonly keys: string[] = [];
  constructor(private readonly owner: FakeRedis) {}
  set(key: string, value: Buffer): this {
    this.keys.push(key);
    this.ops.push(() => this.owner.data.set(key, value));
    return this;
  }
  setbit(key: string, bit: number, v: number): this {
    this.keys.push(key);
    this.ops.push(() => this.owner.bits.add(`${key}#${bit}#${v}`));
    return this;
  }
  exec(): Promise<[Error | null, unknown][]> {
    this.owner.transactions.push(this.keys);
    if (this.owner.isCluster && new Set(this.keys.map(keySlot)).size > 1) return Promise.reject(new Error("CROSSSLOT Keys in request don't hash to the same slot"));
    for (const op of this.ops) op();
    return Promise.resolve(this.ops.map(() => [null, 'OK']));
  }
}

class FakeRedis {
  readonly data = new Map<string, Buffer>();
  readonly bits = new Set<string>();
  readonly transactions: string[][] = [];
  constructor(readonly isCluster: boolean) {}
  multi(): FakeMulti {
    return new FakeMulti(this);
  }
  getBuffer(key: string): Promise<Buffer | null> {
    return Promise.resolve(this.data.get(key) ?? null);
  }
}

const symbols = ['AAA', 'BBB', 'CCC', 'DDD', 'E.F', 'G-H'];

async function commitAll(redis: FakeRedis): Promise<SymbolStateStore<{ n: number }>> {
  const store = new SymbolStateStore<{ n: number }>(redis as unknown as Redis, { prefix: 'p:', stage: 'tactical' });
  // One burst: every symbol's commit joins the same flush.
  await Promise.all(symbols.map((s, i) => store.commit(s, { n: i }, { timeframeMs: 300_000, ts: [1_700_000_100_000] })));
  return store;
}

describe('group commits on a Redis Cluster', () => {
  it('writes one MULTI per hash slot, each with the symbol-tagged keys of one slot', async () => {
    const redis = new FakeRedis(true);
    const store = await commitAll(redis);
    expect(redis.transactions.length).toBe(new Set(symbols.map((s) => keySlot(`{${s}}`))).size);
    expect(redis.transactions.length).toBeGreaterThan(1);
    for (const keys of redis.transactions) expect(new Set(keys.map(keySlot)).size).toBe(1);
    for (const [i, s] of symbols.entries()) {
      expect(redis.data.has(`p:tactical:state:{${s}}`)).toBe(true);
      expect(await store.load(s)).toEqual({ n: i });
    }
  });

  it('keeps one MULTI and the untagged key names on a single Redis', async () => {
    const redis = new FakeRedis(false);
    await commitAll(redis);
    expect(redis.transactions).toHaveLength(1);
    expect(deserialize(redis.data.get('p:tactical:state:AAA')!)).toEqual({ n: 0 });
    expect([...redis.data.keys()].some((k) => k.includes('{'))).toBe(false);
  });
});
