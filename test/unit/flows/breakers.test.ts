import { CircuitOpenError, ValidationError } from '../../../src/errors';
import { createBreaker, createGuard } from '../../../src/flows/breakers';
import { PipelineEvent, pipelineEvents } from '../../../src/observability/events';
import pino from 'pino';

const log = pino({ level: 'silent' });
const fail = (): Promise<never> => Promise.reject(new Error('down'));
const ok = (): Promise<string> => Promise.resolve('ok');

describe('CountBreaker', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('opens once the window holds volumeThreshold calls and more than half failed, then refuses', async () => {
    const states: string[] = [];
    const onState = (e: { stage: string; state: string }): void => {
      if (e.stage === 't1') states.push(e.state);
    };
    pipelineEvents.on(PipelineEvent.BreakerState, onState);
    try {
      const b = createBreaker({ stage: 't1', volumeThreshold: 4, log });
      await expect(b.fire(ok)).resolves.toBe('ok');
      await expect(b.fire(fail)).rejects.toThrow('down');
      await expect(b.fire(fail)).rejects.toThrow('down');
      expect(b.closed).toBe(true); // 3 calls: below the volume threshold
      await expect(b.fire(fail)).rejects.toThrow('down'); // 4 calls, 75% failed
      expect(b.opened).toBe(true);
      await expect(b.fire(ok)).rejects.toBeInstanceOf(CircuitOpenError);
      expect(states).toEqual(['closed', 'open']);
    } finally {
      pipelineEvents.off(PipelineEvent.BreakerState, onState);
    }
  });

  it('does not open at exactly the threshold percentage', async () => {
    const b = createBreaker({ stage: 't2', volumeThreshold: 4, log });
    await b.fire(ok);
    await b.fire(ok);
    await b.fire(fail).catch(() => undefined);
    await b.fire(fail).catch(() => undefined); // 50%: not more than 50
    expect(b.closed).toBe(true);
  });

  it('lets one trial call through after resetTimeoutMs: success closes, failure opens again', async () => {
    const b = createBreaker({ stage: 't3', volumeThreshold: 1, resetTimeoutMs: 1000, log });
    await b.fire(fail).catch(() => undefined);
    expect(b.opened).toBe(true);
    jest.advanceTimersByTime(1000);
    expect(b.halfOpen).toBe(true);
    expect(b.tryAcquire()).toBe(true); // the trial
    expect(b.tryAcquire()).toBe(false); // others wait for its outcome
    b.failed();
    expect(b.opened).toBe(true);
    jest.advanceTimersByTime(1000);
    await expect(b.fire(ok)).resolves.toBe('ok');
    expect(b.closed).toBe(true);
    // A closed breaker starts from a clean window: one failure with volumeThreshold 1 opens it again.
    await b.fire(fail).catch(() => undefined);
    expect(b.opened).toBe(true);
  });

  it('never counts bad data as a failure', async () => {
    const b = createBreaker({ stage: 't4', volumeThreshold: 1, log });
    for (let i = 0; i < 10; i++) {
      await expect(b.fire(() => Promise.reject(new ValidationError('bad bar')))).rejects.toBeInstanceOf(ValidationError);
    }
    expect(b.closed).toBe(true);
  });

  it('forgets failures that left the rolling window', async () => {
    const b = createBreaker({ stage: 't5', volumeThreshold: 3, rollingCountTimeoutMs: 12_000, log });
    await b.fire(fail).catch(() => undefined);
    await b.fire(fail).catch(() => undefined);
    jest.setSystemTime(1_000_000 + 13_000); // both buckets are out of the window now
    await b.fire(fail).catch(() => undefined);
    expect(b.closed).toBe(true);
    await b.fire(fail).catch(() => undefined);
    await b.fire(fail).catch(() => undefined);
    expect(b.opened).toBe(true);
  });

  it('guards any call and turns an open breaker into a retriable CircuitOpenError', async () => {
    const guard = createGuard({ stage: 't6', volumeThreshold: 1, log });
    await expect(guard(() => Promise.resolve(42))).resolves.toBe(42);
    await expect(guard(fail)).rejects.toThrow('down');
    await guard(fail).catch(() => undefined);
    const refused = await guard(() => Promise.resolve(1)).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect((refused as CircuitOpenError).retriable).toBe(true);
  });
});
