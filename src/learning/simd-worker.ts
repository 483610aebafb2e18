import { parentPort } from 'node:worker_threads';
import type { ResolvedMappoOptions } from './mappo';
import { SimdMlp, trainModule, type AdamOptions } from './simd-mlp';
import { simdActorStep, simdCriticStep } from './simd-steps';

/**
 * Worker-thread side of {@link SimdWorker} (simd-pool.ts): holds some of the team's SIMD networks
 * (with their Adam moments) and runs their PPO minibatch steps with the same code as the main
 * thread. One request at a time, answered in order.
 */

export type WorkerRequest =
  | { op: 'init'; id: number; sizes: number[]; adam: AdamOptions }
  | { op: 'load'; id: number; weights: Float32Array }
  | { op: 'get'; id: number }
  | { op: 'actor'; id: number; o: ResolvedMappoOptions; k: number; obs: Float32Array; actions: Int32Array; oldLogp: Float32Array; adv: Float32Array; mask: Float32Array; m: number }
  | { op: 'critic'; id: number; o: ResolvedMappoOptions; states: Float32Array; oldValues: Float32Array; targets: Float32Array; m: number };

const nets = new Map<number, SimdMlp>();

function net(id: number): SimdMlp {
  const n = nets.get(id);
  if (!n) throw new Error(`no network ${id} in the worker`);
  return n;
}

function handle(req: WorkerRequest): unknown {
  switch (req.op) {
    case 'init': {
      nets.set(req.id, new SimdMlp(req.sizes, req.adam, trainModule()));
      return null;
    }
    case 'load':
      net(req.id).setWeights(req.weights);
      return null;
    case 'get':
      return net(req.id).getWeights();
    case 'actor':
      return simdActorStep(net(req.id), req.o, req.k, req.obs, req.actions, req.oldLogp, req.adv, req.mask, req.m);
    case 'critic':
      return simdCriticStep(net(req.id), req.o, req.states, req.oldValues, req.targets, req.m);
  }
}

parentPort?.on('message', (req: WorkerRequest) => {
  try {
    parentPort?.postMessage({ ok: true, value: handle(req) });
  } catch (err) {
    parentPort?.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});
