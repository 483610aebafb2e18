import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar30m } from '../../../schemas/bar.schema';
import type { StrategicContext } from '../../../schemas/strategic-context.schema';
import { AnalyticsStage } from '../../../src/flows/analytics-stage';
import { StrategicFlow, type DurableWrite, type StrategicState } from '../../../src/flows/strategic-flow';
import { componentLogger } from '../../../src/observability/logger';
import { generateSyntheticMarket } from '../../../src/producers/synthetic-market';
import { resampleTo30m } from '../../../src/strategic/resample';
import { viaJson } from '../../fixtures/json';

const log = componentLogger('test');
const SYMBOLS = 4;
/** Enough 30m bars for the pattern store to be searched and filled (from about bar 95 on). */
const BARS = 120;

function series(): Bar30m[][] {
  return Array.from({ length: SYMBOLS }, (_, i) =>
    resampleTo30m(generateSyntheticMarket({ seed: 40 + i, symbol: `P${i}`, bars: 6 * (BARS + 1) }).bars).slice(0, BARS) as Bar30m[],
  );
}

describe('StrategicFlow passes (the strategic worker at a 30m close)', () => {
  const dirs: string[] = [];
  const newDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'strategic-pass-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('gives the contexts and states of one step per bar when every symbol\'s bar is analysed first and finished after', async () => {
    const bars = series();
    // Reference: each bar's whole step, one after another.
    const stepFlow = new StrategicFlow(new AnalyticsStage({ dir: newDir(), log, saveEveryBars: 3, overlapSync: true }), null, 4);
    const stepStates: (StrategicState | null)[] = bars.map(() => null);
    const stepContexts: StrategicContext[][] = bars.map(() => []);
    for (let t = 0; t < BARS; t++) {
      for (let s = 0; s < SYMBOLS; s++) {
        const out = await stepFlow.step(bars[s]![t]!, stepStates[s]!);
        await out.durable?.done;
        stepStates[s] = out.state;
        stepContexts[s]!.push(out.context);
      }
    }
    // Passes: all symbols readied, all analysed (contexts), then all finished, in reverse order.
    const passFlow = new StrategicFlow(new AnalyticsStage({ dir: newDir(), log, saveEveryBars: 3, overlapSync: true }), null, 4);
    const passStates: (StrategicState | null)[] = bars.map(() => null);
    const passContexts: StrategicContext[][] = bars.map(() => []);
    for (let t = 0; t < BARS; t++) {
      const prepared = await Promise.all(bars.map((b, s) => passFlow.prepare(b[t]!, passStates[s]!)));
      const ran = prepared.map((p) => {
        if (p.run === undefined) throw new Error('the analytics stage should split its step');
        return p.run();
      });
      ran.forEach(({ context }, s) => passContexts[s]!.push(context));
      const durables: Promise<void>[] = [];
      for (let s = SYMBOLS - 1; s >= 0; s--) {
        const out = ran[s]!.finish();
        passStates[s] = out.state;
        if (out.durable !== null) durables.push(out.durable.done);
      }
      await Promise.all(durables);
    }
    expect(passContexts.flat().filter((c) => c.similar_patterns !== null).length).toBeGreaterThan(SYMBOLS * 10);
    expect(viaJson(passContexts)).toEqual(viaJson(stepContexts));
    expect(viaJson(passStates)).toEqual(viaJson(stepStates));
  });

  it('readies a bar synchronously unless its symbol\'s last sync may still be running', async () => {
    const [one] = series();
    const stage = new AnalyticsStage({ dir: newDir(), log, saveEveryBars: 2, overlapSync: true });
    let state: unknown = null;
    let durable: DurableWrite | null = null;
    const readied: boolean[] = [];
    for (const bar of one!.slice(0, 6)) {
      const prepared = stage.prepare(state, bar);
      readied.push(!(prepared instanceof Promise));
      const out = (prepared instanceof Promise ? await prepared : prepared).analyse(null).finish();
      state = out.state;
      durable = out.durable;
      // Left running: the next bar must wait for it (and is then readied asynchronously).
      void durable?.done;
    }
    // First bar: the analyzer is created (asynchronous); after each sync (every 2nd bar), the next waits.
    expect(readied).toEqual([false, true, false, true, false, true]);
    await durable?.done;
    // Once the sync is done, readied at once again.
    await new Promise((r) => setImmediate(r));
    expect(stage.prepare(state, one![6]!) instanceof Promise).toBe(false);
  });
});
