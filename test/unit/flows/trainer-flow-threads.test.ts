import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { TrainerFlow } from '../../../src/flows/trainer-flow';
import { SimdWorker } from '../../../src/learning/simd-pool';
import { openModelRegistry } from '../../../src/state/model-files';
import { experience } from '../../fixtures/experience';

const log = pino({ level: 'silent' });

describe('TrainerFlow threads', () => {
  jest.setTimeout(60_000);
  const dirs: string[] = [];
  const batch = experience(['AAA', 'BBB'], 60, 5);

  beforeAll(async () => {
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  async function trainOnce(threads: boolean | undefined): Promise<{ actors: Float32Array[]; critic: Float32Array }> {
    const dir = await mkdtemp(join(tmpdir(), 'trainer-threads-'));
    dirs.push(dir);
    const registry = openModelRegistry(dir);
    const flow = await TrainerFlow.create({ registry, batchSize: batch.length, seed: 1, log, ...(threads === undefined ? {} : { threads }) });
    const out = await flow.train(batch);
    if (out.skipped) throw new Error('not trained');
    const snapshot = await registry.loadSnapshot(out.version);
    return { actors: snapshot.actors.map((a) => a.data), critic: snapshot.critic.data };
  }

  it('trains on its own thread by default, to the same weights as with a worker thread', async () => {
    const start = jest.spyOn(SimdWorker, 'start');
    const single = await trainOnce(undefined);
    expect(start).not.toHaveBeenCalled();
    const threaded = await trainOnce(true);
    expect(start).toHaveBeenCalled();
    expect(single.critic).toEqual(threaded.critic);
    expect(single.actors).toEqual(threaded.actors);
  });
});
