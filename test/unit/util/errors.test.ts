import { PublishError, StateStoreError, ValidationError, isRetriable } from '../../../src/errors';

describe('isRetriable', () => {
  it('follows the first PipelineError in the cause chain', () => {
    expect(isRetriable(new PublishError('x'))).toBe(true);
    expect(isRetriable(new ValidationError('x'))).toBe(false);
    expect(isRetriable(new Error('wrap', { cause: new ValidationError('x') }))).toBe(false);
    expect(isRetriable(new StateStoreError('x', { cause: new TypeError('y') }))).toBe(true);
  });
  it('never retries bugs', () => {
    expect(isRetriable(new TypeError('x'))).toBe(false);
    expect(isRetriable(new Error('wrap', { cause: new RangeError('x') }))).toBe(false);
  });
  it('treats unknown driver errors as transient', () => {
    expect(isRetriable(new Error('ECONNRESET'))).toBe(true);
  });
  it('sets name from the subclass', () => {
    expect(new ValidationError('x').name).toBe('ValidationError');
  });
});
