/**
 * Strategic compute benchmark: `npx tsx bench/strategic.bench.ts [--skip-1m]` (or
 * `STRATEGIC_BENCH_SKIP_1M=1`). Prints each figure next to the seed's and a final JSON line.
 *
 * Pattern vectors are real embeddings of synthetic markets (seeded), so recall and latency are those
 * of the data the store holds in production, not of uniform noise. The 1M part builds four HNSW
 * segments of 262,144 vectors and takes minutes.
 */
import type { Bar } from '../schemas/bar.schema';
import {
  EMBEDDING_DIM,
  FEATURE_COUNT,
  FeatureMatrix,
  PatternStore,
  REGIME_INPUTS,
  RegimeDetector,
  StrategicAnalyzer,
  VolatilityBaseline,
  WINDOW_BARS,
  assessUncertainty,
  embedWindow,
  regimePosterior,
} from '../src/strategic';
import { labelled30mMarket } from '../src/strategic/synthetic-eval';
import { quantile } from '../src/util/quantile';

const SEED = { matrices: 23_386, uncertainty: 38_764, regime: 152_798, ingest: 236_299 };
const skip1m = process.argv.includes('--skip-1m') || process.env.STRATEGIC_BENCH_SKIP_1M === '1';

function perSecond(n: number, ms: number): number {
  return Math.round((n / ms) * 1000);
}

function line(name: string, ours: number, seed: number): void {
  console.log(`${name.padEnd(28)} ${ours.toLocaleString('en-US').padStart(14)} /s   seed ${seed.toLocaleString('en-US').padStart(9)}   ×${(ours / seed).toFixed(1)}`);
}

function markets(count: number, firstSeed: number, bars5m: number): Bar[][] {
  return Array.from({ length: count }, (_, i) =>
    labelled30mMarket({ seed: firstSeed + i, symbol: `B${firstSeed + i}`, bars: bars5m, segmentBars: [576, 1440] }).bars,
  );
}

/** Real embeddings of every fully warm bar of the given markets. */
function embeddings(series: Bar[][], limit: number): { vectors: Float32Array; ts: Float64Array } {
  const vectors = new Float32Array(limit * EMBEDDING_DIM);
  const ts = new Float64Array(limit);
  const window = new Float64Array(WINDOW_BARS * FEATURE_COUNT);
  const v = new Float32Array(EMBEDDING_DIM);
  let n = 0;
  for (const bars of series) {
    const fm = new FeatureMatrix();
    const baseline = new VolatilityBaseline();
    for (const bar of bars) {
      fm.update(bar);
      if (fm.returnCount < 48) continue;
      baseline.update((fm.returnVariance(48) * 48) / 47);
      if (!fm.fullyWarm) continue;
      embedWindow(fm, baseline.variance, v, window);
      vectors.set(v, n * EMBEDDING_DIM);
      ts[n] = bar.ts;
      if (++n === limit) return { vectors, ts };
    }
  }
  return { vectors: vectors.subarray(0, n * EMBEDDING_DIM), ts: ts.subarray(0, n) };
}

function benchMatrices(bars: Bar[]): number {
  const out = new Float64Array(WINDOW_BARS * FEATURE_COUNT);
  let best = 0;
  for (let rep = 0; rep < 5; rep++) {
    const fm = new FeatureMatrix();
    const t0 = performance.now();
    for (const bar of bars) {
      fm.update(bar);
      fm.copyWindow(out);
    }
    best = Math.max(best, perSecond(bars.length, performance.now() - t0));
  }
  return best;
}

function regimeInputsOf(bars: Bar[]): { inputs: Float64Array[]; switches: Float64Array[] } {
  const detector = new RegimeDetector();
  const inputs: Float64Array[] = [];
  const switches: Float64Array[] = [];
  for (let i = 1; i < bars.length; i++) {
    detector.update(Math.log((bars[i] as Bar).close / (bars[i - 1] as Bar).close));
    const x = new Float64Array(REGIME_INPUTS);
    if (detector.inputs(x)) {
      inputs.push(x);
      const sw = new Float64Array(4);
      detector.switchEvidence(sw);
      switches.push(sw);
    }
  }
  return { inputs, switches };
}

/**
 * Regime detection per bar: the detector's update (clipping, four rolling windows, baseline), its
 * inputs and switch evidence, and the softmax. (The seed's figure did not include the rolling
 * statistics, which its matrix kept; this one does.)
 */
function benchRegime(bars: Bar[]): number {
  const returns = new Float64Array(Math.min(bars.length, 2001) - 1);
  for (let i = 1; i < returns.length + 1; i++) returns[i - 1] = Math.log((bars[i] as Bar).close / (bars[i - 1] as Bar).close);
  const x = new Float64Array(REGIME_INPUTS);
  const sw = new Float64Array(4);
  const p = new Float64Array(4);
  let best = 0;
  let sink = 0;
  for (let rep = 0; rep < 5; rep++) {
    const detector = new RegimeDetector();
    const t0 = performance.now();
    let n = 0;
    for (let r = 0; r < 50; r++) {
      for (const ret of returns) {
        detector.update(ret);
        if (!detector.inputs(x)) continue;
        detector.switchEvidence(sw);
        sink += regimePosterior(x, p);
        n++;
      }
    }
    best = Math.max(best, perSecond(n, performance.now() - t0));
  }
  if (sink < 0) console.log(sink);
  return best;
}

function benchUncertainty(inputs: Float64Array[], switches: Float64Array[]): number {
  const p = new Float64Array(4);
  const evidence = inputs.map((x, i) => {
    const best = regimePosterior(x, p);
    return {
      regimeProbability: p[best] as number,
      baselineSamples: 1 + (i % 128),
      jumpInWindow: i % 7 === 0,
      switchEvidence: switches[i],
      neighbours: 10,
      neighbourAgreement: (i % 11) / 10,
      feedback: i % 3 === 0 ? { hitRate: 0.45, realisedReturn: -0.001, windows: 8 } : null,
    };
  });
  let best = 0;
  let sink = 0;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = performance.now();
    let n = 0;
    for (let r = 0; r < 20; r++) {
      for (const e of evidence) {
        sink += assessUncertainty(e).uncertainty;
        n++;
      }
    }
    best = Math.max(best, perSecond(n, performance.now() - t0));
  }
  if (sink < 0) console.log(sink);
  return best;
}

interface KnnFigures {
  size: number;
  ingestPerSecond: number;
  mergeSeconds: number;
  p50Ms: number;
  p99Ms: number;
  p99AllPassesMs: number;
  recallAt10: number;
  segments: number;
}

async function benchStore(size: number, data: ReturnType<typeof embeddings>, queries: Float32Array): Promise<KnnFigures> {
  const n = Math.min(size, data.ts.length);
  const ts = new Float64Array(n);
  // Unique (symbol, ts) keys even where the source repeats: ts is the vector index.
  for (let i = 0; i < n; i++) ts[i] = i;
  const outcomes = new Float64Array(n).fill(0.001);
  const regimes = new Uint8Array(n);
  // Ingest timed as the best of three runs into fresh stores (the machine is shared; the first
  // run also warms the JIT up); the last run's store is the one merged and queried.
  const batch = { vectors: data.vectors.subarray(0, n * EMBEDDING_DIM), ts, symbols: 'BENCH', regimes, outcomes };
  let ingestPerSecond = 0;
  let store = new PatternStore({ dim: EMBEDDING_DIM });
  for (let rep = 0; rep < 3; rep++) {
    store = new PatternStore({ dim: EMBEDDING_DIM });
    const t0 = performance.now();
    await store.ingest(batch);
    ingestPerSecond = Math.max(ingestPerSecond, perSecond(n, performance.now() - t0));
  }
  const t1 = performance.now();
  let lastReport = t1;
  const progress = setInterval(() => {
    if (performance.now() - lastReport > 15_000) {
      lastReport = performance.now();
      console.log(`  merging ${size.toLocaleString('en-US')}: ${store.pendingMerge.toLocaleString('en-US')} vectors left`);
    }
  }, 1000);
  await store.mergeInBackground(20);
  clearInterval(progress);
  const mergeSeconds = (performance.now() - t1) / 1000;
  const q = queries.length / EMBEDDING_DIM;
  const query = (i: number): Float32Array => queries.subarray(i * EMBEDDING_DIM, (i + 1) * EMBEDDING_DIM);
  for (let i = 0; i < 200; i++) store.search(query(i % q), 10); // JIT warm-up, untimed
  // Latency: three passes over the queries; p50/p99 of the best pass (least disturbed by other
  // processes on the shared cores) and the p99 over all passes, both reported.
  const passes: number[][] = [];
  for (let pass = 0; pass < 3; pass++) {
    const lat: number[] = [];
    for (let i = 0; i < q; i++) {
      const s = performance.now();
      store.search(query(i), 10);
      lat.push(performance.now() - s);
    }
    passes.push(lat.sort((a, b) => a - b));
  }
  const pct = quantile;
  const lat = passes.reduce((best, x) => (pct(x, 0.99) < pct(best, 0.99) ? x : best));
  const all = passes.flat().sort((a, b) => a - b);
  let hits = 0;
  const recallQueries = Math.min(q, 300);
  for (let i = 0; i < recallQueries; i++) {
    const exact = new Set(store.exactSearch(query(i), 10));
    for (const f of store.search(query(i), 10)) if (exact.has(f.id)) hits++;
  }
  return {
    size: n,
    ingestPerSecond,
    mergeSeconds: Math.round(mergeSeconds * 10) / 10,
    p50Ms: round3(pct(lat, 0.5)),
    p99Ms: round3(pct(lat, 0.99)),
    p99AllPassesMs: round3(pct(all, 0.99)),
    recallAt10: round3(hits / (recallQueries * 10)),
    segments: store.segmentCount,
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function benchAnalyzer(series: Bar[][]): number {
  const analyzer = new StrategicAnalyzer();
  const bars = series.flat();
  const t0 = performance.now();
  for (const bar of bars) analyzer.onBar(bar);
  return perSecond(bars.length, performance.now() - t0);
}

async function main(): Promise<void> {
  const [one] = markets(1, 31, 120_000);
  const bars = one as Bar[];
  const matrices = benchMatrices(bars);
  line('matrices/s (update+copy)', matrices, SEED.matrices);
  const regime = benchRegime(bars);
  line('regime detections/s', regime, SEED.regime);
  const { inputs, switches } = regimeInputsOf(bars);
  const uncertainty = benchUncertainty(inputs, switches);
  line('uncertainty estimates/s', uncertainty, SEED.uncertainty);
  const analyzerBars = benchAnalyzer(markets(4, 41, 24_000));
  console.log(`analyzer end to end (bars/s, store growing to ~14k): ${analyzerBars.toLocaleString('en-US')}`);

  const target = skip1m ? 100_000 : 1_000_000;
  const t0 = performance.now();
  const series = markets(Math.ceil(target / 9_900), 1000, 60_000);
  const data = embeddings(series, target);
  const queryData = embeddings(markets(2, 90_000, 12_000), 2000);
  console.log(`embedded ${data.ts.length.toLocaleString('en-US')} real windows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const queries = queryData.vectors.subarray(0, Math.min(2000, queryData.ts.length) * EMBEDDING_DIM);
  const knn: KnnFigures[] = [];
  for (const size of skip1m ? [100_000] : [100_000, 1_000_000]) {
    const f = await benchStore(size, data, queries);
    knn.push(f);
    line(`vectors ingested/s (${size / 1000}k)`, f.ingestPerSecond, SEED.ingest);
    console.log(
      `kNN at ${f.size.toLocaleString('en-US')}: p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms (all passes ${f.p99AllPassesMs} ms), recall@10 ${f.recallAt10} ` +
        `(${f.segments} segments, HNSW merge ${f.mergeSeconds} s in background slices)`,
    );
  }
  const ingest = Math.min(...knn.map((k) => k.ingestPerSecond));
  console.log(
    JSON.stringify({
      bench: 'strategic',
      matrices_per_s: matrices,
      regime_per_s: regime,
      uncertainty_per_s: uncertainty,
      ingest_per_s: ingest,
      analyzer_bars_per_s: analyzerBars,
      knn,
      seed: SEED,
      skipped_1m: skip1m,
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
