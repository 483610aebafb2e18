import { isTransientSocketError, retryWhileTransient } from '../../../src/util/retry-while-transient';

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

describe('retryWhileTransient', () => {
  it('tries again after a transient error and returns the first success', async () => {
    let calls = 0;
    const value = await retryWhileTransient(
      () => {
        calls++;
        return calls < 3 ? Promise.reject(refused()) : Promise.resolve('up');
      },
      isTransientSocketError,
      5_000,
    );
    expect(value).toBe('up');
    expect(calls).toBe(3);
  });

  it('throws a non-transient error at once, untouched', async () => {
    const denied = Object.assign(new Error('ACCESS_REFUSED'), { code: 403 });
    let calls = 0;
    await expect(
      retryWhileTransient(
        () => {
          calls++;
          return Promise.reject(denied);
        },
        isTransientSocketError,
        5_000,
      ),
    ).rejects.toBe(denied);
    expect(calls).toBe(1);
  });

  it('gives up with the last transient error once the wait is spent', async () => {
    let calls = 0;
    await expect(
      retryWhileTransient(
        () => {
          calls++;
          return Promise.reject(refused());
        },
        isTransientSocketError,
        250,
      ),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // 100 ms, then 200 ms would pass the 250 ms budget: two tries.
    expect(calls).toBe(2);
  });
});
