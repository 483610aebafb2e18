/**
 * The strategic worker's share of the 30m round trip (issue 11), in one process, no broker: the time
 * from a 30m bar entering the strategic flow (feature matrix, regime, pattern store, checkpoint JSON)
 * to its context being ready to publish, with the pattern store's append + fdatasync on a real disk.
 * Each section runs two modes back to back on the same bars, in alternating rounds:
 *
 * - `awaited`: the context waits for the store's durable write of its bar, as before (every
 *   `saveEveryBars` = 3 bars per symbol an append and an fdatasync were on the context's path);
 * - `overlapped`: the context is ready when computed and the write finishes behind it (the bar's
 *   commit waits for it), as the worker does now.
 *
 * Sections: `paced`, BENCH_STEP_SYMBOLS (5) symbols at BENCH_STEP_RATE 30m bars/s (67: what 400 5m
 * bars/s make), p50/p99/max per mode; `burst`, BENCH_STEP_BURST (1,000) symbols whose 30m bars
 * all arrive at once (the 30m close of the pipeline's burst), each symbol in its own lane as in
 * the worker, timed to the last context ready. The contexts of both modes are compared: they must be
 * identical, or the benchmark fails. The burst also runs as the worker runs a turn's bars now
 * (`passes`: all analyses first, each bar's store insert and checkpoint state after), its contexts
 * compared with the lanes'. Prints one line per figure and a final JSON line.
 *
 * `npm run bench -- strategic-step` (env: BENCH_STEP_SECONDS (10), BENCH_STEP_ROUNDS (2)).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar30m } from '../schemas/bar.schema';
import { AnalyticsStage } from '../src/flows/analytics-stage';
import { StrategicFlow, type StrategicState } from '../src/flows/strategic-flow';
import { componentLogger } from '../src/observability/logger';
import { generateSyntheticMarket } from '../src/producers/synthetic-market';
import { resampleTo30m } from '../src/strategic/resample';
import { quantile } from '../src/util/quantile';

const SYMBOLS = Number(process.env.BENCH_STEP_SYMBOLS ?? 5);
const RATE = Number(process.env.BENCH_STEP_RATE ?? 67);
const SECONDS = Number(process.env.BENCH_STEP_SECONDS ?? 10);
const BURST = Number(process.env.BENCH_STEP_BURST ?? 1000);
const ROUNDS = Number(process.env.BENCH_STEP_ROUNDS ?? 2);
const WARM_BARS = 60;
const log = componentLogger('bench');

type Mode = 'awaited' | 'overlapped';

function series(symbols: number, bars30m: number, firstSeed: number): Bar30m[][] {
  return Array.from({ length: symbols }, (_, i) =>
    resampleTo30m(generateSyntheticMarket({ seed: firstSeed + i, symbol: `S${firstSeed + i}`, bars: 6 * (bars30m + 1) }).bars).slice(0, bars30m) as Bar30m[],
  );
}

/** One symbol's lane: its bars one after another, as the worker runs them. */
class Lane {
  state: StrategicState | null = null;
  tail: Promise<void> = Promise.resolve();
  constructor(readonly flow: StrategicFlow) {}
}

async function withFlow<T>(fn: (flow: StrategicFlow, stage: AnalyticsStage) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'strategic-step-'));
  const stage = new AnalyticsStage({ dir, log, saveEveryBars: 3, overlapSync: true });
  try {
    return await fn(new StrategicFlow(stage, null, 4), stage);
  } finally {
    await stage.flush();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** In `awaited` mode, how long each context waited for its bar's durable write (ms): what `overlapped` takes off the path. */
const syncWaits: number[] = [];

/** Runs `bar` in its lane; resolves with the ms from the call to its context being ready. */
function step(lane: Lane, bar: Bar30m, mode: Mode, writes: Promise<void>[], contexts: string[]): Promise<number> {
  const started = performance.now();
  const run = lane.tail.then(async () => {
    const out = await lane.flow.step(bar, lane.state);
    lane.state = out.state;
    JSON.stringify(out.state); // the checkpoint the commit writes
    if (out.durable !== null) {
      if (mode === 'awaited') {
        const waitStarted = performance.now();
        await out.durable.done;
        syncWaits.push(performance.now() - waitStarted);
      } else writes.push(out.durable.done);
    }
    contexts.push(JSON.stringify(out.context));
    return performance.now() - started;
  });
  lane.tail = run.then(() => undefined);
  return run;
}

async function paced(mode: Mode, data: Bar30m[][], count: number): Promise<{ ms: number[]; contexts: string[] }> {
  return withFlow(async (flow) => {
    const lanes = data.map(() => new Lane(flow));
    const writes: Promise<void>[] = [];
    const contexts: string[] = [];
    // Warm-up (not timed): the windows fill and the stores get patterns.
    for (let b = 0; b < WARM_BARS; b++) await Promise.all(lanes.map((lane, i) => step(lane, data[i]![b]!, mode, writes, contexts)));
    syncWaits.length = 0;
    const ms: number[] = [];
    const timed: Promise<void>[] = [];
    const start = performance.now();
    for (let k = 0; k < count; k++) {
      const due = start + (k * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const i = k % data.length;
      const b = WARM_BARS + Math.floor(k / data.length);
      timed.push(step(lanes[i]!, data[i]![b]!, mode, writes, contexts).then((x) => void ms.push(x)));
    }
    await Promise.all(timed);
    await Promise.all(writes);
    return { ms: ms.sort((x, y) => x - y), contexts };
  });
}

async function burst(mode: Mode, data: Bar30m[][], closes: number): Promise<{ ms: number[]; contexts: string[] }> {
  return withFlow(async (flow) => {
    const lanes = data.map(() => new Lane(flow));
    const writes: Promise<void>[] = [];
    const contexts: string[] = [];
    const ms: number[] = [];
    for (let b = 0; b < closes; b++) {
      const started = performance.now();
      await Promise.all(lanes.map((lane, i) => step(lane, data[i]![b]!, mode, writes, contexts)));
      if (b >= closes - 6) ms.push(performance.now() - started); // the last six closes: stores hold patterns
      await Promise.all(writes.splice(0)); // the next close comes minutes later
    }
    return { ms, contexts };
  });
}

/**
 * The burst as the worker runs it now: each close's bars readied, then one pass of analyses (the
 * contexts, timed to the last one ready), then the rest of every bar (pattern insert and merge,
 * sync start, checkpoint state, timed too: `finished`).
 */
async function burstPasses(data: Bar30m[][], closes: number): Promise<{ ms: number[]; finished: number[]; contexts: string[] }> {
  return withFlow(async (flow) => {
    const states: (StrategicState | null)[] = data.map(() => null);
    const writes: Promise<void>[] = [];
    const contexts: string[] = [];
    const ms: number[] = [];
    const finished: number[] = [];
    for (let b = 0; b < closes; b++) {
      const started = performance.now();
      const prepared = await Promise.all(data.map((d, i) => flow.prepare(d[b]!, states[i]!)));
      const ran = prepared.map((p) => {
        if (p.run === undefined) throw new Error('the analytics stage does not split its step');
        const r = p.run();
        contexts.push(JSON.stringify(r.context));
        return r;
      });
      const ready = performance.now() - started;
      ran.forEach((r, i) => {
        const out = r.finish();
        states[i] = out.state;
        JSON.stringify(out.state); // the checkpoint the commit writes
        if (out.durable !== null) writes.push(out.durable.done);
      });
      if (b >= closes - 6) {
        ms.push(ready);
        finished.push(performance.now() - started);
      }
      await Promise.all(writes.splice(0));
    }
    return { ms, finished, contexts };
  });
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = { bench: 'strategic-step', at: new Date().toISOString(), loadavg1mAtStart: loadavg()[0] };
  console.log(`strategic step, context ready (ms); load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const count = Math.round(RATE * SECONDS);
  const pacedData = series(SYMBOLS, WARM_BARS + Math.ceil(count / SYMBOLS), 500);
  const burstData = series(BURST, 64, 20_000);
  const rows: Record<string, Record<Mode, number[][]>> = { paced: { awaited: [], overlapped: [] }, burst: { awaited: [], overlapped: [] } };
  const passes: number[][] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const modes: Mode[] = round % 2 === 0 ? ['awaited', 'overlapped'] : ['overlapped', 'awaited'];
    const seen: Partial<Record<Mode, string[]>> = {};
    for (const mode of modes) {
      const r = await paced(mode, pacedData, count);
      rows.paced![mode].push(r.ms);
      seen[mode] = r.contexts;
      const waits = [...syncWaits].sort((x, y) => x - y);
      const held = mode === 'awaited' ? `; ${waits.length} contexts waited for a durable write: p50 ${quantile(waits, 0.5).toFixed(3)} p99 ${quantile(waits, 0.99).toFixed(3)} max ${(waits[waits.length - 1] ?? NaN).toFixed(2)} ms` : '';
      console.log(`paced ${SYMBOLS} symbols at ${RATE}/s, ${mode.padEnd(10)} p50 ${quantile(r.ms, 0.5).toFixed(3)}  p99 ${quantile(r.ms, 0.99).toFixed(3)}  max ${r.ms[r.ms.length - 1]!.toFixed(2)}  (n ${r.ms.length}, load ${loadavg()[0]!.toFixed(2)})${held}`);
    }
    // Lanes interleave differently in the two modes: compare the contexts, not their order.
    if (JSON.stringify(seen.awaited?.sort()) !== JSON.stringify(seen.overlapped?.sort())) throw new Error('paced: contexts differ between the modes');
    const burstSeen: Partial<Record<Mode, string[]>> = {};
    for (const mode of modes) {
      const r = await burst(mode, burstData, 64);
      rows.burst![mode].push(r.ms);
      burstSeen[mode] = r.contexts;
      console.log(`burst ${BURST} symbols, ${mode.padEnd(10)} last context after (ms, last six closes): ${r.ms.map((x) => x.toFixed(0)).join(' ')}  (load ${loadavg()[0]!.toFixed(2)})`);
    }
    if (JSON.stringify(burstSeen.awaited?.sort()) !== JSON.stringify(burstSeen.overlapped?.sort())) throw new Error('burst: contexts differ between the modes');
    const p = await burstPasses(burstData, 64);
    passes.push(p.ms);
    console.log(`burst ${BURST} symbols, passes     last context after (ms, last six closes): ${p.ms.map((x) => x.toFixed(0)).join(' ')}; every bar finished after ${p.finished.map((x) => x.toFixed(0)).join(' ')}  (load ${loadavg()[0]!.toFixed(2)})`);
    if (JSON.stringify(p.contexts.sort()) !== JSON.stringify(burstSeen.overlapped?.sort())) throw new Error('burst: contexts of the passes differ from those of the lanes');
  }
  const all = (m: number[][]): number[] => m.flat().sort((x, y) => x - y);
  const pa = all(rows.paced!.awaited);
  const po = all(rows.paced!.overlapped);
  const ba = all(rows.burst!.awaited);
  const bo = all(rows.burst!.overlapped);
  console.log(
    `paced, all rounds: p99 awaited ${quantile(pa, 0.99).toFixed(3)} -> overlapped ${quantile(po, 0.99).toFixed(3)} ms (ratio ${(quantile(po, 0.99) / quantile(pa, 0.99)).toFixed(2)}); p50 ${quantile(pa, 0.5).toFixed(3)} -> ${quantile(po, 0.5).toFixed(3)}`,
  );
  const bp = all(passes);
  console.log(`burst, all rounds: median overlapped lanes ${quantile(bo, 0.5).toFixed(0)} -> passes ${quantile(bp, 0.5).toFixed(0)} ms to the last context (ratio ${(quantile(bp, 0.5) / quantile(bo, 0.5)).toFixed(2)}); contexts identical`);
  console.log(`burst, all rounds: median awaited ${quantile(ba, 0.5).toFixed(0)} -> overlapped ${quantile(bo, 0.5).toFixed(0)} ms (ratio ${(quantile(bo, 0.5) / quantile(ba, 0.5)).toFixed(2)}); contexts identical in both modes`);
  Object.assign(out, { loadavg1mAtEnd: loadavg()[0], paced: { awaited: { p50: quantile(pa, 0.5), p99: quantile(pa, 0.99) }, overlapped: { p50: quantile(po, 0.5), p99: quantile(po, 0.99) } }, burst: { awaited: ba, overlapped: bo, passes: bp } });
  console.log(JSON.stringify(out));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
