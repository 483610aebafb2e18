import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar30m } from '../../../schemas/bar.schema';
import { AnalyticsStage } from '../../../src/flows/analytics-stage';
import { StrategicFlow, type StrategicState } from '../../../src/flows/strategic-flow';
import { componentLogger } from '../../../src/observability/logger';
import { PatternStoreFiles } from '../../../src/state/pattern-store-files';
import { generateSyntheticMarket } from '../../../src/producers/synthetic-market';
import { resampleTo30m } from '../../../src/strategic/resample';

const log = componentLogger('test');

function bars30m(count: number): Bar30m[] {
  const m5 = generateSyntheticMarket({ seed: 11, symbol: 'SYNC', bars: count * 6 + 6 }).bars;
  return resampleTo30m(m5).slice(0, count) as Bar30m[];
}

/** Resolves `false` when `p` has not settled after a few turns of the event loop. */
async function settles(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

describe('AnalyticsStage pattern-store sync', () => {
  const dirs: string[] = [];
  afterEach(() => {
    jest.restoreAllMocks();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('answers a bar before its sync is on disk, and holds the symbol\'s next bar until it is', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sync-'));
    dirs.push(dir);
    const realSync: (this: PatternStoreFiles) => Promise<void> = Reflect.get(PatternStoreFiles.prototype, 'sync');
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    jest.spyOn(PatternStoreFiles.prototype, 'sync').mockImplementation(function (this: PatternStoreFiles) {
      calls++;
      return gate.then(() => realSync.call(this));
    });
    const flow = new StrategicFlow(new AnalyticsStage({ dir, log, saveEveryBars: 3, overlapSync: true }), null, 4);
    const bars = bars30m(4);
    let state: StrategicState | null = null;
    for (const bar of bars.slice(0, 2)) {
      const out = await flow.step(bar, state);
      expect(out.durable).toBeNull();
      state = out.state;
    }
    // The third bar syncs: its context is there while the write still waits.
    const third = await flow.step(bars[2]!, state);
    expect(third.context.bar_close_ts).toBe(bars[2]!.ts + 1_800_000);
    expect(third.durable).not.toBeNull();
    expect(calls).toBe(1);
    expect(await settles(third.durable!.done)).toBe(false);
    // The next bar of the symbol does not touch the store before that write is done.
    const fourth = flow.step(bars[3]!, third.state);
    expect(await settles(fourth)).toBe(false);
    release();
    await third.durable!.done;
    const next = await fourth;
    expect(next.durable).toBeNull();
  });

  it('awaits each sync inside the step without overlapSync (the gateway drops the directory after)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sync-await-'));
    dirs.push(dir);
    const realSync: (this: PatternStoreFiles) => Promise<void> = Reflect.get(PatternStoreFiles.prototype, 'sync');
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    jest.spyOn(PatternStoreFiles.prototype, 'sync').mockImplementation(function (this: PatternStoreFiles) {
      return gate.then(() => realSync.call(this));
    });
    const flow = new StrategicFlow(new AnalyticsStage({ dir, log, saveEveryBars: 3 }), null, 4);
    const bars = bars30m(3);
    let state: StrategicState | null = null;
    for (const bar of bars.slice(0, 2)) state = (await flow.step(bar, state)).state;
    const third = flow.step(bars[2]!, state);
    expect(await settles(third)).toBe(false);
    release();
    expect((await third).durable).toBeNull();
  });

  it('gives the same contexts as a run that waits for every sync', async () => {
    const bars = bars30m(140);
    const run = async (awaitEach: boolean): Promise<string[]> => {
      const dir = mkdtempSync(join(tmpdir(), 'sync-eq-'));
      dirs.push(dir);
      const stage = new AnalyticsStage({ dir, log, saveEveryBars: 3, overlapSync: true });
      const flow = new StrategicFlow(stage, null, 4);
      let state: StrategicState | null = null;
      const contexts: string[] = [];
      const writes: Promise<void>[] = [];
      for (const bar of bars) {
        const out = await flow.step(bar, state);
        if (out.durable !== null) {
          if (awaitEach) await out.durable.done;
          else writes.push(out.durable.done);
        }
        state = out.state;
        contexts.push(JSON.stringify(out.context));
      }
      await Promise.all(writes);
      await stage.flush();
      return contexts;
    };
    const waited = await run(true);
    const overlapped = await run(false);
    expect(waited.filter((c) => c.includes('"similar_patterns":{')).length).toBeGreaterThan(20);
    expect(overlapped).toEqual(waited);
  });
});
