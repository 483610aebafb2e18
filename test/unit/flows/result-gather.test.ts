/** ResultGather: the results of a batch leave as one message, sent by one sender, and the bars wait for its confirm. */
import type { IntegratedResult } from '../../../schemas/integrated-result.schema';
import { ResultGather } from '../../../src/flows/result-gather';

const result = (ts: number): IntegratedResult => ({ ts } as unknown as IntegratedResult);

describe('ResultGather', () => {
  it('sends every added result in one body, once, and confirms when the sender does', async () => {
    const gather = new ResultGather();
    gather.add(result(2));
    gather.add(result(1));
    const bodies: string[] = [];
    gather.send((body) => {
      bodies.push(body.toString('utf8'));
      return Promise.resolve();
    });
    await expect(gather.confirmed).resolves.toBeUndefined();
    expect(bodies).toHaveLength(1);
    expect(JSON.parse(bodies[0] as string)).toEqual({ v: 1, results: [{ ts: 2 }, { ts: 1 }] });
  });

  it('fails the bars waiting for it when its sender gives up', async () => {
    const gather = new ResultGather();
    gather.send(() => Promise.reject(new Error('gone')));
    await expect(gather.confirmed).rejects.toThrow('gone');
  });
});
