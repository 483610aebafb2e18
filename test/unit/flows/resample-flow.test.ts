import type { Bar } from '../../../schemas/bar.schema';
import { resampleStep, type ResampleState } from '../../../src/flows/resample-flow';

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
