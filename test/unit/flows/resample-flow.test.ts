import type { Bar } from '../../../schemas/bar.schema';
import { resampleAhead, resampleStep, type ResampleState } from '../../../src/flows/resample-flow';

const T0 = Date.UTC(2024, 0, 1);
const M5 = 300_000;

function bar(slot: number, close: number, volume = 1): Bar {
  return { symbol: 'X', timeframe: '5m', ts: T0 + slot * M5, open: close - 1, high: close + 2, low: close - 3, close, volume };
}

function run(slots: number[]): { emitted: ReturnType<typeof resampleStep>['emitted']; state: ResampleState | null } {
  let state: ResampleState | null = null;
  const emitted: ReturnType<typeof resampleStep>['emitted'] = [];
  for (const s of slots) {
    const out = resampleStep(state, bar(s, 100 + s, s + 1));
    state = out.state;
    emitted.push(...out.emitted);
  }
  return { emitted, state };
}

describe('resampleStep', () => {
  it('emits one 30m bar when the sixth aligned 5m bar arrives', () => {
    const { emitted, state } = run([0, 1, 2, 3, 4, 5]);
    expect(emitted).toEqual([
      { symbol: 'X', timeframe: '30m', ts: T0, open: 99, high: 107, low: 97, close: 105, volume: 21, bars: 6 },
    ]);
    expect(state).toBeNull();
  });

  it('emits nothing before the period is complete', () => {
    expect(run([0, 1, 2, 3, 4]).emitted).toEqual([]);
  });

  it('emits a partial bar when a later period starts before the last slot arrived (gap)', () => {
    const { emitted, state } = run([0, 1, 2, 7]);
    expect(emitted).toHaveLength(1);
    expect(emitted[0]).toMatchObject({ ts: T0, close: 102, bars: 3, volume: 6 });
    expect(state).toMatchObject({ periodTs: T0 + 6 * M5, count: 1 });
  });

  it('gives no bar for a period without any 5m bar', () => {
    const { emitted } = run([0, 1, 2, 3, 4, 5, 18, 19, 20, 21, 22, 23]);
    expect(emitted.map((b) => (b.ts - T0) / (6 * M5))).toEqual([0, 3]);
  });

  it('emits the completing bar alone when the period had only its last slot', () => {
    const { emitted } = run([5]);
    expect(emitted).toEqual([expect.objectContaining({ ts: T0, bars: 1, open: 104, close: 105 })]);
  });
});

describe('resampleAhead', () => {
  const P = 6 * M5; // one 30m period

  /** The 30m bars resampleStep emits, with the open time of the 5m bar that emitted each. */
  function emittedBy(slots: number[]): { by: number; bar: ReturnType<typeof resampleStep>['emitted'][number] }[] {
    let state: ResampleState | null = null;
    const out: { by: number; bar: ReturnType<typeof resampleStep>['emitted'][number] }[] = [];
    for (const s of slots) {
      const b = bar(s, 100 + s, s + 1);
      const r = resampleStep(state, b);
      state = r.state;
      for (const e of r.emitted) out.push({ by: b.ts, bar: e });
    }
    return out;
  }

  it('gives exactly the 30m bars resampleStep emits for the same bars, up to the horizon', () => {
    // Gaps included: slots 9 and 20..23 are missing, so two periods are emitted partial.
    const slots = [...Array(40).keys()].filter((s) => s !== 9 && (s < 20 || s > 23));
    const from = 3; // the lane has processed slots 0..3
    const before = run(slots.slice(0, from + 1));
    const ahead = slots.slice(from + 1).map((s) => bar(s, 100 + s, s + 1));
    for (const periods of [1, 2, 3, 4, 6]) {
      const horizon = T0 + periods * P;
      const got = resampleAhead(before.state, bar(slots[from]!, 0).ts, ahead, horizon);
      // Up to the horizon, except a gap's period that only a bar past it emits (left to the lane).
      const all = emittedBy(slots)
        .filter((e) => e.bar.ts + P <= horizon && e.by < horizon && e.by > bar(slots[from]!, 0).ts)
        .map((e) => e.bar);
      expect(got).toEqual(all);
      expect(got.length).toBeGreaterThan(0);
    }
  });

  it('stops at a bar that is not after the previous one (the lane would not accept it)', () => {
    const before = run([0, 1]);
    const ahead = [2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((s) => bar(s, 100 + s));
    expect(resampleAhead(before.state, bar(1, 0).ts, ahead, T0 + 4 * P)).toEqual([]);
    const clean = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((s) => bar(s, 100 + s));
    expect(resampleAhead(before.state, bar(1, 0).ts, clean, T0 + 4 * P).map((b) => b.ts)).toEqual([T0, T0 + P]);
  });

  it('leaves a gap period that only a bar past the horizon would close to the lane', () => {
    const before = run([0]);
    const ahead = [1, 2, 13].map((s) => bar(s, 100 + s)); // period 0 ends without slot 5
    expect(resampleAhead(before.state, bar(0, 0).ts, ahead, T0 + 2 * P)).toEqual([]);
    expect(resampleAhead(before.state, bar(0, 0).ts, ahead, T0 + 3 * P)).toHaveLength(1);
  });
});
