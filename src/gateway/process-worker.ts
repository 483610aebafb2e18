/**
 * The worker-thread side of {@link ProcessPool}: runs one process call with {@link ProcessService}
 * (the workers' own flows) off the gateway's event loop. Loaded by piscina in each pool thread; the
 * service and the policy cache live as long as the thread.
 */
import { workerData } from 'node:worker_threads';
import type { Bar } from '../../schemas/bar.schema';
import type { StrategicProcessResponse, TacticalProcessResponse } from '../../schemas/gateway.schema';
import type { PipelineConfig } from '../config/config';
import { componentLogger } from '../observability/logger';
import { currentPolicy } from './policy-source';
import { ProcessInputError } from './http-error';
import { ProcessService } from './process-service';

/** One process call, as the pool sends it. */
export interface ProcessTask {
  kind: 'strategic' | 'tactical';
  symbol: string;
  bars: Bar[];
}

/** What a task answers: the result, or the message of a {@link ProcessInputError} (a 400). */
export type ProcessTaskResult =
  | { ok: true; value: StrategicProcessResponse | TacticalProcessResponse }
  | { ok: false; inputError: string };

const config = (workerData as { config: PipelineConfig }).config;
const log = componentLogger('process', 'gateway');
const policies = currentPolicy(config);
const service = new ProcessService({ config, policy: () => policies(), log });

export default async function runProcessTask(task: ProcessTask): Promise<ProcessTaskResult> {
  try {
    const value = task.kind === 'strategic' ? await service.strategic(task.symbol, task.bars) : await service.tactical(task.symbol, task.bars);
    return { ok: true, value };
  } catch (err) {
    // An input error crosses the thread boundary as data (an Error's class does not).
    if (err instanceof ProcessInputError) return { ok: false, inputError: err.message };
    throw err;
  }
}
