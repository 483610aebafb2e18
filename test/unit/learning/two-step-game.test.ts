import { runTwoStepGame, twoStepReturn } from '../../../src/learning/two-step-game';

describe('two-step cooperative game', () => {
  it('pays 7 on branch A and the matrix [[0,1],[1,8]] on branch B', () => {
    expect(twoStepReturn(0, 1, 1)).toBe(7);
    expect([twoStepReturn(1, 0, 0), twoStepReturn(1, 0, 1), twoStepReturn(1, 1, 0), twoStepReturn(1, 1, 1)]).toEqual([0, 1, 1, 8]);
  });

  it.each([1, 2])('reaches the stable optimum 8 within 100 iterations of 64 episodes (seed %i)', async (seed) => {
    const r = await runTwoStepGame({ seed, iterations: 100, episodesPerIteration: 64 });
    expect(r.iterationsToOptimum).not.toBeNull();
    expect(r.greedyReturns.slice(-3)).toEqual([8, 8, 8]);
  }, 60_000);

  it('does not reach the optimum when the policies cannot learn (the check can fail)', async () => {
    const r = await runTwoStepGame({ seed: 1, iterations: 5, episodesPerIteration: 16, mappo: { actorLr: 0 } });
    expect(r.iterationsToOptimum).toBeNull();
  }, 60_000);

  it('is deterministic for a seed', async () => {
    const a = await runTwoStepGame({ seed: 7, iterations: 4, episodesPerIteration: 16, stopWhenStable: false });
    const b = await runTwoStepGame({ seed: 7, iterations: 4, episodesPerIteration: 16, stopWhenStable: false });
    expect(a).toEqual(b);
  }, 60_000);
});
