/**
 * Nanoseconds per update of the streaming indicators in src/indicators, next to the streaming
 * classes of the `trading-signals` package (installed as a devDependency for this comparison only).
 *
 * Inputs are pre-generated (a seeded random walk of 65,536 bars, cycled), every output is folded
 * into a sink that is printed so the JIT cannot drop the work, each case runs a warm-up phase and
 * then several timed rounds of 1e6 updates, of which the median is reported. Each case has its own
 * loop so that call sites stay monomorphic, as they are in the tactical worker.
 *
 * Run: `npx tsx bench/indicators.bench.ts` (or `npm run bench -- indicators`).
 */
import { ATR, BollingerBands as TsBollinger, EMA, MACD, RSI, SMA } from 'trading-signals';
import { Atr, BollingerBands, Ema, Macd, Rsi, Sma, TacticalIndicatorSet } from '../src/indicators';
import { SeededRandom } from '../src/util/random';
import { median } from '../src/util/quantile';

const SIZE = 1 << 16;
const MASK = SIZE - 1;
const ITERATIONS = 1_000_000;
const WARMUP_ITERATIONS = 300_000;
const ROUNDS = 7;

const rng = new SeededRandom(20240601);
const high = new Float64Array(SIZE);
const low = new Float64Array(SIZE);
const close = new Float64Array(SIZE);
const candles: { high: number; low: number; close: number }[] = [];
let price = 100;
for (let i = 0; i < SIZE; i++) {
  const open = price;
  price *= Math.exp(0.01 * rng.normal());
  high[i] = Math.max(open, price) * (1 + 0.003 * Math.abs(rng.normal()));
  low[i] = Math.min(open, price) * (1 - 0.003 * Math.abs(rng.normal()));
  close[i] = price;
  candles.push({ high: high[i] as number, low: low[i] as number, close: price });
}

let sink = 0;

/** A timed loop: runs `iterations` updates and returns a value derived from every output. */
type Loop = (iterations: number) => number;

interface Case {
  name: string;
  ours: () => Loop;
  theirs: () => Loop;
}

const CASES: Case[] = [
  {
    name: 'SMA20',
    ours: () => {
      const ind = new Sma(20);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += ind.update(close[i & MASK] as number) ?? 0;
        return acc;
      };
    },
    theirs: () => {
      const ind = new SMA(20);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += ind.update(close[i & MASK] as number, false) ?? 0;
        return acc;
      };
    },
  },
  {
    name: 'EMA12',
    ours: () => {
      const ind = new Ema(12);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += ind.update(close[i & MASK] as number) ?? 0;
        return acc;
      };
    },
    theirs: () => {
      const ind = new EMA(12);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += ind.update(close[i & MASK] as number, false);
        return acc;
      };
    },
  },
  {
    name: 'RSI14',
    ours: () => {
      const ind = new Rsi(14);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += ind.update(close[i & MASK] as number) ?? 0;
        return acc;
      };
    },
    theirs: () => {
      const ind = new RSI(14);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) acc += ind.update(close[i & MASK] as number, false) ?? 0;
        return acc;
      };
    },
  },
  {
    name: 'MACD 12/26/9',
    ours: () => {
      const ind = new Macd(12, 26, 9);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          ind.update(close[i & MASK] as number);
          acc += ind.histogram ?? 0;
        }
        return acc;
      };
    },
    theirs: () => {
      const ind = new MACD(new EMA(12), new EMA(26), new EMA(9));
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const r = ind.update(close[i & MASK] as number, false);
          if (r !== null) acc += r.histogram;
        }
        return acc;
      };
    },
  },
  {
    name: 'Bollinger 20/2',
    ours: () => {
      const ind = new BollingerBands(20, 2);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          ind.update(close[i & MASK] as number);
          acc += ind.upper ?? 0;
        }
        return acc;
      };
    },
    theirs: () => {
      const ind = new TsBollinger(20, 2);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const r = ind.update(close[i & MASK] as number, false);
          if (r !== null) acc += r.upper;
        }
        return acc;
      };
    },
  },
  {
    name: 'ATR14',
    ours: () => {
      const ind = new Atr(14);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const j = i & MASK;
          acc += ind.update(high[j] as number, low[j] as number, close[j] as number) ?? 0;
        }
        return acc;
      };
    },
    theirs: () => {
      const ind = new ATR(14);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          // Candle objects are pre-built: only the indicator's own work is timed.
          acc += ind.update(candles[i & MASK] as { high: number; low: number; close: number }, false) ?? 0;
        }
        return acc;
      };
    },
  },
  {
    name: 'TacticalIndicatorSet (per bar)',
    ours: () => {
      const set = new TacticalIndicatorSet();
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const j = i & MASK;
          set.update(high[j] as number, low[j] as number, close[j] as number);
          acc += (set.macdHist ?? 0) + (set.bbUpper ?? 0) + (set.rsi14 ?? 0) + (set.atr14 ?? 0);
        }
        return acc;
      };
    },
    // The same eleven values from trading-signals: SMA, EMA 12 and 26, RSI, MACD, Bollinger, ATR.
    theirs: () => {
      const sma = new SMA(20);
      const ema12 = new EMA(12);
      const ema26 = new EMA(26);
      const rsi = new RSI(14);
      const macd = new MACD(new EMA(12), new EMA(26), new EMA(9));
      const bb = new TsBollinger(20, 2);
      const atr = new ATR(14);
      return (n) => {
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const j = i & MASK;
          const c = close[j] as number;
          acc += sma.update(c, false) ?? 0;
          acc += ema12.update(c, false);
          acc += ema26.update(c, false);
          acc += rsi.update(c, false) ?? 0;
          const m = macd.update(c, false);
          if (m !== null) acc += m.histogram;
          const b = bb.update(c, false);
          if (b !== null) acc += b.upper;
          acc += atr.update(candles[j] as { high: number; low: number; close: number }, false) ?? 0;
        }
        return acc;
      };
    },
  },
];

/** Median ns per update over ROUNDS timed rounds, after a warm-up on the same loop. */
function measure(makeLoop: () => Loop): number {
  const loop = makeLoop();
  sink += loop(WARMUP_ITERATIONS);
  const samples: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    sink += loop(ITERATIONS);
    samples.push(Number(process.hrtime.bigint() - start) / ITERATIONS);
  }
  return median(samples);
}

interface Row {
  indicator: string;
  oursNs: number;
  theirsNs: number;
  speedup: number;
}

const rows: Row[] = [];
for (const c of CASES) {
  const oursNs = measure(c.ours);
  const theirsNs = measure(c.theirs);
  rows.push({ indicator: c.name, oursNs, theirsNs, speedup: theirsNs / oursNs });
}

const pad = (s: string, w: number): string => s.padEnd(w);
const num = (x: number, w: number): string => x.toFixed(1).padStart(w);
process.stdout.write(
  `node ${process.version}, ${ITERATIONS.toExponential(0)} updates x ${ROUNDS} rounds (median)\n` +
    `${pad('indicator', 32)}${'ours ns'.padStart(10)}${'trading-signals ns'.padStart(20)}${'speedup'.padStart(10)}\n`,
);
for (const r of rows) {
  process.stdout.write(
    `${pad(r.indicator, 32)}${num(r.oursNs, 10)}${num(r.theirsNs, 20)}${(r.speedup.toFixed(1) + 'x').padStart(10)}\n`,
  );
}
const set = rows.find((r) => r.indicator.startsWith('TacticalIndicatorSet'));
const targets = {
  fullSetAtMost100Ns: set !== undefined && set.oursNs <= 100,
  eachAtLeast2xFaster: rows.every((r) => r.speedup >= 2),
};
process.stdout.write(`(sink ${sink.toPrecision(6)})\n`);
process.stdout.write(
  JSON.stringify({
    bench: 'indicators',
    node: process.version,
    iterations: ITERATIONS,
    rounds: ROUNDS,
    rows: rows.map((r) => ({
      indicator: r.indicator,
      ours_ns: Number(r.oursNs.toFixed(2)),
      trading_signals_ns: Number(r.theirsNs.toFixed(2)),
      speedup: Number(r.speedup.toFixed(2)),
    })),
    targets,
  }) + '\n',
);
