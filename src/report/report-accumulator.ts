/**
 * What the report needs of a results file, gathered one result at a time: per symbol the compact
 * columns of {@link SymbolSeries}, the latencies in one Float64Array, and the counts, so that
 * neither the file nor its parsed results are ever held whole. Repeats of a `(symbol, ts)` are
 * recognised by a bit per bar ({@link BarKeySet}); the first delivery counts.
 */
import type { IntegratedResult } from '../../schemas/integrated-result.schema';
import { BarKeySet } from './bar-key-set';
import { SymbolSeries } from './symbol-series';

/** The counts of the report's last section. */
export interface Counts {
  results: number;
  symbols: number;
  /** Deliveries of a `(symbol, ts)` already seen. */
  repeats: number;
  stale: number;
  /** Results without a regime (strategic warm-up or fallback). */
  noRegime: number;
  degraded: Map<string, number>;
  /** Results with at least one degraded stage. */
  degradedResults: number;
  modelVersions: Map<string, number>;
  firstTs: number | null;
  lastTs: number | null;
}

/** Everything the report draws. */
export interface ReportData {
  /** Per symbol (sorted by symbol), one result per ts, in ts order. */
  groups: Map<string, SymbolSeries>;
  counts: Counts;
  /** `latency_ms` of every result read, repeats included. */
  latencies: Float64Array;
}

export class ReportAccumulator {
  private readonly series = new Map<string, SymbolSeries>();
  private readonly seen = new BarKeySet();
  private latencies: Float64Array = new Float64Array(1024);
  private lines = 0;
  private readonly c: Counts = {
    results: 0,
    symbols: 0,
    repeats: 0,
    stale: 0,
    noRegime: 0,
    degraded: new Map(),
    degradedResults: 0,
    modelVersions: new Map(),
    firstTs: null,
    lastTs: null,
  };

  add(r: IntegratedResult): void {
    if (this.lines === this.latencies.length) {
      const grown = new Float64Array(Math.ceil(this.lines * 1.5));
      grown.set(this.latencies);
      this.latencies = grown;
    }
    this.latencies[this.lines++] = r.latency_ms;
    const c = this.c;
    if (!this.seen.add(r.symbol, r.ts)) {
      c.repeats++;
      return;
    }
    let s = this.series.get(r.symbol);
    if (s === undefined) this.series.set(r.symbol, (s = new SymbolSeries()));
    s.push(r);
    c.results++;
    if (r.strategic.stale) c.stale++;
    if (r.strategic.regime === null) c.noRegime++;
    if (r.degraded.length > 0) c.degradedResults++;
    for (const d of r.degraded) c.degraded.set(d, (c.degraded.get(d) ?? 0) + 1);
    const mv = r.model_version ?? 'null';
    c.modelVersions.set(mv, (c.modelVersions.get(mv) ?? 0) + 1);
    c.firstTs = c.firstTs === null ? r.ts : Math.min(c.firstTs, r.ts);
    c.lastTs = c.lastTs === null ? r.ts : Math.max(c.lastTs, r.ts);
  }

  /** The number of results added, repeats included. */
  get size(): number {
    return this.lines;
  }

  /** The data; the accumulator is not to be used afterwards. */
  finish(): ReportData {
    const groups = new Map<string, SymbolSeries>();
    for (const symbol of [...this.series.keys()].sort()) {
      const s = this.series.get(symbol) as SymbolSeries;
      s.sortByTs();
      groups.set(symbol, s);
    }
    return {
      groups,
      counts: { ...this.c, symbols: groups.size },
      latencies: this.latencies.slice(0, this.lines),
    };
  }
}

/** The report data of results already in memory. */
export function accumulate(results: readonly IntegratedResult[]): ReportData {
  const a = new ReportAccumulator();
  for (const r of results) a.add(r);
  return a.finish();
}
