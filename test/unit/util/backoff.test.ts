/** Backoff and retry: the one schedule of pauses between tries, and the one retry loop. */
import { Backoff, retry } from '../../../src/util/backoff';
import { SeededRandom } from '../../../src/util/random';

describe('Backoff', () => {
  it('doubles from the initial pause up to the cap', () => {
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map((n) => b.delayMs(n))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('shortens each pause by at most the jitter share, and a seeded source repeats its schedule', () => {
    const schedule = (seed: number): number[] => {
      const r = new SeededRandom(seed);
      const b = new Backoff({ initialDelayMs: 1000, maxDelayMs: 8000, jitter: 0.5, random: () => r.next() });
      return [1, 2, 3, 4].map((n) => b.delayMs(n));
    };
    const a = schedule(7);
    expect(schedule(7)).toEqual(a);
    expect(schedule(8)).not.toEqual(a);
    a.forEach((d, i) => {
      const nominal = 1000 * 2 ** i;
      expect(d).toBeGreaterThanOrEqual(nominal / 2);
      expect(d).toBeLessThanOrEqual(nominal);
    });
  });

  it('refuses a schedule that makes no sense', () => {
    expect(() => new Backoff({ initialDelayMs: 10, maxDelayMs: 5 })).toThrow(RangeError);
    expect(() => new Backoff({ initialDelayMs: 10, maxDelayMs: 50, jitter: 2 })).toThrow(RangeError);
  });
});

describe('retry', () => {
  const backoff = new Backoff({ initialDelayMs: 1, maxDelayMs: 4 });

  it('tries until success, pausing by the backoff between tries', async () => {
    const pauses: number[] = [];
    let calls = 0;
    const value = await retry(
      (n) => {
        calls++;
        return n < 3 ? Promise.reject(new Error(`try ${n}`)) : Promise.resolve('done');
      },
      { backoff, shouldRetry: () => true, onRetry: (_e, _n, ms) => pauses.push(ms) },
    );
    expect(value).toBe('done');
    expect(calls).toBe(3);
    expect(pauses).toHaveLength(2);
  });

  it('throws the error shouldRetry refuses, untouched', async () => {
    const fatal = new Error('fatal');
    let calls = 0;
    await expect(
      retry(
        () => {
          calls++;
          return Promise.reject(fatal);
        },
        { backoff, shouldRetry: (_e, n) => n < 2 },
      ),
    ).rejects.toBe(fatal);
    expect(calls).toBe(2);
  });
});
