import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar } from '../../../schemas/bar.schema';
import { StrategicContextSchema } from '../../../schemas/strategic-context.schema';
import { generateSyntheticMarket } from '../../../src/producers/synthetic-market';
import {
  EMBEDDING_DIM,
  PatternStore,
  StrategicAnalyzer,
  resampleTo30m,
  type StrategicOutput,
} from '../../../src/strategic';
import { PatternStoreFiles } from '../../../src/state/pattern-store-files';
import { viaJson } from '../../fixtures/json';

const HALF_HOUR = 1_800_000;

/** Two symbols' 30m bars interleaved by ts, as a strategic worker would see them. */
function interleaved(n5m: number): Bar[] {
  const a = resampleTo30m(generateSyntheticMarket({ seed: 21, symbol: 'AAA', bars: n5m }).bars);
  const b = resampleTo30m(generateSyntheticMarket({ seed: 22, symbol: 'BBB', bars: n5m, startPrice: 30 }).bars);
  return [...a, ...b].sort((x, y) => x.ts - y.ts || x.symbol.localeCompare(y.symbol));
}

function smallStore(): PatternStore {
  return new PatternStore({ dim: EMBEDDING_DIM, segmentCapacity: 256, initialCapacity: 64 });
}

describe('StrategicAnalyzer', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strategic-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns nulls during warm-up, then outputs that fit the wire contract', () => {
    const analyzer = new StrategicAnalyzer({ store: smallStore() });
    const bars = interleaved(6 * 200).filter((b) => b.symbol === 'AAA');
    const outs = bars.map((b) => analyzer.onBar(b));
    expect(outs[47]?.regime).toBeNull();
    expect(outs[48]?.regime).not.toBeNull();
    expect(outs[94]?.similar_patterns).toBeNull();
    expect(outs[95]?.similar_patterns).not.toBeNull();
    const last = outs[outs.length - 1] as StrategicOutput;
    const bar = bars[bars.length - 1] as Bar;
    // The five contract fields (the output may carry extra, worker-only fields).
    const { regime, regime_probabilities, confidence, uncertainty, similar_patterns } = last;
    const context = {
      v: 1, symbol: bar.symbol, ts: bar.ts, bar_close_ts: bar.ts + HALF_HOUR, close: bar.close, degraded: [],
      regime, regime_probabilities, confidence, uncertainty, similar_patterns,
    };
    expect(StrategicContextSchema.safeParse(context).success).toBe(true);
    expect(last.similar_patterns?.k).toBe(10);
  });

  it('uses only patterns whose outcome was known at the bar (no look-ahead), with the true outcomes', () => {
    const store = smallStore();
    const analyzer = new StrategicAnalyzer({ store });
    const bars = interleaved(6 * 400);
    const closes = new Map(bars.map((b) => [`${b.symbol}:${b.ts}`, b.close]));
    const spy = jest.spyOn(store, 'search');
    let checked = 0;
    for (const bar of bars) {
      const out = analyzer.onBar(bar);
      if (!out.similar_patterns) continue;
      const call = spy.mock.results[spy.mock.results.length - 1];
      const neighbours = call?.value as ReturnType<PatternStore['search']>;
      expect(out.similar_patterns.k).toBe(neighbours.length);
      for (const n of neighbours) {
        expect(n.ts + 6 * HALF_HOUR).toBeLessThanOrEqual(bar.ts);
        // The outcome is the realised 6-bar log return, whose last close is at or before this bar.
        const later = closes.get(`${n.symbol}:${n.ts + 6 * HALF_HOUR}`) as number;
        expect(n.outcome).toBeCloseTo(Math.log(later / (closes.get(`${n.symbol}:${n.ts}`) as number)), 12);
        checked++;
      }
      // The mean outcome of the neighbours, to 12 decimals (toBeCloseTo's bound); none without neighbours.
      const mean = neighbours.length > 0 ? neighbours.reduce((s, n) => s + n.outcome, 0) / neighbours.length : null;
      const got = out.similar_patterns.mean_forward_return;
      const gap = mean === null || got === null ? (mean === got ? 0 : Infinity) : Math.abs(got - mean);
      expect(gap).toBeLessThan(5e-13);
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('gives identical outputs across a toJSON/fromJSON split, with the store saved and loaded', async () => {
    const bars = interleaved(6 * 300);
    const feedback = { hitRate: 0.3, realisedReturn: -0.01, windows: 12 };
    // Feedback on some bars, chosen by ts so both runs give it to the same bars.
    const run = (analyzer: StrategicAnalyzer, part: Bar[]): string[] =>
      part.map((b) => JSON.stringify(analyzer.onBar(b, (b.ts / HALF_HOUR) % 5 === 0 ? feedback : null)));

    const whole = run(new StrategicAnalyzer({ store: smallStore() }), bars);

    const split = 331;
    const files = await PatternStoreFiles.open({ dir, store: { dim: EMBEDDING_DIM, segmentCapacity: 256, initialCapacity: 64 } });
    const first = new StrategicAnalyzer({ store: files.store });
    const before = run(first, bars.slice(0, split));
    await files.sync();
    const states = first.symbolNames.map((s) => viaJson(first.toJSON(s)!));
    const resumed = StrategicAnalyzer.fromJSON(states, { store: (await PatternStoreFiles.open({ dir })).store });
    const after = run(resumed, bars.slice(split));

    expect(before.concat(after)).toEqual(whole);
    // Not trivially equal: the run has regimes, patterns and all the variety of outputs.
    expect(new Set(whole).size).toBeGreaterThan(300);
  });

  it('lowers confidence when recent tactical outcomes were poor', () => {
    const bars = interleaved(6 * 200).filter((b) => b.symbol === 'AAA');
    const plain = new StrategicAnalyzer({ store: smallStore() });
    const poor = new StrategicAnalyzer({ store: smallStore() });
    let lower = 0;
    for (const bar of bars) {
      const a = plain.onBar(bar);
      const b = poor.onBar(bar, { hitRate: 0.2, realisedReturn: -0.02, windows: 30 });
      if (a.uncertainty === null || b.uncertainty === null) continue;
      expect(b.uncertainty).toBeGreaterThan(a.uncertainty);
      const rank = { LOW: 0, MEDIUM: 1, HIGH: 2 } as const;
      expect(rank[b.confidence!]).toBeLessThanOrEqual(rank[a.confidence!]);
      if (rank[b.confidence!] < rank[a.confidence!]) lower++;
    }
    expect(lower).toBeGreaterThan(0);
  });

  it('rejects a bar that is not after the last bar of its symbol', () => {
    const analyzer = new StrategicAnalyzer({ store: smallStore() });
    const [bar] = interleaved(12);
    analyzer.onBar(bar as Bar);
    expect(() => analyzer.onBar(bar as Bar)).toThrow(/not after/);
  });
  it('gives the same outputs, state and store with the insert deferred (completeBar, or the next onBar)', () => {
    const bars = interleaved(6 * 160).filter((b) => b.symbol === 'AAA');
    const plainStore = smallStore();
    const plain = new StrategicAnalyzer({ store: plainStore });
    const deferredStore = smallStore();
    const deferred = new StrategicAnalyzer({ store: deferredStore });
    const plainOuts: StrategicOutput[] = [];
    const deferredOuts: StrategicOutput[] = [];
    const completed: string[] = [];
    bars.forEach((bar, i) => {
      plainOuts.push(plain.onBar(bar));
      deferredOuts.push(deferred.onBar(bar, null, { deferInsert: true }));
      // Every other bar leaves its insert to the next onBar, which must do it first.
      if (i % 2 === 0) completed.push(deferred.completeBar());
    });
    expect(completed.length).toBe(Math.ceil(bars.length / 2));
    expect(completed.every((c) => c === 'ok')).toBe(true);
    expect(deferred.completeBar()).toBe('ok');
    expect(deferred.completeBar()).toBe('ok'); // nothing left: a no-op
    // Patterns were searched and stored, so the deferral was exercised.
    expect(plainOuts.filter((o) => o.similar_patterns !== null).length).toBeGreaterThan(40);
    expect(viaJson(deferredOuts)).toEqual(viaJson(plainOuts));
    expect(deferredStore.size).toBe(plainStore.size);
    expect(deferredStore.mergedThrough).toBe(plainStore.mergedThrough);
    expect(viaJson(deferred.toJSON('AAA'))).toEqual(viaJson(plain.toJSON('AAA')));
  });

  it('reports an insert that fails when completed, leaving the output as computed', () => {
    const bars = interleaved(6 * 120).filter((b) => b.symbol === 'AAA');
    const store = smallStore();
    const analyzer = new StrategicAnalyzer({ store });
    const outs = bars.map((b) => {
      const out = analyzer.onBar(b, null, { deferInsert: true });
      analyzer.completeBar();
      return out;
    });
    expect(outs[outs.length - 1]?.similar_patterns).not.toBeNull();
    const last = bars[bars.length - 1] as Bar;
    const next = { ...last, ts: last.ts + HALF_HOUR };
    jest.spyOn(store, 'add').mockImplementation(() => {
      throw new Error('disk on fire');
    });
    const out = analyzer.onBar(next, null, { deferInsert: true });
    expect(out.patternStore).toBe('ok');
    expect(out.similar_patterns).not.toBeNull();
    expect(analyzer.completeBar()).toBe('failed');
    jest.restoreAllMocks();
  });
});
