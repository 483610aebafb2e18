import {
  Atr,
  type AtrState,
  BollingerBands,
  type BollingerBandsState,
  EfficiencyRatio,
  type EfficiencyRatioState,
  Ema,
  type EmaState,
  Macd,
  type MacdState,
  RollingCorrelation,
  type RollingCorrelationState,
  RollingMinMax,
  type RollingMinMaxState,
  RollingSlope,
  type RollingSlopeState,
  RollingStats,
  type RollingStatsState,
  Rsi,
  type RsiState,
  Sma,
  type SmaState,
  TacticalIndicatorSet,
  type TacticalIndicatorSetState,
  TrueRange,
  type TrueRangeState,
} from '../../../src/indicators';
import { decodeFloat, encodeFloat } from '../../../src/indicators/float-codec';
import { SeededRandom } from '../../../src/util/random';
import { randomBars, type Bars } from './reference';
import { viaJson } from '../../fixtures/json';

/** One indicator under test: how to build it, feed bar i, read its outputs and restore it. */
interface Subject<T> {
  name: string;
  create(): T;
  step(ind: T, b: Bars, i: number): void;
  read(ind: T): (number | null | boolean)[];
  restore(state: unknown): T;
}

function subject<T extends { toJSON(): unknown }>(s: Subject<T>): Subject<T> {
  return s;
}

const h = (b: Bars, i: number): number => b.high[i] as number;
const l = (b: Bars, i: number): number => b.low[i] as number;
const c = (b: Bars, i: number): number => b.close[i] as number;
const v = (b: Bars, i: number): number => b.volume[i] as number;

const SUBJECTS = [
  subject({ name: 'Sma', create: () => new Sma(20), step: (x, b, i) => x.update(c(b, i)), read: (x) => [x.value], restore: (s) => Sma.fromJSON(s as SmaState) }),
  subject({ name: 'Ema', create: () => new Ema(12), step: (x, b, i) => x.update(c(b, i)), read: (x) => [x.value], restore: (s) => Ema.fromJSON(s as EmaState) }),
  subject({ name: 'Rsi', create: () => new Rsi(14), step: (x, b, i) => x.update(c(b, i)), read: (x) => [x.value], restore: (s) => Rsi.fromJSON(s as RsiState) }),
  subject({ name: 'Macd', create: () => new Macd(), step: (x, b, i) => x.update(c(b, i)), read: (x) => [x.macd, x.signal, x.histogram, x.fastEma, x.slowEma], restore: (s) => Macd.fromJSON(s as MacdState) }),
  subject({ name: 'BollingerBands', create: () => new BollingerBands(), step: (x, b, i) => x.update(c(b, i)), read: (x) => [x.upper, x.middle, x.lower], restore: (s) => BollingerBands.fromJSON(s as BollingerBandsState) }),
  subject({ name: 'TrueRange', create: () => new TrueRange(), step: (x, b, i) => x.update(h(b, i), l(b, i), c(b, i)), read: (x) => [x.value], restore: (s) => TrueRange.fromJSON(s as TrueRangeState) }),
  subject({ name: 'Atr', create: () => new Atr(14), step: (x, b, i) => x.update(h(b, i), l(b, i), c(b, i)), read: (x) => [x.value], restore: (s) => Atr.fromJSON(s as AtrState) }),
  subject({ name: 'RollingStats', create: () => new RollingStats(30), step: (x, b, i) => x.update(c(b, i)), read: (x) => [x.ready, x.sum, x.mean, x.variance, x.std], restore: (s) => RollingStats.fromJSON(s as RollingStatsState) }),
  subject({ name: 'RollingMinMax', create: () => new RollingMinMax(30), step: (x, b, i) => x.update(c(b, i)), read: (x) => [x.ready, x.min, x.max], restore: (s) => RollingMinMax.fromJSON(s as RollingMinMaxState) }),
  subject({ name: 'RollingCorrelation', create: () => new RollingCorrelation(30), step: (x, b, i) => x.update(c(b, i), v(b, i)), read: (x) => [x.value], restore: (s) => RollingCorrelation.fromJSON(s as RollingCorrelationState) }),
  subject({ name: 'RollingSlope', create: () => new RollingSlope(30), step: (x, b, i) => x.update(c(b, i)), read: (x) => [x.value], restore: (s) => RollingSlope.fromJSON(s as RollingSlopeState) }),
  subject({ name: 'EfficiencyRatio', create: () => new EfficiencyRatio(10), step: (x, b, i) => x.update(c(b, i)), read: (x) => [x.value], restore: (s) => EfficiencyRatio.fromJSON(s as EfficiencyRatioState) }),
  subject({
    name: 'TacticalIndicatorSet',
    create: () => new TacticalIndicatorSet(),
    step: (x, b, i) => x.update(h(b, i), l(b, i), c(b, i)),
    read: (x) => Object.values(x.snapshot()) as (number | null)[],
    restore: (s) => TacticalIndicatorSet.fromJSON(s as TacticalIndicatorSetState),
  }),
] as Subject<{ toJSON(): unknown }>[];

/** True when both lists hold the same values bit for bit (Object.is: NaN equals NaN, 0 differs from −0). */
function sameBits(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

describe('state round trip through JSON', () => {
  const bars = randomBars(31, 3000);

  it.each(SUBJECTS.map((s) => [s.name, s] as const))(
    '%s continues bit for bit after being split at random points through JSON.stringify/parse',
    (_name, s) => {
      const rng = new SeededRandom(_name.length * 7919);
      const splits = new Set(Array.from({ length: 12 }, () => rng.int(0, bars.close.length - 1)));
      // Also split during warm-up, where half-filled buffers and seeds must survive too.
      for (const early of [0, 1, 5, 13, 14, 19, 25, 33]) splits.add(early);
      const straight = s.create();
      let resumed = s.create();
      let mismatch = -1;
      for (let i = 0; i < bars.close.length; i++) {
        s.step(straight, bars, i);
        s.step(resumed, bars, i);
        if (splits.has(i)) resumed = s.restore(JSON.parse(JSON.stringify(resumed)));
        if (mismatch < 0 && !sameBits(s.read(straight), s.read(resumed))) mismatch = i;
      }
      expect(mismatch).toBe(-1);
      expect(JSON.stringify(resumed)).toBe(JSON.stringify(straight));
    },
  );

  it('keeps -0, NaN and infinities that reach the state, which plain JSON would lose', () => {
    for (const x of [-0, 0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-310, 1.5]) {
      expect(Object.is(decodeFloat(JSON.parse(JSON.stringify(encodeFloat(x))), 'x'), x)).toBe(true);
    }
    // A window minimum of −0 stays −0 across a save and restore.
    const mm = new RollingMinMax(3);
    mm.update(1);
    mm.update(-0);
    const restored = RollingMinMax.fromJSON(viaJson(mm.toJSON()));
    expect(Object.is(restored.min, -0)).toBe(true);
  });

  it('produces state that holds only plain JSON data', () => {
    const set = new TacticalIndicatorSet();
    for (let i = 0; i < 100; i++) set.update(h(bars, i), l(bars, i), c(bars, i));
    const state = set.toJSON();
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
  });

  it('rejects malformed state instead of restoring a broken indicator', () => {
    const sma = new Sma(5);
    for (let i = 0; i < 7; i++) sma.update(i);
    const state = sma.toJSON();
    expect(() => Sma.fromJSON({ ...state, ring: [1, 2] })).toThrow(RangeError);
    expect(() => Sma.fromJSON({ ...state, head: 9 })).toThrow(RangeError);
    expect(() => Sma.fromJSON({ ...state, sum: 'x' as unknown as number })).toThrow(TypeError);
    expect(() => TacticalIndicatorSet.fromJSON({ ...new TacticalIndicatorSet().toJSON(), v: 2 as 1 })).toThrow(RangeError);
  });
});
