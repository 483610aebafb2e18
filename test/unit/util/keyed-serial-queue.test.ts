import { KeyedSerialQueue } from '../../../src/util/keyed-serial-queue';

describe('KeyedSerialQueue', () => {
  it('runs tasks of one key in order and of different keys concurrently', async () => {
    const q = new KeyedSerialQueue();
    const log: string[] = [];
    let releaseA: () => void = () => undefined;
    const a1 = q.run('a', () => new Promise<void>((r) => (releaseA = () => { log.push('a1'); r(); })));
    const a2 = q.run('a', () => void log.push('a2'));
    const b1 = q.run('b', () => void log.push('b1'));
    await b1;
    expect(log).toEqual(['b1']);
    releaseA();
    await Promise.all([a1, a2]);
    expect(log).toEqual(['b1', 'a1', 'a2']);
  });
  it('goes on after a failed task', async () => {
    const q = new KeyedSerialQueue();
    await expect(q.run('a', () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await expect(q.run('a', () => 2)).resolves.toBe(2);
  });
});
