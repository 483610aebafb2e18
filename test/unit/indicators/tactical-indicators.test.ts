import {
  Atr,
  BollingerBands,
  Ema,
  Macd,
  Rsi,
  Sma,
  TacticalIndicatorSet,
  TrueRange,
  type IndicatorValues,
} from '../../../src/indicators';
import {
  compare,
  firstValue,
  randomBars,
  refAtr,
  refBollinger,
  refEma,
  refMacd,
  refRsi,
  refSma,
  refTrueRange,
  type Bars,
  type Series,
} from './reference';

const TOL = 1e-9;
const BARS = 12_000;

interface TacticalRun {
  sma20: Series;
  ema12: Series;
  ema26: Series;
  rsi14: Series;
  macd: Series;
  signal: Series;
  hist: Series;
  upper: Series;
  middle: Series;
  lower: Series;
  tr: Series;
  atr14: Series;
}

/** Runs every tactical indicator class on the bars, one update per bar. */
function runClasses(b: Bars): TacticalRun {
  const sma = new Sma(20);
  const ema12 = new Ema(12);
  const ema26 = new Ema(26);
  const rsi = new Rsi(14);
  const macd = new Macd(12, 26, 9);
  const bb = new BollingerBands(20, 2);
  const tr = new TrueRange();
  const atr = new Atr(14);
  const out: TacticalRun = {
    sma20: [], ema12: [], ema26: [], rsi14: [], macd: [], signal: [], hist: [],
    upper: [], middle: [], lower: [], tr: [], atr14: [],
  };
  for (let i = 0; i < b.close.length; i++) {
    const h = b.high[i] as number;
    const l = b.low[i] as number;
    const c = b.close[i] as number;
    out.sma20.push(sma.update(c));
    out.ema12.push(ema12.update(c));
    out.ema26.push(ema26.update(c));
    out.rsi14.push(rsi.update(c));
    macd.update(c);
    out.macd.push(macd.macd);
    out.signal.push(macd.signal);
    out.hist.push(macd.histogram);
    bb.update(c);
    out.upper.push(bb.upper);
    out.middle.push(bb.middle);
    out.lower.push(bb.lower);
    out.tr.push(tr.update(h, l, c));
    out.atr14.push(atr.update(h, l, c));
  }
  return out;
}

/** Asserts agreement with the reference: nulls exactly where the reference has them, values to TOL. */
function expectAgreement(name: string, ours: Series, ref: Series, floor: number | number[] = 0): void {
  const c = compare(ours, ref, floor);
  expect({ name, nullMismatch: c.nullMismatch }).toEqual({ name, nullMismatch: -1 });
  expect(c.compared).toBeGreaterThan(0);
  if (c.worst > TOL) throw new Error(`${name}: relative error ${c.worst} at bar ${c.worstIndex}`);
}

function checkAgainstReference(b: Bars): void {
  const ours = runClasses(b);
  const x = b.close;
  // MACD lines are differences of EMAs: their error is measured against the price scale.
  const priceScale = x.map((v) => Math.abs(v));
  const refM = refMacd(x, 12, 26, 9);
  const refB = refBollinger(x, 20, 2);
  expectAgreement('sma20', ours.sma20, refSma(x, 20));
  expectAgreement('ema12', ours.ema12, refEma(x, 12));
  expectAgreement('ema26', ours.ema26, refEma(x, 26));
  expectAgreement('rsi14', ours.rsi14, refRsi(x, 14));
  expectAgreement('macd', ours.macd, refM.macd, priceScale);
  expectAgreement('macd signal', ours.signal, refM.signal, priceScale);
  expectAgreement('macd histogram', ours.hist, refM.hist, priceScale);
  expectAgreement('bb upper', ours.upper, refB.upper);
  expectAgreement('bb middle', ours.middle, refB.middle);
  expectAgreement('bb lower', ours.lower, refB.lower);
  expectAgreement('true range', ours.tr, refTrueRange(b));
  // A true range of exactly 0 (flat bars) must come out as exactly 0: floor 0 demands it.
  expectAgreement('atr14', ours.atr14, refAtr(b, 14), priceScale.map((p) => p * 1e-6));
}

describe('tactical indicators against whole-array textbook implementations', () => {
  it('agree to 1e-9 on 12,000 random-walk bars with flat stretches and zero-volume gaps', () => {
    const b = randomBars(42, BARS);
    // The generator must really produce the edge cases this test claims to cover.
    const flatBars = b.close.filter((c, i) => i > 0 && c === b.close[i - 1]).length;
    expect(flatBars).toBeGreaterThan(300);
    expect(b.volume.filter((v) => v === 0).length).toBeGreaterThan(300);
    checkAgainstReference(b);
  });

  it('agree to 1e-9 at a price level near 1e8', () => {
    expect.hasAssertions();
    checkAgainstReference(randomBars(7, 4000, 1e8));
  });

  it('agree to 1e-9 at a price level near 1e-8', () => {
    expect.hasAssertions();
    checkAgainstReference(randomBars(8, 4000, 1e-8));
  });

  it('agree to 1e-9 around a single jump by a factor of a million and back', () => {
    expect.hasAssertions();
    const b = randomBars(9, 3000);
    for (const series of [b.high, b.low, b.close]) series[1500] = (series[1500] as number) * 1e6;
    checkAgainstReference(b);
  });
});

describe('warm-up', () => {
  const b = randomBars(3, 200);
  const ours = runClasses(b);

  it('returns null exactly until the TA-Lib first-output bar of each indicator', () => {
    expect({
      sma20: firstValue(ours.sma20),
      ema12: firstValue(ours.ema12),
      ema26: firstValue(ours.ema26),
      rsi14: firstValue(ours.rsi14),
      macd: firstValue(ours.macd),
      signal: firstValue(ours.signal),
      hist: firstValue(ours.hist),
      bb: firstValue(ours.upper),
      tr: firstValue(ours.tr),
      atr14: firstValue(ours.atr14),
    }).toEqual({ sma20: 19, ema12: 11, ema26: 25, rsi14: 14, macd: 25, signal: 33, hist: 33, bb: 19, tr: 1, atr14: 14 });
  });

  it('never returns null again once an indicator has produced a value', () => {
    for (const s of Object.values(ours) as Series[]) {
      const first = firstValue(s);
      expect(s.slice(first).every((v) => typeof v === 'number' && Number.isFinite(v))).toBe(true);
    }
  });
});

describe('hand-computed values', () => {
  it('computes a period-2 Wilder RSI step by step', () => {
    // Changes +1, +1, −1, +2. Seed at bar 2: avgGain 1, avgLoss 0 → 100.
    // Bar 3: gain (1·1 + 0)/2 = 0.5, loss (0·1 + 1)/2 = 0.5 → 50.
    // Bar 4: gain (0.5 + 2)/2 = 1.25, loss 0.25/… = (0.5 + 0)/2 = 0.25 → 100·1.25/1.5.
    const rsi = new Rsi(2);
    expect([1, 2, 3, 2, 4].map((c) => rsi.update(c))).toEqual([null, null, 100, 50, (100 * 1.25) / 1.5]);
  });

  it('seeds an EMA with the mean of the first n values, then applies k = 2/(n+1)', () => {
    const ema = new Ema(3);
    // Seed (2 + 4 + 6)/3 = 4; then 4 + (8 − 4)·0.5 = 6; then 6 + (0 − 6)·0.5 = 3.
    expect([2, 4, 6, 8, 0].map((x) => ema.update(x))).toEqual([null, null, 4, 6, 3]);
  });

  it('has no true range on the first bar and takes gaps through the previous close into account', () => {
    const tr = new TrueRange();
    expect(tr.update(10, 9, 9.5)).toBeNull();
    expect(tr.update(12, 11, 11.5)).toBe(2.5); // gap up: high − previous close
    expect(tr.update(9, 8.5, 8.75)).toBe(3); // gap down: previous close − low
    expect(tr.update(9, 8, 8.5)).toBe(1); // inside: high − low
  });

  it('seeds the ATR with the mean of the first n true ranges, starting on bar index n', () => {
    const atr = new Atr(2);
    expect(atr.update(10, 9, 9.5)).toBeNull();
    expect(atr.update(12, 11, 11.5)).toBeNull(); // tr 2.5
    expect(atr.update(9, 8.5, 8.75)).toBe(2.75); // tr 3, mean (2.5 + 3)/2
    expect(atr.update(9, 8, 8.5)).toBe((2.75 + 1) / 2); // tr 1
  });

  it('uses the population standard deviation for the Bollinger bands', () => {
    const bb = new BollingerBands(4, 2);
    for (const c of [1, 2, 3, 4]) bb.update(c);
    // mean 2.5, population variance 1.25 (the sample variance would be 5/3).
    expect(bb.middle).toBe(2.5);
    expect(bb.upper).toBeCloseTo(2.5 + 2 * Math.sqrt(1.25), 14);
    expect(bb.lower).toBeCloseTo(2.5 - 2 * Math.sqrt(1.25), 14);
  });
});

describe('edge cases', () => {
  it('gives RSI 0 (as TA-Lib does), zero-width bands, ATR 0 and MACD 0 for constant prices', () => {
    const set = new TacticalIndicatorSet();
    for (let i = 0; i < 100; i++) set.update(37000.5, 37000.5, 37000.5);
    expect(set.snapshot()).toEqual<IndicatorValues>({
      sma20: 37000.5,
      ema12: 37000.5,
      ema26: 37000.5,
      rsi14: 0,
      macd: 0,
      macd_signal: 0,
      macd_hist: 0,
      bb_upper: 37000.5,
      bb_middle: 37000.5,
      bb_lower: 37000.5,
      atr14: 0,
    });
  });

  it('gives RSI 100 when prices only rise and keeps the last ratio through a flat stretch', () => {
    const rsi = new Rsi(14);
    for (let i = 0; i < 30; i++) rsi.update(100 + i);
    expect(rsi.value).toBe(100);
    for (let i = 0; i < 50; i++) rsi.update(100 + (i % 2));
    rsi.update(100);
    const before = rsi.value as number;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(100);
    for (let i = 0; i < 200; i++) rsi.update(100);
    // Both Wilder averages decay by the same factor, so their ratio (and the RSI) hardly moves.
    expect(Math.abs((rsi.value as number) - before)).toBeLessThan(1e-9);
  });

  it('returns the Bollinger bands to exactly zero width once a huge jump has left the window', () => {
    const bb = new BollingerBands(20, 2);
    for (let i = 0; i < 30; i++) bb.update(i === 5 ? 1e12 : 0.1);
    expect(bb.upper).toBe(bb.lower);
    expect(bb.middle).toBe(0.1);
  });

  it('rejects non-finite prices in the set without changing its state', () => {
    const b = randomBars(5, 60);
    const set = new TacticalIndicatorSet();
    for (let i = 0; i < 60; i++) set.update(b.high[i] as number, b.low[i] as number, b.close[i] as number);
    const before = JSON.stringify(set);
    expect(() => set.update(Number.NaN, 1, 1)).toThrow(RangeError);
    expect(() => set.update(1, 1, Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(JSON.stringify(set)).toBe(before);
  });
});

describe('TacticalIndicatorSet', () => {
  it('reports exactly the values of the individual indicator classes, bit for bit (sma20 = Bollinger middle)', () => {
    const b = randomBars(11, 3000);
    const ours = runClasses(b);
    const set = new TacticalIndicatorSet();
    const got: Record<keyof IndicatorValues, Series> = {
      sma20: [], ema12: [], ema26: [], rsi14: [], macd: [], macd_signal: [], macd_hist: [],
      bb_upper: [], bb_middle: [], bb_lower: [], atr14: [],
    };
    for (let i = 0; i < b.close.length; i++) {
      set.update(b.high[i] as number, b.low[i] as number, b.close[i] as number);
      const snap = set.snapshot();
      for (const key of Object.keys(got) as (keyof IndicatorValues)[]) got[key].push(snap[key]);
      expect(set.macdHist).toBe(snap.macd_hist);
    }
    expect(got).toEqual({
      sma20: ours.middle,
      ema12: ours.ema12,
      ema26: ours.ema26,
      rsi14: ours.rsi14,
      macd: ours.macd,
      macd_signal: ours.signal,
      macd_hist: ours.hist,
      bb_upper: ours.upper,
      bb_middle: ours.middle,
      bb_lower: ours.lower,
      atr14: ours.atr14,
    });
  });

  it('exposes the eleven values through getters equal to the snapshot', () => {
    const b = randomBars(12, 100);
    const set = new TacticalIndicatorSet();
    for (let i = 0; i < 100; i++) set.update(b.high[i] as number, b.low[i] as number, b.close[i] as number);
    expect({
      sma20: set.sma20, ema12: set.ema12, ema26: set.ema26, rsi14: set.rsi14, macd: set.macd,
      macd_signal: set.macdSignal, macd_hist: set.macdHist, bb_upper: set.bbUpper,
      bb_middle: set.bbMiddle, bb_lower: set.bbLower, atr14: set.atr14,
    }).toEqual(set.snapshot());
    expect(Object.values(set.snapshot()).every((v) => typeof v === 'number')).toBe(true);
  });
});

describe('constructor arguments', () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects period %p with a RangeError', (p) => {
    expect(() => new Sma(p)).toThrow(RangeError);
    expect(() => new Ema(p)).toThrow(RangeError);
    expect(() => new Rsi(p)).toThrow(RangeError);
    expect(() => new Atr(p)).toThrow(RangeError);
    expect(() => new BollingerBands(p)).toThrow(RangeError);
    expect(() => new Macd(p, 26, 9)).toThrow(RangeError);
    expect(() => new Macd(12, 26, p)).toThrow(RangeError);
  });

  it('rejects a MACD whose fast span is not below its slow span, and a negative band width', () => {
    expect(() => new Macd(26, 12, 9)).toThrow(RangeError);
    expect(() => new Macd(12, 12, 9)).toThrow(RangeError);
    expect(() => new BollingerBands(20, -1)).toThrow(RangeError);
    expect(() => new BollingerBands(20, Number.NaN)).toThrow(RangeError);
  });

  it('accepts period 1, where each indicator follows its input', () => {
    const sma = new Sma(1);
    const ema = new Ema(1);
    expect([sma.update(3), ema.update(3), sma.update(5), ema.update(5)]).toEqual([3, 3, 5, 5]);
  });
});
