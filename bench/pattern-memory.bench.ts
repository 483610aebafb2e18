/**
 * `npm run bench -- pattern-memory [--symbols N --bars N --max-per-symbol N --segment N]`: the
 * strategic worker's memory alone, in-process. Synthetic 30m bars (src/producers/synthetic-market.ts
 * resampled, one seed per symbol; 50 symbols × 17,520 bars = a year by default) are fed to one
 * StrategicAnalyzer per symbol, each with its own PatternStore as the strategic worker builds them
 * (EMBEDDING_DIM, initial capacity 64, 2 merges a bar), time-interleaved as a replay delivers them,
 * and process.memoryUsage().rss is sampled every 1,000 bar-rounds. Prints the RSS against patterns
 * held, the peak, and the least-squares slope after warm-up (the last three quarters of the run) in
 * MB per 10,000 bars of every symbol. `--max-per-symbol` and `--segment` are the store's retention
 * (PIPELINE_PATTERN_MAX_PER_SYMBOL) and segment capacity (32,768 in the worker); 0 = no retention.
 * `--gc` (run with `node --expose-gc --import tsx`) collects garbage before each sample: a dropped
 * segment's HNSW graph is native memory that V8 does not see, freed only when its wrapper is collected
 * and its finalizer has run on a later turn of the event loop (the loop yields after every bar-round,
 * as the worker does between deliveries).
 */
import type { Bar } from '../schemas/bar.schema';
import { generateSyntheticMarket } from '../src/producers/synthetic-market';
import { EMBEDDING_DIM, PatternStore, StrategicAnalyzer, resampleTo30m } from '../src/strategic';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const n = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
  return n;
}

const SYMBOLS = flag('symbols', 50);
const BARS = flag('bars', 17_520);
const MAX_PER_SYMBOL = flag('max-per-symbol', 0);
const SEGMENT = flag('segment', 32_768);
const SAMPLE_EVERY = 1000;
const GC = process.argv.includes('--gc');
if (GC && global.gc === undefined) throw new Error('--gc needs node --expose-gc');
const mb = (b: number): string => `${(b / 1024 ** 2).toFixed(0)} MB`;

async function main(): Promise<void> {
  const t0 = performance.now();
  // Bars kept as columns (6 numbers a bar), not objects, so that they weigh little and the same all along.
  const cols = Array.from({ length: SYMBOLS }, (_, s) => {
    const bars = resampleTo30m(
      generateSyntheticMarket({ seed: 1000 + s, symbol: `SYN${String(s).padStart(2, '0')}USDT`, bars: BARS * 6, startPrice: 50 + 10 * s }).bars,
    );
    const c = new Float64Array(bars.length * 6);
    bars.forEach((b, i) => c.set([b.ts, b.open, b.high, b.low, b.close, b.volume], i * 6));
    return c;
  });
  const n = Math.min(...cols.map((c) => c.length / 6));
  const analyzers = cols.map(() => {
    const store = new PatternStore({
      dim: EMBEDDING_DIM,
      initialCapacity: 64,
      segmentCapacity: SEGMENT,
      ...(MAX_PER_SYMBOL > 0 ? { retention: { maxCount: MAX_PER_SYMBOL } } : {}),
    });
    return { store, analyzer: new StrategicAnalyzer({ store }) };
  });
  global.gc?.();
  const base = process.memoryUsage().rss;
  process.stdout.write(
    `pattern-memory: ${SYMBOLS} symbols × ${n} 30m bars, segment ${SEGMENT}, max per symbol ${MAX_PER_SYMBOL || 'none'}${GC ? ', gc before each sample' : ''}; ` +
      `bars generated in ${((performance.now() - t0) / 1000).toFixed(0)} s, RSS before the first bar ${mb(base)}\n`,
  );
  const samples: [number, number][] = [];
  let peak = base;
  const tRun = performance.now();
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < SYMBOLS; s++) {
      const c = cols[s] as Float64Array;
      const o = i * 6;
      const bar: Bar = {
        symbol: `SYN${String(s).padStart(2, '0')}USDT`,
        timeframe: '30m',
        ts: c[o] as number,
        open: c[o + 1] as number,
        high: c[o + 2] as number,
        low: c[o + 3] as number,
        close: c[o + 4] as number,
        volume: c[o + 5] as number,
      };
      (analyzers[s] as { analyzer: StrategicAnalyzer }).analyzer.onBar(bar);
    }
    // The event loop turns between deliveries in the worker, and only then does Node run the
    // finalizers that free a collected HNSW graph's native memory (its wrapper is collected by the
    // GC, its C++ index deleted on a later turn): a loop that never yields holds every graph it
    // ever built, dropped or not, and measures a leak the worker does not have.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if ((i + 1) % SAMPLE_EVERY === 0 || i === n - 1) {
      if (GC) global.gc?.();
      const rss = process.memoryUsage().rss;
      peak = Math.max(peak, rss);
      samples.push([i + 1, rss]);
      const held = analyzers.reduce((a, x) => a + x.store.nextId - x.store.firstId, 0);
      process.stdout.write(
        `  ${String(i + 1).padStart(6)} bars/symbol: RSS ${mb(rss)}, patterns held ${held}, heap ${mb(process.memoryUsage().heapUsed)}, ` +
          `${(((i + 1) * SYMBOLS) / ((performance.now() - tRun) / 1000)).toFixed(0)} bars/s\n`,
      );
    }
  }
  const after = samples.filter(([b]) => b >= n / 4);
  const mx = after.reduce((a, [b]) => a + b, 0) / after.length;
  const my = after.reduce((a, [, r]) => a + r, 0) / after.length;
  let num = 0;
  let den = 0;
  for (const [b, r] of after) {
    num += (b - mx) * (r - my);
    den += (b - mx) ** 2;
  }
  const slope = den > 0 ? ((num / den) * 10_000) / 1024 ** 2 : Number.NaN;
  const seconds = (performance.now() - tRun) / 1000;
  process.stdout.write(
    `peak RSS ${mb(peak)}; slope after warm-up ${slope.toFixed(1)} MB per 10,000 bars of every symbol; ${seconds.toFixed(0)} s\n` +
      `${JSON.stringify({ bench: 'pattern-memory', symbols: SYMBOLS, bars: n, segment: SEGMENT, maxPerSymbol: MAX_PER_SYMBOL, peakRssMb: Math.round(peak / 1024 ** 2), slopeMbPer10kBars: Math.round(slope * 10) / 10, seconds: Math.round(seconds) })}\n`,
  );
}

void main();
