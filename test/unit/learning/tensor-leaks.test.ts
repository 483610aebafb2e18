import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import pino from 'pino';
import { TrainerFlow } from '../../../src/flows/trainer-flow';
import { MappoTrainer, selectBackend } from '../../../src/learning';
import { Mlp } from '../../../src/learning/network';
import { SeededRandom } from '../../../src/util/random';
import { experience } from '../../fixtures/experience';
import { openModelRegistry } from '../../../src/state/model-files';

/**
 * The trainer worker builds a fresh team for every batch: anything a build, an update or a dispose
 * leaves behind in tfjs grows the worker's memory with every batch, forever (the soak of issue 12
 * part 4 saw +7 to +18 MB of trainer RSS per day of bars from exactly that). These tests pin the
 * tfjs tensor count and bytes across repeated cycles.
 */
describe('no tfjs tensor outlives its network', () => {
  beforeAll(async () => {
    await selectBackend();
  });

  it('Mlp: create, setWeights and dispose leave no tensor behind', () => {
    const before = tf.memory();
    for (let i = 0; i < 3; i++) {
      const net = Mlp.create([7, 16, 3], new SeededRandom(i + 1));
      net.setWeights(net.getWeights());
      net.dispose();
    }
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
  });

  it('MappoTrainer: repeated update + dispose from a snapshot returns to the same tensor count', async () => {
    const batch = experience(['AAA', 'BBB'], 30, 5);
    const seedTrainer = new MappoTrainer({ seed: 1 });
    const snapshot = seedTrainer.snapshot();
    seedTrainer.dispose();
    const before = tf.memory();
    for (let i = 0; i < 3; i++) {
      const trainer = new MappoTrainer({ snapshot, mappo: { seed: 1 } });
      await trainer.update(batch);
      trainer.dispose();
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
    }
  }, 60_000);

  it('TrainerFlow: the tensor count and bytes are the same after every batch', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tensor-leaks-'));
    try {
      const flow = await TrainerFlow.create({ registry: openModelRegistry(dir), batchSize: 60, seed: 1, log: pino({ level: 'silent' }) });
      const counts: number[] = [];
      const bytes: number[] = [];
      for (let i = 0; i < 4; i++) {
        await flow.train(experience(['AAA', 'BBB'], 30, 11 + i));
        counts.push(tf.memory().numTensors);
        bytes.push(tf.memory().numBytes);
      }
      expect(new Set(counts).size).toBe(1);
      expect(new Set(bytes).size).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
