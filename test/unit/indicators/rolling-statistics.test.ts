import {
  EfficiencyRatio,
  RollingCorrelation,
  RollingMinMax,
  RollingSlope,
  RollingStats,
} from '../../../src/indicators';
import { SeededRandom } from '../../../src/util/random';
import {
  compare,
  randomBars,
  refCorrelation,
  refEfficiencyRatio,
  refMax,
  refMin,
  refSlope,
  refSma,
  refStd,
  type Series,
} from './reference';

const TOL = 1e-9;

function expectAgreement(name: string, ours: Series, ref: Series, floor: number | number[] = 0): void {
  const c = compare(ours, ref, floor);
  expect({ name, nullMismatch: c.nullMismatch }).toEqual({ name, nullMismatch: -1 });
  expect(c.compared).toBeGreaterThan(0);
  if (c.worst > TOL) throw new Error(`${name}: relative error ${c.worst} at index ${c.worstIndex}`);
}

function statsSeries(x: readonly number[], n: number) {
  const s = new RollingStats(n);
  const mean: Series = [];
  const sum: Series = [];
  const std: Series = [];
  for (const v of x) {
    s.update(v);
    mean.push(s.ready ? s.mean : null);
    sum.push(s.ready ? s.sum : null);
    std.push(s.ready ? s.std : null);
  }
  return { mean, sum, std };
}

/**
 * Checks every rolling statistic against the whole-array reference on one series. The standard
 * deviation and slope are compared relative to the window's value level: a deviation far below
 * 1e-9 of the level is at the rounding noise of any implementation, the textbook one included.
 */
function checkRolling(x: readonly number[], y: readonly number[], n: number): void {
  const level = refSma(x.map(Math.abs), n).map((v) => (v === null ? 0 : v));
  const ours = statsSeries(x, n);
  expectAgreement('mean', ours.mean, refSma(x, n), level);
  expectAgreement('sum', ours.sum, refSma(x, n).map((m) => (m === null ? null : m * n)), level.map((l) => l * n));
  expectAgreement('std', ours.std, refStd(x, n), level.map((l) => l * 1e-6));

  const mm = new RollingMinMax(n);
  const min: Series = [];
  const max: Series = [];
  const corr = new RollingCorrelation(n);
  const corrOut: Series = [];
  const slope = new RollingSlope(n);
  const slopeOut: Series = [];
  const er = new EfficiencyRatio(n);
  const erOut: Series = [];
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    mm.update(v);
    min.push(mm.ready ? mm.min : null);
    max.push(mm.ready ? mm.max : null);
    corr.update(v, y[i] as number);
    corrOut.push(corr.value);
    slope.update(v);
    slopeOut.push(slope.value);
    er.update(v);
    erOut.push(er.value);
  }
  expectAgreement('min', min, refMin(x, n));
  expectAgreement('max', max, refMax(x, n));
  // Correlation and efficiency ratio live in [−1, 1] and [0, 1]: absolute agreement to 1e-9.
  expectAgreement('correlation', corrOut, refCorrelation(x, y, n), 1);
  expectAgreement('efficiency ratio', erOut, refEfficiencyRatio(x, n), 1);
  expectAgreement('slope', slopeOut, refSlope(x, n), level.map((l) => (l * 1e-6) / n));
}

describe('rolling statistics against whole-array textbook implementations', () => {
  const b = randomBars(21, 10_000);

  it.each([2, 20, 48])('agree to 1e-9 on 10,000 random-walk closes with flat stretches (period %i)', (n) => {
    expect.hasAssertions();
    checkRolling(b.close, b.volume, n);
  });

  it('agree to 1e-9 on zero-mean returns that are exactly 0 during flat stretches', () => {
    expect.hasAssertions();
    const r = b.close.map((c, i) => (i === 0 ? 0 : Math.log(c / (b.close[i - 1] as number))));
    // Returns hover around 0, so their level is their own magnitude.
    checkRolling(r, b.close, 30);
  });

  it('agree to 1e-9 at levels near 1e8 and near 1e-8', () => {
    expect.hasAssertions();
    checkRolling(randomBars(22, 3000, 1e8).close, randomBars(23, 3000).close, 20);
    checkRolling(randomBars(24, 3000, 1e-8).close, randomBars(25, 3000, 1e-8).close, 20);
  });

  it('agree to 1e-9 before, during and after a single jump by a factor of 1e6', () => {
    expect.hasAssertions();
    const x = randomBars(26, 2000).close;
    x[1000] = (x[1000] as number) * 1e6;
    checkRolling(x, randomBars(27, 2000).close, 20);
  });
});

describe('RollingStats', () => {
  it('reports the partial window before it is full, and zeros before the first value', () => {
    const s = new RollingStats(4);
    expect([s.ready, s.count, s.sum, s.mean, s.variance, s.std]).toEqual([false, 0, 0, 0, 0, 0]);
    s.update(1);
    s.update(3);
    expect([s.ready, s.count, s.sum, s.mean, s.variance]).toEqual([false, 2, 4, 2, 1]);
    s.update(5);
    s.update(7);
    expect([s.ready, s.sum, s.mean, s.variance]).toEqual([true, 16, 4, 5]);
  });

  it('drifts less than 1e-9 relative from an exact recompute after 1e6 updates at a 1e8 level', () => {
    // A level of 1e8 with unit-sized moves: Σx² − (Σx)²/n loses every digit here, and running
    // sums without exact recomputes accumulate error over a million updates.
    const n = 50;
    const rng = new SeededRandom(99);
    const s = new RollingStats(n);
    const window = new Float64Array(n);
    let x = 1e8;
    let worst = 0;
    for (let i = 0; i < 1_000_000; i++) {
      x += rng.normal() + (i % 100_000 === 0 ? 1e6 : 0);
      s.update(x);
      window[i % n] = x;
      if (i % 99_991 === 0 || i === 999_999) {
        if (!s.ready) continue;
        let m = 0;
        for (const v of window) m += v;
        m /= n;
        let ss = 0;
        for (const v of window) ss += (v - m) * (v - m);
        const std = Math.sqrt(ss / n);
        worst = Math.max(worst, Math.abs(s.std - std) / std, Math.abs(s.mean - m) / m);
      }
    }
    expect(worst).toBeLessThan(1e-9);
  });

  it('has a variance of exactly 0 once a window is constant again', () => {
    const s = new RollingStats(10);
    for (let i = 0; i < 50; i++) s.update(0.1 * i);
    for (let i = 0; i < 10; i++) s.update(0.3);
    expect(s.variance).toBe(0);
    expect(s.mean).toBe(0.3);
  });
});

describe('RollingMinMax', () => {
  it('tracks the extremes of the partial window before it is full, NaN before the first value', () => {
    const mm = new RollingMinMax(3);
    expect(Number.isNaN(mm.min) && Number.isNaN(mm.max)).toBe(true);
    const seen: [number, number, boolean][] = [];
    for (const v of [3, 1, 2, 5, 4, 0, 7, 7, 7]) {
      mm.update(v);
      seen.push([mm.min, mm.max, mm.ready]);
    }
    expect(seen).toEqual([
      [3, 3, false], [1, 3, false], [1, 3, true], [1, 5, true], [2, 5, true],
      [0, 5, true], [0, 7, true], [0, 7, true], [7, 7, true],
    ]);
  });
});

describe('RollingCorrelation', () => {
  it('returns 0 when either series is constant over the window, and ±1 for exact linear relations', () => {
    const c = new RollingCorrelation(5);
    for (let i = 0; i < 5; i++) c.update(i, 3);
    expect(c.value).toBe(0);
    const d = new RollingCorrelation(5);
    for (let i = 0; i < 8; i++) d.update(i * 0.7, 2 - 3 * i);
    expect(d.value).toBeCloseTo(-1, 12);
    const e = new RollingCorrelation(5);
    for (let i = 0; i < 8; i++) e.update(i * 0.7, 2 + 3 * i);
    expect(e.value).toBeCloseTo(1, 12);
  });

  it('is null until the window is full', () => {
    const c = new RollingCorrelation(3);
    c.update(1, 2);
    c.update(2, 3);
    expect(c.value).toBeNull();
    c.update(3, 5);
    expect(c.value).not.toBeNull();
  });
});

describe('RollingSlope', () => {
  it('returns the slope per update of a straight line, and exactly 0 for a flat window', () => {
    const s = new RollingSlope(10);
    for (let i = 0; i < 25; i++) s.update(5 - 0.25 * i);
    expect(s.value).toBeCloseTo(-0.25, 12);
    for (let i = 0; i < 10; i++) s.update(1.1);
    expect(s.value).toBe(0);
  });
});

describe('EfficiencyRatio', () => {
  it('is 1 for a straight move, 0 for a round trip and 0 (not NaN) when nothing moved', () => {
    const er = new EfficiencyRatio(4);
    const out = [1, 2, 3, 4, 5, 4, 3, 4, 5, 5, 5, 5, 5].map((c) => {
      er.update(c);
      return er.value;
    });
    // Bar 4: 5 − 1 over path 4. Bar 8: 5 − 5 over path 4 → 0? no: window 4,3,4,5 from 5 → |5−5|/… see below.
    expect(out.slice(0, 4)).toEqual([null, null, null, null]);
    expect(out[4]).toBe(1); // 1→5 in four steps of 1
    expect(out[6]).toBe(0); // 3→3 (closes 3,4,5,4,3): net 0, path 4
    expect(out[12]).toBe(0); // five equal closes: 0/0 defined as 0
  });
});

describe('constructor arguments', () => {
  it.each([0, -1, 2.5, Number.NaN])('rejects period %p with a RangeError', (p) => {
    expect(() => new RollingStats(p)).toThrow(RangeError);
    expect(() => new RollingMinMax(p)).toThrow(RangeError);
    expect(() => new RollingCorrelation(p)).toThrow(RangeError);
    expect(() => new RollingSlope(p)).toThrow(RangeError);
    expect(() => new EfficiencyRatio(p)).toThrow(RangeError);
  });

  it('rejects period 1 for correlation and slope, which need two points', () => {
    expect(() => new RollingCorrelation(1)).toThrow(RangeError);
    expect(() => new RollingSlope(1)).toThrow(RangeError);
  });
});
