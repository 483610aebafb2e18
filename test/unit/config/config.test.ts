import { loadConfig } from '../../../src/config/config';
import { ConfigError } from '../../../src/errors';

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
      redisUrl: 'redis://127.0.0.1:6379',
      healthPort: 9464,
      training: true,
      queueType: 'quorum',
      contextWaitMs: 30000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });
  it('names the variable and what is allowed when a value is bad', () => {
    expect(() => loadConfig({ HEALTH_PORT: 'abc' })).toThrow(/HEALTH_PORT="abc": HEALTH_PORT must be an integer between 0 and 65535/);
    expect(() => loadConfig({ AMQP_URL: 'http://x' })).toThrow(/AMQP_URL must be a URL starting with amqp: or amqps:/);
    expect(() => loadConfig({ PIPELINE_TRAINING: 'maybe' })).toThrow(ConfigError);
  });
  it('stops on a misspelled PIPELINE_ setting', () => {
    expect(() => loadConfig({ PIPELINE_PREFECTH: '10' })).toThrow(/PIPELINE_PREFECTH: unknown setting/);
  });
  it('switches training off', () => {
    expect(loadConfig({ PIPELINE_TRAINING: 'off' }).training).toBe(false);
  });
});
