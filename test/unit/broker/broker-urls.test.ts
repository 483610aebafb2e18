import { brokerUrls, connectTarget, redact, RotatingTarget } from '../../../src/broker/broker-connection';
import { describeBrokerTarget } from '../../../src/broker/preflight';
import { loadConfig } from '../../../src/config/config';

describe('several broker addresses (AMQP_URL with commas)', () => {
  const list = 'amqp://u:secret@127.0.0.1:5681/vh,amqp://u:secret@127.0.0.1:5682/vh, amqp://u:secret@127.0.0.1:5683/vh';

  it('splits a list and keeps a single URL as it is', () => {
    expect(brokerUrls(list)).toEqual(['amqp://u:secret@127.0.0.1:5681/vh', 'amqp://u:secret@127.0.0.1:5682/vh', 'amqp://u:secret@127.0.0.1:5683/vh']);
    expect(brokerUrls('amqp://guest:guest@127.0.0.1:5672')).toEqual(['amqp://guest:guest@127.0.0.1:5672']);
    // A comma separates addresses only before amqp:// or amqps://; a password may hold one.
    expect(brokerUrls('amqp://u:a,b@h1/vh,amqps://u:a,b@h2/vh')).toEqual(['amqp://u:a,b@h1/vh', 'amqps://u:a,b@h2/vh']);
  });

  it('masks every password of a list and describes every node', () => {
    expect(redact(list)).not.toContain('secret');
    expect(redact(list).split(',')).toHaveLength(3);
    expect(describeBrokerTarget(list)).toBe('brokers 127.0.0.1:5681,127.0.0.1:5682,127.0.0.1:5683, vhost "vh", user u');
    expect(describeBrokerTarget('amqp://guest:guest@127.0.0.1:5672/%2F')).toBe('broker 127.0.0.1:5672, vhost "/", user guest');
  });

  it('turns a URL into the fields amqplib reads, vhost still escaped, credentials decoded', () => {
    expect(connectTarget('amqp://a%40b:p%3Aw@h:5700/x%2Fy?heartbeat=3', 10)).toEqual({
      protocol: 'amqp', hostname: 'h', port: 5700, username: 'a@b', password: 'p:w', vhost: 'x%2Fy', heartbeat: 3,
      frameMax: undefined, channelMax: undefined, locale: undefined,
    });
    expect(connectTarget('amqp://h', 10)).toMatchObject({ port: 5672, username: 'guest', password: 'guest', vhost: '/', heartbeat: 10 });
  });

  it('moves to the next node before every retry, quickly within a round and with backoff across rounds', () => {
    const r = new RotatingTarget(brokerUrls(list), 10, { initialDelay: 100, maxDelay: 5000, factor: 2, jitter: 0 });
    expect(r.target.port).toBe(5681);
    const seen: number[] = [];
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 7; attempt++) {
      delays.push(r.next(attempt));
      seen.push(r.target.port as number);
    }
    expect(seen).toEqual([5682, 5683, 5681, 5682, 5683, 5681, 5682]);
    expect(delays).toEqual([100, 100, 100, 200, 200, 200, 400]);
  });

  it('accepts a list in AMQP_URL with one vhost and rejects mixed vhosts or a bad address, naming the setting', () => {
    expect(loadConfig({ AMQP_URL: list }).amqpUrl).toBe(list);
    expect(() => loadConfig({ AMQP_URL: 'amqp://h1:5672/a,amqp://h2:5672/b' })).toThrow(/AMQP_URL.*different vhosts/);
    expect(() => loadConfig({ AMQP_URL: 'amqp://u:pw@h1:5672/a,amqp://u:pw@h2:99999/a' })).toThrow(/AMQP_URL.*several separated by commas/);
    expect(() => loadConfig({ AMQP_URL: 'amqp://u:pw@h1:5672/a,amqp://u:pw@h2:99999/a' })).not.toThrow(/pw/);
  });
});
