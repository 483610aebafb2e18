/**
 * MAPPO benchmark: batch-1 decision latency of the three trading actors (plain-JS TacticalPolicy,
 * the path the tactical worker uses; backend independent) and the time of one training iteration
 * (10 episodes of 288 bars collected + the PPO update) with the WebAssembly SIMD engine (the only
 * training engine), with the training worker thread and, for comparison in the same run, without.
 *   npx tsx bench/mappo.bench.ts [--epochs N] [--runs N]
 * Prints a table and, last, one JSON line.
 */
import { syntheticSeries } from '../src/learning/evaluation';
import { Mappo } from '../src/learning/mappo';
import { TacticalPolicy } from '../src/learning/policy';
import { collectEpisodes, TRADING_MAPPO_OPTIONS, TRADING_TEAM_SPEC, tradingParameterCounts } from '../src/learning/trading-agents';
import { advance, initialAgentState } from '../src/learning/trading-env';
import { SeededRandom } from '../src/util/random';
import { median, quantile } from '../src/util/quantile';

const pct = quantile;

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

  // Training: the SIMD engine (WebAssembly forward, backward and Adam) with and without its worker
  // thread, in the trading configuration (4 epochs x 2 minibatches) and the 1 x 1 configuration.
  // The machine is shared: runs of the configurations are interleaved, so load changes hit them alike.
  const configs = epochsArg >= 0
    ? [{ engine: 'simd' as const, threads: true, ppoEpochs: Number(process.argv[epochsArg + 1]), numMiniBatch: 1 }]
    : [
        { engine: 'simd' as const, threads: true, ...TRADING_MAPPO_OPTIONS },
        { engine: 'simd' as const, threads: false, ...TRADING_MAPPO_OPTIONS },
        { engine: 'simd' as const, threads: true, ppoEpochs: 1, numMiniBatch: 1 },
      ];
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 4;
  const setups = configs.map((cfg) => {
    const mappo = new Mappo(TRADING_TEAM_SPEC, { ppoEpochs: cfg.ppoEpochs, numMiniBatch: cfg.numMiniBatch, seed: 1 });
    mappo.threads = cfg.threads;
    return { cfg, mappo, rng: new SeededRandom(3), times: [] as { collectMs: number; updateMs: number; cpuMs: number }[] };
  });
  for (let k = 0; k < runs; k++) {
    for (const s of setups) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const { trajectories } = collectEpisodes(s.mappo, [series], { rng: s.rng, episodes: 10, steps: 288 });
      const t1 = performance.now();
      await s.mappo.update(trajectories);
      const cpu = process.cpuUsage(c0);
      s.times.push({ collectMs: t1 - t0, updateMs: performance.now() - t1, cpuMs: (cpu.user + cpu.system) / 1000 });
    }
  }
  const training = setups.map((s) => {
    const t = s.times.slice(1); // the first run includes warm-up (compilation, allocation)
    const collectMs = median(t.map((r) => r.collectMs));
    const updateMs = median(t.map((r) => r.updateMs));
    const totalMs = median(t.map((r) => r.collectMs + r.updateMs));
    const cpuMs = median(t.map((r) => r.cpuMs));
    const threads = s.mappo.trainingThreads;
    s.mappo.dispose();
    return { engine: s.cfg.engine, threads, ppoEpochs: s.cfg.ppoEpochs ?? 15, numMiniBatch: s.cfg.numMiniBatch ?? 1, collectMs, updateMs, totalMs, cpuMs, runs: t.length };
  });
  const simdTrading = training[0] as (typeof training)[number];

  const params = tradingParameterCounts();
  process.stdout.write(`actor parameters: ${JSON.stringify(params)}\n`);
  process.stdout.write(`decision latency, 3 actors, batch 1 (TacticalPolicy, SIMD wasm forward pass): p50 ${latency.p50Ms.toFixed(3)} ms, p99 ${latency.p99Ms.toFixed(3)} ms (target p50 <= 0.2 ms)\n`);
  process.stdout.write(
    'engine     epochs x minibatches  collect ms  update ms  total ms  cpu ms (10 episodes x 288 steps, median of the runs after the first; target total <= 1000)\n',
  );
  for (const r of training) {
    process.stdout.write(
      `${`${r.engine}${r.engine === 'simd' ? ` ${r.threads}t` : ''}`.padEnd(10)} ${`${r.ppoEpochs} x ${r.numMiniBatch}`.padEnd(21)} ${r.collectMs.toFixed(0).padStart(10)} ${r.updateMs.toFixed(0).padStart(10)} ${r.totalMs.toFixed(0).padStart(9)} ${r.cpuMs.toFixed(0).padStart(7)}\n`,
    );
  }
  // cpu ms is the process's CPU time (all threads): on a loaded machine it is closer to the work done
  // than wall time; with the worker thread it counts both threads, so compare wall time there.
  const oneThread = training.find((r) => r.threads === 1 && r.ppoEpochs === simdTrading.ppoEpochs);
  const ratio = oneThread && oneThread !== simdTrading ? { total: simdTrading.totalMs / oneThread.totalMs, update: simdTrading.updateMs / oneThread.updateMs } : null;
  if (ratio) process.stdout.write(`worker thread / one thread, 4 x 2, same run: total ${ratio.total.toFixed(2)}, update ${ratio.update.toFixed(2)}\n`);
  process.stdout.write(JSON.stringify({ params, latency, training, ratio }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
