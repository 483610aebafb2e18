import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ResolvedMappoOptions } from './mappo';
import type { AdamOptions } from './simd-mlp';
import type { ActorStepMetrics } from './simd-steps';
import type { WorkerRequest } from './simd-worker';

/**
 * A worker thread that trains some of the team's networks (simd-worker.ts) while the main thread
 * trains the others: the three actors and the critic are independent within a PPO minibatch. The
 * worker runs the same WebAssembly and the same step code, so results are bit-identical to training
 * everything on the main thread. The worker is unref'd (it never keeps a process alive) and ended by
 * {@link SimdWorker.terminate}.
 */
export class SimdWorker {
  private readonly worker: Worker;
  private readonly waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private failed: Error | null = null;

  private constructor(worker: Worker) {
    this.worker = worker;
    worker.unref();
    worker.on('message', (msg: { ok: boolean; value?: unknown; error?: string }) => {
      const w = this.waiting.shift();
      if (!w) return;
      if (msg.ok) w.resolve(msg.value);
      else w.reject(new Error(msg.error ?? 'worker error'));
    });
    const fail = (err: Error): void => {
      this.failed = err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`training worker exited (code ${code})`)));
  }

  /**
   * A worker, or null where a second thread would not help (one core) or cannot start. Under tsx
   * (TypeScript sources) the worker registers tsx's loader itself; built JavaScript needs nothing.
   */
  static start(): SimdWorker | null {
    if (availableParallelism() < 2) return null;
    try {
      const file = join(__dirname, `simd-worker${extname(__filename)}`);
      const load = `require(${JSON.stringify(file)});`;
      const code = extname(file) === '.ts' ? `require('tsx/cjs'); ${load}` : load;
      return new SimdWorker(new Worker(code, { eval: true }));
    } catch {
      return null;
    }
  }

  private call<T>(req: WorkerRequest): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage(req);
    });
  }

  init(id: number, sizes: readonly number[], adam: AdamOptions): Promise<null> {
    return this.call({ op: 'init', id, sizes: [...sizes], adam });
  }

  load(id: number, weights: Float32Array): Promise<null> {
    return this.call({ op: 'load', id, weights });
  }

  weights(id: number): Promise<Float32Array> {
    return this.call({ op: 'get', id });
  }

  actorStep(id: number, o: ResolvedMappoOptions, k: number, obs: Float32Array, actions: Int32Array, oldLogp: Float32Array, adv: Float32Array, mask: Float32Array, m: number): Promise<ActorStepMetrics> {
    return this.call({ op: 'actor', id, o, k, obs, actions, oldLogp, adv, mask, m });
  }

  criticStep(id: number, o: ResolvedMappoOptions, states: Float32Array, oldValues: Float32Array, targets: Float32Array, m: number): Promise<{ valueLoss: number; gradNorm: number }> {
    return this.call({ op: 'critic', id, o, states, oldValues, targets, m });
  }

  terminate(): void {
    void this.worker.terminate();
  }
}
