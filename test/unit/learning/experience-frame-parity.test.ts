import { decodeExperienceFrame, encodeExperienceFrame } from '../../../schemas/experience-frame';
import { ExperienceBatchSchema } from '../../../schemas/experience.schema';
import { parseMessage } from '../../../src/consumers/parse-message';
import type { ExperienceTransition } from '../../../src/flows/agent-stage';
import { MappoTrainer } from '../../../src/learning/trainer';
import type { Transition } from '../../../src/learning/transition';
import { experience } from '../../fixtures/experience';

/** The weights (actors, critic, value normaliser) after one seeded PPO update on these transitions. */
async function trainedOn(transitions: readonly Transition[]): Promise<unknown> {
  const trainer = new MappoTrainer({ seed: 3, mappo: { ppoEpochs: 2 }, threads: false });
  try {
    await trainer.update(transitions);
    return trainer.snapshot();
  } finally {
    trainer.dispose();
  }
}

const viaJson = (ts: readonly ExperienceTransition[]): Transition[] =>
  parseMessage(Buffer.from(JSON.stringify({ v: 1, transitions: ts })), ExperienceBatchSchema).transitions;
const viaFrame = (ts: readonly ExperienceTransition[]): Transition[] => decodeExperienceFrame(encodeExperienceFrame(ts));

/**
 * The same transitions through the JSON batch and through the binary frame must train to the same
 * weights. The frame narrows observations and log-probabilities to float32, the JSON batch does
 * not; the trainer copies both into Float32Arrays (update and the critic's bootstrap value alike),
 * so the weights are identical to the bit even for a producer that does not round them.
 */
describe('experience frame: training parity with the JSON path', () => {
  const transitions = experience(['AAA', 'BBB'], 24, 21);

  it('the tactical workers\' transitions (float32 already) train to identical weights', async () => {
    const json = viaJson(transitions);
    const frame = viaFrame(transitions);
    expect(frame).toStrictEqual(json);
    const a = await trainedOn(json);
    const b = await trainedOn(frame);
    expect(b).toStrictEqual(a);
  });

  it('transitions whose observations and log-probabilities are not float32 values still train to identical weights', async () => {
    // Not float32-exact: what a JSON producer that does not round them would send.
    const wide = transitions.map((t): ExperienceTransition => {
      const nudge = (v: number): number => (v === 0 ? v : v * (1 + 1e-12));
      const tactical = t.observations.tactical.map(nudge);
      const risk = t.observations.risk.map(nudge);
      const execution = t.observations.execution.map(nudge);
      return {
        ...t,
        observations: { tactical, risk, execution },
        global_state: [...tactical, ...risk, ...execution],
        log_probs: { tactical: nudge(t.log_probs.tactical), risk: nudge(t.log_probs.risk), execution: nudge(t.log_probs.execution) },
      };
    });
    const json = viaJson(wide);
    const frame = viaFrame(wide);
    expect(frame).not.toStrictEqual(json); // the frame did round them
    const weights = await trainedOn(json);
    expect(await trainedOn(frame)).toStrictEqual(weights);
    // The comparison is sensitive, and the reward is float64 on the wire for a reason: rewards
    // narrowed to float32 train to other weights (returns and advantages are summed in float64).
    const narrowed = json.map((t) => ({ ...t, reward: Math.fround(t.reward) }));
    expect(await trainedOn(narrowed)).not.toStrictEqual(weights);
  });
});
