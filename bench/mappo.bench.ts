/**
 * MAPPO benchmark: batch-1 decision latency of the three trading actors (plain-JS TacticalPolicy,
 * the path the tactical worker uses; backend independent) and the time of one training iteration
 * (10 episodes of 288 bars collected + the PPO update) per available tfjs backend.
 *   npx tsx bench/mappo.bench.ts [--epochs N]
 * Prints a table and, last, one JSON line.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { syntheticSeries } from '../src/learning/evaluation';
import { Mappo } from '../src/learning/mappo';
import { TacticalPolicy } from '../src/learning/policy';
import { collectEpisodes, TRADING_MAPPO_OPTIONS, TRADING_TEAM_SPEC, tradingParameterCounts } from '../src/learning/trading-agents';
import { advance, initialAgentState } from '../src/learning/trading-env';
import { SeededRandom } from '../src/util/random';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

async function main(): Promise<void> {
  const epochsArg = process.argv.indexOf('--epochs');
  const [series] = syntheticSeries({ seeds: [42], bars: 3000 });
  if (!series) throw new Error('no series');

  // Decision latency (JS, batch 1), over real observations.
  const policy = TacticalPolicy.initial(1);
  let state = initialAgentState();
  const times: number[] = [];
  for (let t = 40; t < 2900; t++) {
    const input = { indicators: series.indicators[t]!, strategic: null, bar: series.bars[t]!, agentState: state };
    const t0 = performance.now();
    const d = policy.decide(input);
    const dt = performance.now() - t0;
    if (t >= 540) times.push(dt);
    state = advance(state, series.bars[t]!, d).state;
  }
  times.sort((a, b) => a - b);
  const latency = { p50Ms: pct(times, 0.5), p99Ms: pct(times, 0.99), samples: times.length };

  const training: Record<string, { collectMs: number; updateMs: number; totalMs: number; ppoEpochs: number; numMiniBatch: number }[]> = {};
  for (const backend of ['wasm', 'cpu']) {
    if (!(await tf.setBackend(backend))) continue;
    await tf.ready();
    training[backend] = [];
    const configs = epochsArg >= 0 ? [{ ppoEpochs: Number(process.argv[epochsArg + 1]), numMiniBatch: 1 }] : [TRADING_MAPPO_OPTIONS, { ppoEpochs: 1, numMiniBatch: 1 }];
    for (const cfg of configs) {
      if (backend === 'cpu' && cfg !== configs[0]) continue; // cpu is slow; one config is enough
      const mappo = new Mappo(TRADING_TEAM_SPEC, { ...cfg, seed: 1 });
      const rng = new SeededRandom(3);
      const runs: { collectMs: number; updateMs: number }[] = [];
      for (let k = 0; k < (backend === 'cpu' ? 1 : 3); k++) {
        const t0 = performance.now();
        const { trajectories } = collectEpisodes(mappo, [series], { rng, episodes: 10, steps: 288 });
        const t1 = performance.now();
        await mappo.update(trajectories);
        runs.push({ collectMs: t1 - t0, updateMs: performance.now() - t1 });
      }
      const last = runs.slice(backend === 'cpu' ? 0 : 1); // first wasm run includes warm-up
      const collectMs = last.reduce((a, r) => a + r.collectMs, 0) / last.length;
      const updateMs = last.reduce((a, r) => a + r.updateMs, 0) / last.length;
      training[backend]!.push({ collectMs, updateMs, totalMs: collectMs + updateMs, ppoEpochs: cfg.ppoEpochs ?? 15, numMiniBatch: cfg.numMiniBatch ?? 1 });
      mappo.dispose();
    }
  }

  const params = tradingParameterCounts();
  process.stdout.write(`actor parameters: ${JSON.stringify(params)}\n`);
  process.stdout.write(`decision latency, 3 actors, batch 1 (TacticalPolicy, SIMD wasm forward pass): p50 ${latency.p50Ms.toFixed(3)} ms, p99 ${latency.p99Ms.toFixed(3)} ms (target p50 <= 0.2 ms)\n`);
  process.stdout.write('backend  epochs x minibatches  collect ms  update ms  total ms (10 episodes x 288 steps; target <= 1000)\n');
  for (const [b, rows] of Object.entries(training)) {
    for (const r of rows) {
      process.stdout.write(`${b.padEnd(8)} ${`${r.ppoEpochs} x ${r.numMiniBatch}`.padEnd(21)} ${r.collectMs.toFixed(0).padStart(10)} ${r.updateMs.toFixed(0).padStart(10)} ${r.totalMs.toFixed(0).padStart(9)}\n`);
    }
  }
  process.stdout.write(JSON.stringify({ params, latency, training }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
