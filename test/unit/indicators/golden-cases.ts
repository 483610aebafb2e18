/**
 * The golden record of every indicator: long seeded input sequences (price levels near 100, 1e8
 * and 1e-8, single-bar spikes of 1e8 among values near 1, level jumps, long flat runs, zeros and
 * −0), each fed to each indicator in several configurations. For every case it digests, bit for
 * bit, every output after every update, the JSON state after every update, the outputs of a second
 * run that is restored from its JSON state at many points mid-stream, and the error (or success)
 * of restoring each field of the final state replaced by a bad value.
 *
 * `golden.generate.ts` writes these digests to `fixtures/golden.json`; `golden.test.ts` recomputes
 * them and fails when one bit of an output or of the serialised state differs. The inputs come from
 * a generator defined here (not the pipeline's own), so that the record only moves when the
 * indicators do.
 */
import { createHash, type Hash } from 'node:crypto';
import * as ind from '../../../src/indicators';

/** Bars of one scenario; `y` is the second series of {@link RollingCorrelation}. */
export interface GoldenInput {
  high: number[];
  low: number[];
  close: number[];
  y: number[];
}

/** Small seeded generator (mulberry32), kept here so the inputs never change with the pipeline's. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LENGTH = 2400;

function build(
  seed: number,
  next: (u: () => number, i: number, prev: number) => number,
): GoldenInput {
  const u = rng(seed);
  const out: GoldenInput = { high: [], low: [], close: [], y: [] };
  let prev = 0;
  for (let i = 0; i < LENGTH; i++) {
    const close = next(u, i, prev);
    const spread = u() < 0.1 ? 0 : Math.abs(close) * 0.004 * u();
    out.close.push(close);
    out.high.push(close + spread * u());
    out.low.push(close - spread * u());
    out.y.push(u() < 0.05 ? (out.y[i - 1] ?? 0) : 0.3 * close + 1000 * (u() - 0.5) * (1 + (i % 7)));
    prev = close;
  }
  return out;
}

/** Random walk at `level`, with flat stretches (the same close repeated). */
function walk(seed: number, level: number): GoldenInput {
  let flat = 0;
  return build(seed, (u, i, prev) => {
    if (i === 0) return level;
    if (flat > 0) {
      flat--;
      return prev;
    }
    if (u() < 0.01) flat = 5 + Math.floor(u() * 80);
    return prev * (1 + 0.02 * (u() - 0.5));
  });
}

/** Values near 1 with single-bar spikes of 1e8 and level jumps by factors of 1e6 and back. */
function jumps(seed: number): GoldenInput {
  let level = 1;
  return build(seed, (u, i) => {
    if (i % 400 === 200) level = level === 1 ? 1e6 : 1;
    if (u() < 0.02) return 1e8 * (1 + u());
    return level * (1 + 0.01 * (u() - 0.5));
  });
}

/** Long exact flat runs at 1e8 + 0.5, zeros and −0, tiny values, negatives, integers. */
function edges(seed: number): GoldenInput {
  return build(seed, (u, i, prev) => {
    const phase = Math.floor(i / 150) % 8;
    switch (phase) {
      case 0:
        return 1e8 + 0.5;
      case 1:
        return i % 2 === 0 ? 0 : -0;
      case 2:
        return 1e-8 * (1 + u());
      case 3:
        return -50 + Math.floor(u() * 100);
      case 4:
        return i % 150 < 75 ? 42 : prev + (u() < 0.5 ? 1e-7 : -1e-7);
      case 5:
        return 1e8 + Math.floor(u() * 16) * 0.25;
      case 6:
        return u() < 0.1 ? 1e15 : 3;
      default:
        return 7;
    }
  });
}

/** A first value far from a nearly flat level, so exact recomputes run while the windows still fill. */
function offsetStart(seed: number): GoldenInput {
  return build(seed, (u, i) => (i === 0 ? 1 : i % 500 === 250 ? 3e8 : 1e8 * (1 + 1e-9 * u())));
}

export const SCENARIOS: Record<string, GoldenInput> = {
  offsetStart: offsetStart(16),
  walk100: walk(11, 100),
  walk1e8: walk(12, 1e8),
  walkTiny: walk(13, 1e-8),
  jumps: jumps(14),
  edges: edges(15),
};

type Out = number | null | boolean;

/** One indicator configuration: how to build it, feed bar `i` (returning what update returns), read it, restore it. */
interface Subject {
  name: string;
  create(): { toJSON(): unknown };
  step(ind: unknown, b: GoldenInput, i: number): Out | void;
  read(ind: unknown): Out[];
  restore(state: unknown): { toJSON(): unknown };
}

function subject<T extends { toJSON(): unknown }>(s: {
  name: string;
  create(): T;
  step(ind: T, b: GoldenInput, i: number): Out | void;
  read(ind: T): Out[];
  restore(state: unknown): T;
}): Subject {
  return s;
}

const c = (b: GoldenInput, i: number): number => b.close[i] as number;
const h = (b: GoldenInput, i: number): number => b.high[i] as number;
const l = (b: GoldenInput, i: number): number => b.low[i] as number;

export const SUBJECTS: Subject[] = [
  ...[1, 2, 20].map((p) =>
    subject({
      name: `Sma(${p})`,
      create: () => new ind.Sma(p),
      step: (x, b, i) => x.update(c(b, i)),
      read: (x) => [x.value, x.ready],
      restore: (s) => ind.Sma.fromJSON(s as ind.SmaState),
    }),
  ),
  ...[1, 12, 26].map((p) =>
    subject({
      name: `Ema(${p})`,
      create: () => new ind.Ema(p),
      step: (x, b, i) => x.update(c(b, i)),
      read: (x) => [x.value, x.ready],
      restore: (s) => ind.Ema.fromJSON(s as ind.EmaState),
    }),
  ),
  ...[1, 14].map((p) =>
    subject({
      name: `Rsi(${p})`,
      create: () => new ind.Rsi(p),
      step: (x, b, i) => x.update(c(b, i)),
      read: (x) => [x.value, x.ready],
      restore: (s) => ind.Rsi.fromJSON(s as ind.RsiState),
    }),
  ),
  ...[
    [12, 26, 9],
    [1, 2, 1],
    [3, 5, 2],
  ].map(([f, s, g]) =>
    subject({
      name: `Macd(${f},${s},${g})`,
      create: () => new ind.Macd(f, s, g),
      step: (x, b, i) => x.update(c(b, i)),
      read: (x) => [x.macd, x.signal, x.histogram, x.fastEma, x.slowEma],
      restore: (st) => ind.Macd.fromJSON(st as ind.MacdState),
    }),
  ),
  ...[
    [20, 2],
    [1, 0],
    [5, 0.5],
  ].map(([p, k]) =>
    subject({
      name: `BollingerBands(${p},${k})`,
      create: () => new ind.BollingerBands(p, k),
      step: (x, b, i) => x.update(c(b, i)),
      read: (x) => [x.upper, x.middle, x.lower, x.ready],
      restore: (s) => ind.BollingerBands.fromJSON(s as ind.BollingerBandsState),
    }),
  ),
  subject({
    name: 'TrueRange',
    create: () => new ind.TrueRange(),
    step: (x, b, i) => x.update(h(b, i), l(b, i), c(b, i)),
    read: (x) => [x.value, x.ready],
    restore: (s) => ind.TrueRange.fromJSON(s as ind.TrueRangeState),
  }),
  ...[1, 14].map((p) =>
    subject({
      name: `Atr(${p})`,
      create: () => new ind.Atr(p),
      step: (x, b, i) => x.update(h(b, i), l(b, i), c(b, i)),
      read: (x) => [x.value, x.ready],
      restore: (s) => ind.Atr.fromJSON(s as ind.AtrState),
    }),
  ),
  ...[1, 7, 30].map((p) =>
    subject({
      name: `RollingStats(${p})`,
      create: () => new ind.RollingStats(p),
      step: (x, b, i) => x.update(c(b, i)),
      read: (x) => [x.ready, x.count, x.sum, x.mean, x.variance, x.std],
      restore: (s) => ind.RollingStats.fromJSON(s as ind.RollingStatsState),
    }),
  ),
  ...[1, 3, 30].map((p) =>
    subject({
      name: `RollingMinMax(${p})`,
      create: () => new ind.RollingMinMax(p),
      step: (x, b, i) => x.update(c(b, i)),
      read: (x) => [x.ready, x.min, x.max],
      restore: (s) => ind.RollingMinMax.fromJSON(s as ind.RollingMinMaxState),
    }),
  ),
  ...[2, 30].map((p) =>
    subject({
      name: `RollingCorrelation(${p})`,
      create: () => new ind.RollingCorrelation(p),
      step: (x, b, i) => x.update(c(b, i), b.y[i] as number),
      read: (x) => [x.value, x.ready],
      restore: (s) => ind.RollingCorrelation.fromJSON(s as ind.RollingCorrelationState),
    }),
  ),
  ...[2, 30].map((p) =>
    subject({
      name: `RollingSlope(${p})`,
      create: () => new ind.RollingSlope(p),
      step: (x, b, i) => x.update(c(b, i)),
      read: (x) => [x.value, x.ready],
      restore: (s) => ind.RollingSlope.fromJSON(s as ind.RollingSlopeState),
    }),
  ),
  ...[1, 10].map((p) =>
    subject({
      name: `EfficiencyRatio(${p})`,
      create: () => new ind.EfficiencyRatio(p),
      step: (x, b, i) => x.update(c(b, i)),
      read: (x) => [x.value, x.ready],
      restore: (s) => ind.EfficiencyRatio.fromJSON(s as ind.EfficiencyRatioState),
    }),
  ),
  subject({
    name: 'TacticalIndicatorSet',
    create: () => new ind.TacticalIndicatorSet(),
    step: (x, b, i) => x.update(h(b, i), l(b, i), c(b, i)),
    read: (x) => [
      ...(Object.values(x.snapshot()) as Out[]),
      x.sma20,
      x.ema12,
      x.ema26,
      x.rsi14,
      x.macd,
      x.macdSignal,
      x.macdHist,
      x.bbUpper,
      x.bbMiddle,
      x.bbLower,
      x.atr14,
    ],
    restore: (s) => ind.TacticalIndicatorSet.fromJSON(s as ind.TacticalIndicatorSetState),
  }),
];

const bits = Buffer.alloc(9);

/** Feeds one value into a digest: its type, and for a number its exact 64 bits (−0, NaN payload and all). */
function digestValue(hash: Hash, v: Out | void): void {
  if (typeof v === 'number') {
    bits[0] = 3;
    bits.writeDoubleLE(v, 1);
    hash.update(bits);
  } else {
    hash.update(v === null ? 'n' : v === undefined ? 'u' : v ? 't' : 'f');
  }
}

const CHUNK = 300;

/** The digests of one subject on one scenario. */
export interface GoldenRecord {
  /** Digest of every output (update's return value and the read-outs), one per {@link CHUNK} updates. */
  outputs: string[];
  /** Digest of `JSON.stringify(toJSON())` after every update, one per {@link CHUNK} updates. */
  states: string[];
  /** Digest of the outputs of a run restored from its JSON state at many points, all updates. */
  resumed: string;
  /** The final state, verbatim. */
  finalState: string;
  /** For each leaf of the final state, what restoring it with that leaf replaced by a bad value gives. */
  rejects: Record<string, string>;
}

/** Steps after which the resumed run is rebuilt from its JSON: all of warm-up, then every 37th. */
function isSplit(i: number): boolean {
  return i < 40 || i % 37 === 0 || i % 101 === 3;
}

function leafPaths(v: unknown, prefix: string, out: string[]): void {
  if (Array.isArray(v)) {
    out.push(prefix);
    if (v.length > 0) out.push(`${prefix}[0]`);
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) leafPaths(x, prefix === '' ? k : `${prefix}.${k}`, out);
  } else {
    out.push(prefix);
  }
}

function withLeaf(state: unknown, path: string, value: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(state)) as Record<string, unknown>;
  const keys = path.replace(/\[0\]$/, '.0').split('.');
  let o: Record<string, unknown> = copy;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[keys[keys.length - 1] as string] = value;
  return copy;
}

function attempt(s: Subject, state: unknown): string {
  try {
    return `restored ${createHash('sha256')
      .update(JSON.stringify(s.restore(state).toJSON()))
      .digest('hex')
      .slice(0, 16)}`;
  } catch (e) {
    return e instanceof Error ? `${e.name}: ${e.message}` : `threw ${String(e)}`;
  }
}

const hex = (hash: Hash): string => hash.digest('hex').slice(0, 32);

/** Runs `s` over `input` and returns its record. */
export function record(s: Subject, input: GoldenInput): GoldenRecord {
  const straight = s.create();
  let resumed = s.create();
  const outputs: string[] = [];
  const states: string[] = [];
  const resumedHash = createHash('sha256');
  let out = createHash('sha256');
  let st = createHash('sha256');
  const n = input.close.length;
  for (let i = 0; i < n; i++) {
    digestValue(out, s.step(straight, input, i));
    for (const v of s.read(straight)) digestValue(out, v);
    st.update(JSON.stringify(straight.toJSON()));
    st.update('\n');
    digestValue(resumedHash, s.step(resumed, input, i));
    for (const v of s.read(resumed)) digestValue(resumedHash, v);
    if (isSplit(i)) resumed = s.restore(JSON.parse(JSON.stringify(resumed.toJSON())));
    if ((i + 1) % CHUNK === 0 || i === n - 1) {
      outputs.push(hex(out));
      states.push(hex(st));
      out = createHash('sha256');
      st = createHash('sha256');
    }
  }
  const finalState = JSON.stringify(straight.toJSON());
  const paths: string[] = [];
  leafPaths(JSON.parse(finalState), '', paths);
  const rejects: Record<string, string> = {};
  for (const p of paths) {
    rejects[`${p}=bogus`] = attempt(s, withLeaf(JSON.parse(finalState), p, 'bogus'));
    rejects[`${p}=-1`] = attempt(s, withLeaf(JSON.parse(finalState), p, -1));
  }
  return { outputs, states, resumed: hex(resumedHash), finalState, rejects };
}

/** Every subject on every scenario, keyed `subject @ scenario`. */
export function recordAll(only?: (key: string) => boolean): Record<string, GoldenRecord> {
  const all: Record<string, GoldenRecord> = {};
  for (const s of SUBJECTS) {
    for (const [name, input] of Object.entries(SCENARIOS)) {
      const key = `${s.name} @ ${name}`;
      if (only === undefined || only(key)) all[key] = record(s, input);
    }
  }
  return all;
}
