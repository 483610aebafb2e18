import { extname, join } from 'node:path';
import { Piscina } from 'piscina';
import type { Bar } from '../../schemas/bar.schema';
import type { StrategicProcessResponse, TacticalProcessResponse } from '../../schemas/gateway.schema';
import type { PipelineConfig } from '../config/config';
import type { Logger } from '../observability/logger';
import { GatewayHttpError, ProcessInputError } from './http-error';
import type { ProcessTask, ProcessTaskResult } from './process-worker';

/** Options of {@link ProcessPool}. */
export interface ProcessPoolOptions {
  config: PipelineConfig;
  log: Logger;
}

/**
 * The process endpoints' worker-thread pool (piscina): at most GATEWAY_PROCESS_CONCURRENCY calls
 * run at once, each in a thread of its own, and at most four times as many wait. A call past that
 * is refused at once (503 with Retry-After), never queued; a call not done by its deadline
 * (GATEWAY_PROCESS_TIMEOUT_MS, queue time included) is a 504, and if it was running, its thread is
 * terminated (piscina starts a fresh one), so a runaway call cannot keep a thread. The gateway's
 * event loop only parses the request and sends the answer.
 */
export class ProcessPool {
  private readonly pool: Piscina;
  private readonly maxPending: number;
  private pending = 0;
  /** Calls refused because the queue was full, and calls past their deadline. */
  refused = 0;
  timedOut = 0;

  constructor(private readonly options: ProcessPoolOptions) {
    const g = options.config.gateway;
    const ext = extname(__filename);
    this.maxPending = g.processConcurrency * 5;
    this.pool = new Piscina({
      filename: join(__dirname, `process-worker${ext}`),
      // Threads start on the first call and stop after a minute idle: each holds the flows and a
      // policy (about 90 MB of RSS measured), which a gateway nobody asks to process should not carry.
      minThreads: 0,
      maxThreads: g.processConcurrency,
      maxQueue: g.processConcurrency * 4,
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
      // From the sources (tsx), each thread loads the TypeScript the same way; V8 flags of the
      // process (--max-old-space-size) are not valid for a thread: its heap is bounded here.
      execArgv: ext === '.ts' ? ['--import', 'tsx'] : [],
      resourceLimits: { maxOldGenerationSizeMb: 512 },
      workerData: { config: options.config },
    });
    this.pool.on('error', (err: Error) => options.log.error({ err: err.message }, 'process pool thread failed'));
  }

  /** Calls waiting or running. */
  get busy(): number {
    return this.pending;
  }

  /**
   * Refuses a call now (503 with Retry-After) when every slot and the queue are taken: the routes
   * ask before the body is read, so a refused call costs no parsing.
   */
  checkCapacity(): void {
    if (this.pending >= this.maxPending) {
      this.refused++;
      throw busy(this.options.config.gateway.processTimeoutMs);
    }
  }

  strategic(symbol: string, bars: Bar[]): Promise<StrategicProcessResponse> {
    return this.run({ kind: 'strategic', symbol, bars }) as Promise<StrategicProcessResponse>;
  }

  tactical(symbol: string, bars: Bar[]): Promise<TacticalProcessResponse> {
    return this.run({ kind: 'tactical', symbol, bars }) as Promise<TacticalProcessResponse>;
  }

  private async run(task: ProcessTask): Promise<StrategicProcessResponse | TacticalProcessResponse> {
    const g = this.options.config.gateway;
    this.checkCapacity();
    this.pending++;
    try {
      const result = (await this.pool.run(task, { signal: AbortSignal.timeout(g.processTimeoutMs) })) as ProcessTaskResult;
      if (!result.ok) throw new ProcessInputError(result.inputError);
      return result.value;
    } catch (err) {
      if (err instanceof ProcessInputError) throw err;
      if ((err as Error).name === 'AbortError') {
        this.timedOut++;
        throw new GatewayHttpError(504, 'timeout', `the call took longer than ${g.processTimeoutMs} ms (GATEWAY_PROCESS_TIMEOUT_MS) and was stopped: send fewer bars`);
      }
      if ((err as Error).message === 'Task queue is at limit') {
        this.refused++;
        throw busy(g.processTimeoutMs);
      }
      this.options.log.error({ err: (err as Error).message, kind: task.kind }, 'process call failed');
      throw new GatewayHttpError(500, 'internal', 'the process call failed; see the gateway log, and retry');
    } finally {
      this.pending--;
    }
  }

  /** Stops the threads (calls still waiting are rejected). */
  async close(): Promise<void> {
    await this.pool.close({ force: true });
  }
}

function busy(timeoutMs: number): GatewayHttpError {
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  return new GatewayHttpError(503, 'busy', `every process slot and its queue are taken (GATEWAY_PROCESS_CONCURRENCY); retry after ${seconds} s`, {}, { 'retry-after': String(seconds) });
}
