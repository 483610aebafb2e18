import { requiredContextClose } from '../../../src/util/periods';

const T0 = Date.UTC(2024, 0, 1);
const M5 = 300_000;
const M30 = 1_800_000;

describe('requiredContextClose', () => {
  it('makes the bar that completes a 30m bar wait for that bar’s own context', () => {
    expect(requiredContextClose(T0 + 5 * M5, T0 + 4 * M5, null)).toBe(T0 + M30);
  });
  it('keeps the last completed context for the bars inside the next period', () => {
    expect(requiredContextClose(T0 + 6 * M5, T0 + 5 * M5, T0 + M30)).toBe(T0 + M30);
    expect(requiredContextClose(T0 + 7 * M5, T0 + 6 * M5, T0 + M30)).toBe(T0 + M30);
  });
  it('has no context before the first 30m bar closes', () => {
    expect(requiredContextClose(T0, null, null)).toBeNull();
    expect(requiredContextClose(T0 + M5, T0, null)).toBeNull();
  });
  it('after a gap, uses the period that had data even though its last slot was missing', () => {
    // bars at slots 0..3, then slot 8: the first period closed (partially) at T0 + 30m
    expect(requiredContextClose(T0 + 8 * M5, T0 + 3 * M5, null)).toBe(T0 + M30);
  });
  it('never uses a context that closes after the bar (no look-ahead)', () => {
    for (let slot = 0; slot < 40; slot++) {
      const ts = T0 + slot * M5;
      const required = requiredContextClose(ts, slot === 0 ? null : ts - M5, null);
      expect(required ?? ts).toBeLessThanOrEqual(ts + M5);
    }
  });
});
