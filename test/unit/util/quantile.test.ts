import { binOfQuantile, median, quantile, sortedFinite } from '../../../src/util/quantile';

describe('quantile (linear interpolation between closest ranks, numpy default)', () => {
  it('matches numpy.quantile on a small sample', () => {
    // numpy.quantile([1, 2, 3, 4, 10], [0.1, 0.25, 0.5, 0.9, 0.99]) = 1.4, 2, 3, 7.6, 9.76
    const xs = [1, 2, 3, 4, 10];
    expect(quantile(xs, 0.1)).toBeCloseTo(1.4, 12);
    expect(quantile(xs, 0.25)).toBe(2);
    expect(quantile(xs, 0.5)).toBe(3);
    expect(quantile(xs, 0.9)).toBeCloseTo(7.6, 12);
    expect(quantile(xs, 0.99)).toBeCloseTo(9.76, 12);
  });

  it('q = 0 is the minimum and q = 1 the maximum', () => {
    const xs = [-5, 0, 2, 2, 8];
    expect(quantile(xs, 0)).toBe(-5);
    expect(quantile(xs, 1)).toBe(8);
  });

  it('the median of an even count is the mean of the two middle values', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('one value is every quantile of itself; no value gives NaN', () => {
    for (const q of [0, 0.3, 0.5, 1]) expect(quantile([7], q)).toBe(7);
    expect(quantile([], 0.5)).toBeNaN();
    expect(median([])).toBeNaN();
  });

  it('throws on q outside [0, 1] or NaN', () => {
    expect(() => quantile([1, 2], -0.01)).toThrow(RangeError);
    expect(() => quantile([1, 2], 1.01)).toThrow(/within \[0, 1\]/);
    expect(() => quantile([1, 2], Number.NaN)).toThrow(RangeError);
    expect(() => binOfQuantile([1], Number.NaN)).toThrow(RangeError);
  });

  it('sortedFinite drops NaN and ±Infinity and sorts numerically (not as strings)', () => {
    expect(Array.from(sortedFinite([10, Number.NaN, 9, -Infinity, 100, Infinity, -1]))).toEqual([-1, 9, 10, 100]);
    expect(median([Number.NaN, 3, 1, Number.NaN])).toBe(2);
    expect(median([Number.NaN])).toBeNaN();
  });
});

describe('binOfQuantile', () => {
  it('names the bin holding the lower rank of the interpolated quantile', () => {
    // values 0..99 one per bin: rank ⌊q·99⌋
    const ones = new Array<number>(100).fill(1);
    expect(binOfQuantile(ones, 0)).toBe(0);
    expect(binOfQuantile(ones, 0.5)).toBe(49);
    expect(binOfQuantile(ones, 0.99)).toBe(98);
    expect(binOfQuantile(ones, 1)).toBe(99);
  });

  it('agrees with quantile on the values the bins hold, and skips empty bins', () => {
    const counts = [0, 3, 0, 0, 5, 2, 0];
    const values = counts.flatMap((c, bin) => new Array<number>(c).fill(bin));
    for (const q of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]) expect(binOfQuantile(counts, q)).toBe(values[Math.floor(q * (values.length - 1))]);
    expect(binOfQuantile(counts, 0)).toBe(1);
  });

  it('-1 without observations', () => {
    expect(binOfQuantile([], 0.5)).toBe(-1);
    expect(binOfQuantile([0, 0], 0.5)).toBe(-1);
  });
});
