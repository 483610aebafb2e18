import { loadConfig } from '../../../src/config/config';
import { ConfigError } from '../../../src/errors';

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
      redisUrl: 'redis://127.0.0.1:6379',
      healthPort: 9464,
      training: false,
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
  it('stops on a misspelled PIPELINE_ setting and names the one meant', () => {
    expect(() => loadConfig({ PIPELINE_PREFECTH: '10' })).toThrow(/PIPELINE_PREFECTH is not a setting; did you mean PIPELINE_PREFETCH\?/);
    expect(() => loadConfig({ PIPELINE_NO_SUCH_THING: '1' })).toThrow(/PIPELINE_NO_SUCH_THING is not a setting \(known: PIPELINE_TRAINING, /);
  });
  it('stops on a misspelt AMQP or Redis variable, naming the setting meant', () => {
    expect(() => loadConfig({ AMPQ_URL: 'amqp://x' })).toThrow(/AMPQ_URL is not a setting; did you mean AMQP_URL\?/);
    expect(() => loadConfig({ amqp_url: 'amqp://x' })).toThrow(/did you mean AMQP_URL\?/);
    expect(() => loadConfig({ REDSI_URL: 'redis://x' })).toThrow(/did you mean REDIS_URL\?/);
    expect(() => loadConfig({ REDIS_URI: 'redis://x' })).toThrow(/did you mean REDIS_URL\?/);
  });
  it('leaves unrelated environment alone, including other programs\' AMQP and Redis variables', () => {
    const unrelated = {
      PATH: '/usr/bin',
      HOME: '/root',
      REDIS_HOST: 'cache',
      REDIS_PORT: 'tcp://10.0.0.2:6379',
      REDIS_PASSWORD: 'x',
      REDIS_PORT_6379_TCP: 'tcp://10.0.0.2:6379',
      REDISCLI_AUTH: 'x',
      AMQP_HEARTBEAT: '10',
      AMQP_PORT: '5672',
      RABBITMQ_URL: 'amqp://x',
      LOGLEVEL: 'debug',
      npm_config_cache: '/tmp',
    };
    expect(() => loadConfig(unrelated)).not.toThrow();
  });
  it('reports every problem on one line', () => {
    let message = '';
    try {
      loadConfig({ HEALTH_PORT: 'abc', AMPQ_URL: 'amqp://x' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^configuration error: /);
    expect(message).not.toContain('\n');
    expect(message).toContain('AMPQ_URL');
    expect(message).toContain('HEALTH_PORT');
  });
  it('decides live only with the WebAssembly network: PIPELINE_INFERENCE=onnx stops with the fix', () => {
    expect(loadConfig({}).inference).toBe('wasm');
    expect(loadConfig({ PIPELINE_INFERENCE: 'wasm' }).inference).toBe('wasm');
    expect(() => loadConfig({ PIPELINE_INFERENCE: 'onnx' })).toThrow(
      /PIPELINE_INFERENCE="onnx": PIPELINE_INFERENCE accepts only wasm: live ONNX inference was removed.*unset PIPELINE_INFERENCE or set it to wasm/,
    );
  });
  it('switches training off', () => {
    expect(loadConfig({ PIPELINE_TRAINING: 'off' }).training).toBe(false);
  });
  it('leaves training off unless PIPELINE_TRAINING turns it on', () => {
    expect(loadConfig({}).training).toBe(false);
    expect(loadConfig({ PIPELINE_TRAINING: 'on' }).training).toBe(true);
  });
});
