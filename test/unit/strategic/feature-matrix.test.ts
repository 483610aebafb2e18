import type { Bar } from '../../../schemas/bar.schema';
import { generateSyntheticMarket } from '../../../src/producers/synthetic-market';
import { FEATURE, FEATURE_COUNT, FeatureMatrix, WINDOW_BARS, resampleTo30m } from '../../../src/strategic';
import { viaJson } from '../../fixtures/json';
import { encodeFloats } from '../../../src/indicators/float-codec';
import { decodeFloat64Bits } from '../../../src/strategic/float-bits';

/**
 * A plain whole-history reimplementation of every feature for bar `t`, written from the formulas
 * in the FeatureMatrix doc comment (textbook two-pass statistics, no streaming).
 */
function reference(bars: Bar[], t: number): number[] {
  const c = bars.map((b) => b.close);
  const r = (i: number): number => Math.log((c[i] as number) / (c[i - 1] as number));
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const popStd = (xs: number[]): number => {
    const m = mean(xs);
    return Math.sqrt(mean(xs.map((x) => (x - m) ** 2)));
  };
  const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, k) => from + k);
  const bar = bars[t] as Bar;
  const out: number[] = new Array<number>(FEATURE_COUNT).fill(0);
  out[FEATURE.price_change] = t > 0 ? r(t) : 0;
  if (t >= 19) {
    const mv = mean(range(t - 19, t).map((i) => (bars[i] as Bar).volume));
    out[FEATURE.volume_ratio] = mv > 0 ? bar.volume / mv : 1;
  } else out[FEATURE.volume_ratio] = 1;
  out[FEATURE.volatility] = t >= 20 ? popStd(range(t - 19, t).map(r)) : 0;
  out[FEATURE.momentum] = t >= 10 ? Math.log(bar.close / (c[t - 10] as number)) : 0;
  // RSI 14, Wilder, seeded with the plain mean of the first 14 gains and losses.
  if (t >= 14) {
    let gain = 0;
    let loss = 0;
    for (let i = 1; i <= 14; i++) {
      const d = (c[i] as number) - (c[i - 1] as number);
      gain += Math.max(d, 0) / 14;
      loss += Math.max(-d, 0) / 14;
    }
    for (let i = 15; i <= t; i++) {
      const d = (c[i] as number) - (c[i - 1] as number);
      gain = (gain * 13 + Math.max(d, 0)) / 14;
      loss = (loss * 13 + Math.max(-d, 0)) / 14;
    }
    out[FEATURE.rsi] = loss === 0 ? (gain === 0 ? 0.5 : 1) : 1 - 1 / (1 + gain / loss);
  } else out[FEATURE.rsi] = 0.5;
  const ema = (xs: number[], n: number): (number | null)[] => {
    const res: (number | null)[] = [];
    let e = 0;
    for (let i = 0; i < xs.length; i++) {
      if (i < n - 1) res.push(null);
      else if (i === n - 1) res.push((e = mean(xs.slice(0, n))));
      else res.push((e = e + ((xs[i] as number) - e) * (2 / (n + 1))));
    }
    return res;
  };
  const closes = c.slice(0, t + 1);
  const e12 = ema(closes, 12);
  const e26 = ema(closes, 26);
  const macd = closes.map((_, i) => (e26[i] === null ? null : (e12[i] as number) - (e26[i] as number)));
  const macdValues = macd.filter((x): x is number => x !== null);
  const signal = ema(macdValues, 9);
  const lastSignal = signal[signal.length - 1];
  out[FEATURE.macd_hist] =
    lastSignal === null || lastSignal === undefined ? 0 : ((macdValues[macdValues.length - 1] as number) - lastSignal) / bar.close;
  if (t >= 19) {
    const w = c.slice(t - 19, t + 1);
    const m = mean(w);
    const sd = popStd(w);
    out[FEATURE.bollinger_position] = sd > 0 ? (bar.close - (m - 2 * sd)) / (4 * sd) : 0.5;
  } else out[FEATURE.bollinger_position] = 0.5;
  const clv = bars.slice(0, t + 1).map((b) => (b.high > b.low ? (b.close - b.low - (b.high - b.close)) / (b.high - b.low) : 0));
  const clvEma = ema(clv, 10);
  out[FEATURE.market_sentiment] = clvEma[t] ?? 0;
  if (t >= 19) {
    const ys = c.slice(t - 19, t + 1);
    const xs = range(0, 19);
    const mx = mean(xs);
    const my = mean(ys);
    const cov = mean(xs.map((x, k) => (x - mx) * ((ys[k] as number) - my)));
    const sy = popStd(ys);
    out[FEATURE.correlation_strength] = sy > 0 ? cov / (popStd(xs) * sy) : 0;
  }
  if (t >= 10) {
    let path = 0;
    for (let i = t - 9; i <= t; i++) path += Math.abs((c[i] as number) - (c[i - 1] as number));
    out[FEATURE.regime_indicator] = path > 0 ? Math.abs(bar.close - (c[t - 10] as number)) / path : 0;
  }
  const hi = Math.max(...bars.slice(Math.max(0, t - 47), t + 1).map((b) => b.high));
  out[FEATURE.risk_score] = 1 - bar.close / hi;
  if (t >= 20) {
    const a = range(t - 19, t).map((i) => {
      const b = bars[i] as Bar;
      return b.volume > 0 ? Math.abs(r(i)) / (b.close * b.volume) : 0;
    });
    const m = mean(a);
    out[FEATURE.liquidity_index] = m > 0 ? Math.log(m) : 0;
  }
  if (t >= 48) {
    const rs = range(t - 47, t).map(r);
    const s = popStd(rs);
    const m12 = mean(rs.slice(36));
    const m36 = mean(rs.slice(0, 36));
    out[FEATURE.structural_break] = s > 0 ? (m12 - m36) / (s * Math.sqrt(1 / 12 + 1 / 36)) : 0;
  }
  return out;
}

function bars30m(seed: number, n5m: number): Bar[] {
  return resampleTo30m(generateSyntheticMarket({ seed, bars: n5m, segmentBars: [288, 600] }).bars);
}

function expectClose(actual: number, expected: number, what: string): void {
  const tol = 1e-9 * Math.max(1, Math.abs(expected));
  if (!(Math.abs(actual - expected) <= tol)) throw new Error(`${what}: got ${actual}, expected ${expected}`);
}

describe('FeatureMatrix', () => {
  it('matches a whole-history reimplementation of every feature on every row of the window', () => {
    const bars = bars30m(11, 6 * 130);
    const fm = new FeatureMatrix();
    const window = new Float64Array(WINDOW_BARS * FEATURE_COUNT);
    for (let t = 0; t < bars.length; t++) {
      fm.update(bars[t] as Bar);
      const rows = fm.copyWindow(window);
      expect(rows).toBe(Math.min(t + 1, WINDOW_BARS));
      // Check the whole window (oldest row first) every 7 bars, the latest row every bar.
      const from = t % 7 === 0 ? rows - 1 : 0;
      for (let k = rows - 1 - from; k < rows; k++) {
        const barIndex = t - (rows - 1 - k);
        const expected = reference(bars, barIndex);
        for (let f = 0; f < FEATURE_COUNT; f++) {
          expectClose(window[k * FEATURE_COUNT + f] as number, expected[f] as number, `bar ${barIndex} feature ${f}`);
        }
      }
    }
    expect(fm.fullyWarm).toBe(true);
  });

  it('defines every degenerate case: flat prices, zero volume, zero range', () => {
    const fm = new FeatureMatrix();
    for (let t = 0; t < 100; t++) {
      fm.update({ open: 50, high: 50, low: 50, close: 50, volume: 0 });
    }
    const window = new Float64Array(WINDOW_BARS * FEATURE_COUNT);
    fm.copyWindow(window);
    expect(Array.from(window).every(Number.isFinite)).toBe(true);
    const last = (f: number): number => fm.latest(f);
    expect(last(FEATURE.price_change)).toBe(0);
    expect(last(FEATURE.volume_ratio)).toBe(1);
    expect(last(FEATURE.volatility)).toBe(0);
    expect(last(FEATURE.bollinger_position)).toBe(0.5);
    expect(last(FEATURE.market_sentiment)).toBe(0);
    expect(last(FEATURE.correlation_strength)).toBe(0);
    expect(last(FEATURE.regime_indicator)).toBe(0);
    expect(last(FEATURE.risk_score)).toBe(0);
    expect(last(FEATURE.liquidity_index)).toBe(0);
    expect(last(FEATURE.structural_break)).toBe(0);
  });

  it('round-trips its state through JSON exactly and continues bit for bit', () => {
    const bars = bars30m(12, 6 * 150);
    const a = new FeatureMatrix();
    for (let t = 0; t < 90; t++) a.update(bars[t] as Bar);
    const b = FeatureMatrix.fromJSON(viaJson(a.toJSON()));
    expect(b.toJSON()).toEqual(a.toJSON());
    const wa = new Float64Array(WINDOW_BARS * FEATURE_COUNT);
    const wb = new Float64Array(WINDOW_BARS * FEATURE_COUNT);
    for (let t = 90; t < bars.length; t++) {
      a.update(bars[t] as Bar);
      b.update(bars[t] as Bar);
      a.copyWindow(wa);
      b.copyWindow(wb);
      expect(Buffer.from(wb.buffer).equals(Buffer.from(wa.buffer))).toBe(true);
    }
  });

  it('restores a state saved with number arrays (before the base64 encoding) to the same matrix', () => {
    const bars = bars30m(13, 6 * 120);
    const a = new FeatureMatrix();
    for (let t = 0; t < 80; t++) a.update(bars[t] as Bar);
    const state = a.toJSON();
    expect(typeof state.rows).toBe('string');
    const old = {
      ...state,
      rows: encodeFloats(decodeFloat64Bits(state.rows, WINDOW_BARS * FEATURE_COUNT, 'rows')),
      closes: encodeFloats(decodeFloat64Bits(state.closes, WINDOW_BARS + 1, 'closes')),
    };
    expect(Array.isArray(old.rows)).toBe(true);
    const b = FeatureMatrix.fromJSON(viaJson(old));
    expect(b.toJSON()).toEqual(state);
  });

  it('rejects an output buffer too small for the window', () => {
    const fm = new FeatureMatrix();
    for (let t = 0; t < 60; t++) fm.update({ open: 1, high: 1.1, low: 0.9, close: 1 + t / 100, volume: 1 });
    expect(() => fm.copyWindow(new Float64Array(10))).toThrow(RangeError);
  });
});
