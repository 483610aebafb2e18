/**
 * The start-up checks' error lines, without a network: amqplib is replaced by a fake so that a broker
 * without the consistent-hash plugin can be played (the test broker has it enabled).
 */
import * as amqp from 'amqplib';
import { isFatalBrokerError } from '../../../src/broker/broker-connection';
import { brokerPreflight, brokerTarget, classifyBrokerError, describeFatalBrokerError } from '../../../src/broker/preflight';
import { loadConfig } from '../../../src/config/config';
import { StartupError } from '../../../src/errors';
import { classifyRedisError, redisPreflight } from '../../../src/state/redis-preflight';
import { needsConsistentHash } from '../../../src/supervisor/startup';

jest.mock('amqplib', () => ({ connect: jest.fn() }));

const connect = amqp.connect as unknown as jest.Mock;

/** A fake connection whose channel's assertExchange does what `assertExchange` says. */
function fakeBroker(assertExchange: () => Promise<unknown>): {
  deleteExchange: jest.Mock<Promise<unknown>, [exchange: string]>;
  assertExchange: jest.Mock<Promise<unknown>, [exchange: string, type: string]>;
  close: jest.Mock<Promise<void>, []>;
} {
  const channel = {
    on: jest.fn(),
    assertExchange: jest.fn<Promise<unknown>, [exchange: string, type: string]>(assertExchange),
    deleteExchange: jest.fn<Promise<unknown>, [exchange: string]>(() => Promise.resolve({})),
  };
  const model = { on: jest.fn(), createChannel: jest.fn(() => Promise.resolve(channel)), close: jest.fn(() => Promise.resolve()) };
  connect.mockResolvedValue(model);
  return { deleteExchange: channel.deleteExchange, assertExchange: channel.assertExchange, close: model.close };
}

const url = 'amqp://guest:secret@broker.example:5672/prod';
const target = brokerTarget(url);

afterEach(() => connect.mockReset());

describe('broker pre-flight', () => {
  it('names PIPELINE_SHARDS and the plugin when the broker lacks x-consistent-hash', async () => {
    const fake = fakeBroker(() => Promise.reject(Object.assign(new Error("COMMAND_INVALID - unknown exchange type 'x-consistent-hash'"), { code: 503 })));
    const err = (await brokerPreflight({ url, needsConsistentHash: true }).catch((e: unknown) => e)) as StartupError;
    expect(err).toBeInstanceOf(StartupError);
    expect(err.setting).toBe('PIPELINE_SHARDS');
    expect(err.message).toMatch(/^PIPELINE_SHARDS: .*rabbitmq-plugins enable rabbitmq_consistent_hash_exchange.*PIPELINE_SHARDS=1$/);
    expect(fake.assertExchange.mock.calls[0]?.[1]).toBe('x-consistent-hash');
    expect(fake.close).toHaveBeenCalled();
  });

  it('declares and deletes a throwaway exchange when the plugin is there, and nothing when not needed', async () => {
    const fake = fakeBroker(() => Promise.resolve({}));
    await brokerPreflight({ url, needsConsistentHash: true });
    expect(fake.deleteExchange).toHaveBeenCalledWith(fake.assertExchange.mock.calls[0]?.[0]);
    fake.assertExchange.mockClear();
    await brokerPreflight({ url, needsConsistentHash: false });
    expect(fake.assertExchange).not.toHaveBeenCalled();
  });

  it('classifies amqplib errors into one line naming AMQP_URL, without the password', () => {
    const cases: [unknown, RegExp][] = [
      [new Error('Expected ConnectionOpenOk; got <ConnectionClose channel:0>'), /refused vhost "prod" for user guest.*rabbitmqctl add_vhost prod/],
      [new Error('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"'), /refused the login of user guest/],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), /nothing accepts connections at broker broker.example:5672/],
      [Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), /host broker.example not found/],
    ];
    for (const [error, expected] of cases) {
      const line = classifyBrokerError(error, target, url).message;
      expect(line).toMatch(/^AMQP_URL: /);
      expect(line).toMatch(expected);
      expect(line).not.toContain('secret');
      expect(line).not.toContain('\n');
    }
  });

  it('rejects a URL that is not amqp: or amqps: before connecting', async () => {
    await expect(brokerPreflight({ url: 'http://broker:5672' })).rejects.toThrow(/^AMQP_URL: .* is not a valid broker URL/);
    expect(connect).not.toHaveBeenCalled();
  });
});

describe('Redis pre-flight', () => {
  it('classifies ioredis errors into one line naming REDIS_URL', () => {
    const t = 'redis cache:6379, db 0';
    expect(classifyRedisError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), t).message).toMatch(/^REDIS_URL: nothing accepts connections at redis cache:6379/);
    expect(classifyRedisError(new Error('WRONGPASS invalid username-password pair'), t).message).toMatch(/^REDIS_URL: .*refused the credentials/);
    expect(classifyRedisError(new Error('ERR DB index is out of range'), t).message).toMatch(/^REDIS_URL: .*database number is out of range/);
  });

  it('rejects a database that is not a number', async () => {
    await expect(redisPreflight({ url: 'redis://127.0.0.1:6379/first' })).rejects.toThrow(/^REDIS_URL: not a valid Redis URL/);
  });
});

describe('needsConsistentHash', () => {
  it('is false for the configuration without shards, true for more than one shard', () => {
    const config = loadConfig({});
    expect(needsConsistentHash(config)).toBe(false);
    expect(needsConsistentHash({ ...config, shards: 1 })).toBe(false);
    expect(needsConsistentHash({ ...config, shards: 4 })).toBe(true);
  });
});

describe('broker errors met after the start', () => {
  const brokerError = (code: number, message: string): Error => Object.assign(new Error(message), { code });

  it('treats the reply codes no restart fixes as fatal, and nothing else', () => {
    for (const code of [403, 404, 406, 503, 530]) expect(isFatalBrokerError(brokerError(code, 'x'))).toBe(true);
    expect(isFatalBrokerError(brokerError(320, 'CONNECTION_FORCED'))).toBe(false);
    expect(isFatalBrokerError(new Error('reconnect attempts exhausted'))).toBe(false);
  });

  it('names PIPELINE_SHARDS and the plugin for an unknown exchange type (503)', () => {
    const line = describeFatalBrokerError(
      brokerError(503, "Channel closed by server: 503 (COMMAND-INVALID) with message \"COMMAND_INVALID - unknown exchange type 'x-consistent-hash'\""),
    );
    expect(line).toMatch(/^PIPELINE_SHARDS: .*rabbitmq-plugins enable rabbitmq_consistent_hash_exchange/);
  });

  it('names PIPELINE_QUEUE_TYPE for a queue declared with other arguments (406)', () => {
    expect(describeFatalBrokerError(brokerError(406, 'PRECONDITION_FAILED - inequivalent arg'))).toMatch(/^PIPELINE_QUEUE_TYPE: /);
  });
});
