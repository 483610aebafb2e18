/** The 30m period rules (src/util/periods.ts): boundaries, completion, and the stale-context rule. */
import {
  completesPeriod,
  PERIOD_MS,
  periodCloseOf,
  periodOpenOf,
  periodsAfter,
  periodsBetween,
  settledContext,
  staleContext,
} from '../../../src/util/periods';

const T0 = Date.UTC(2025, 0, 1);
const M5 = 300_000;

describe('30m periods', () => {
  it('puts the six 5m bars opening at T … T+25m in the period [T, T+30m)', () => {
    for (let slot = 0; slot < 6; slot++) {
      expect(periodOpenOf(T0 + slot * M5)).toBe(T0);
      expect(periodCloseOf(T0 + slot * M5)).toBe(T0 + PERIOD_MS);
      expect(completesPeriod(T0 + slot * M5)).toBe(slot === 5);
    }
    expect(periodOpenOf(T0 + 6 * M5)).toBe(T0 + PERIOD_MS);
    // A 30m bar's ts is its period's open: its close is one period later.
    expect(periodCloseOf(T0 + PERIOD_MS)).toBe(T0 + 2 * PERIOD_MS);
  });

  it('counts periods', () => {
    expect(periodsAfter(T0, 3)).toBe(T0 + 3 * PERIOD_MS);
    expect(periodsAfter(T0, -2)).toBe(T0 - 2 * PERIOD_MS);
    expect(periodsBetween(T0, T0 + 4 * PERIOD_MS)).toBe(4);
  });

  it('falls back to the newest older context, marked stale, when the needed one is missing', () => {
    const byClose = new Map([
      [T0 + PERIOD_MS, 'a'],
      [T0 + 3 * PERIOD_MS, 'c'],
      [T0 + 5 * PERIOD_MS, 'e'],
    ]);
    expect(settledContext(byClose, T0 + 3 * PERIOD_MS)).toEqual({ item: 'c', stale: false });
    expect(settledContext(byClose, T0 + 4 * PERIOD_MS)).toEqual({ item: 'c', stale: true });
    expect(settledContext(byClose, T0)).toEqual({ item: null, stale: true });
    expect(settledContext(byClose, null)).toEqual({ item: null, stale: false });
    // Never a later one, whatever the order of the map.
    expect(staleContext([...byClose].reverse(), T0 + 5 * PERIOD_MS)).toBe('c');
  });
});
