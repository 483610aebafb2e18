import { reconnectDelay } from '../../../src/state/redis-client';

describe("ioredis's reconnection pauses (the one Backoff schedule)", () => {
  it('doubles from 100 ms to at most 2 s, each pause shortened by up to half at random', () => {
    const bounds: [number, number, number][] = [
      [1, 50, 100],
      [2, 100, 200],
      [5, 800, 1600],
      [6, 1000, 2000],
      [1000, 1000, 2000],
    ];
    for (const [times, lo, hi] of bounds) {
      for (let k = 0; k < 20; k++) {
        const d = reconnectDelay(times);
        expect(d).toBeGreaterThanOrEqual(lo);
        expect(d).toBeLessThanOrEqual(hi);
      }
    }
    // Jitter: the pauses of one attempt are not all alike.
    expect(new Set(Array.from({ length: 20 }, () => reconnectDelay(5))).size).toBeGreaterThan(1);
  });
});
