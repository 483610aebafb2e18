import type Redis from 'ioredis';
import type { StrategicContext } from '../../../schemas/strategic-context.schema';
import { ContextBufferFlow } from '../../../src/flows/context-buffer-flow';
import { FakeHashRedis } from '../../fixtures/consumers';


const T0 = Date.UTC(2024, 0, 1);
const M30 = 1_800_000;

describe('context buffer: nothing grows with time (issue 12 part 4)', () => {
  it('keeps contexts, timed-out periods and waiter lists bounded when every other context is late', async () => {
    const redis = new FakeHashRedis();
    const keep = 16;
    const buffer = new ContextBufferFlow({ redis: redis as unknown as Redis, prefix: 'p:', contextWaitMs: 1, keepPerSymbol: keep });
    const periods = 200;
    let stale = 0;
    let maxTimedOut = 0;
    for (let i = 1; i <= periods; i++) {
      const close = T0 + i * M30;
      // Odd periods' contexts never arrive in time: the bar's wait runs out and is remembered.
      if (i % 2 === 0) await buffer.put({ symbol: 'X', bar_close_ts: close } as unknown as StrategicContext);
      const got = await buffer.lookup('X', close);
      if (got.stale) stale++;
      const held = buffer.held('X');
      maxTimedOut = Math.max(maxTimedOut, held.timedOut);
      expect(held.items).toBeLessThanOrEqual(keep + 32);
      expect(held.timedOut).toBeLessThanOrEqual(keep + 32);
      expect(held.waitedFor).toBe(0); // no empty waiter list left behind per timed-out period
    }
    expect(stale).toBe(periods / 2);
    // The record of timed-out waits was used (it filled up) and trimmed, not just empty.
    expect(maxTimedOut).toBeGreaterThan(keep);
    expect(redis.hashes.get('p:ctx:X')!.size).toBeLessThanOrEqual(keep + 32);
  });
});
