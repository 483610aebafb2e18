import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, hashApiKey } from '../../../src/config/config';
import { openApiDocument } from '../../../src/gateway/routes';
import { KeyStore, TicketStore, roleAtLeast } from '../../../src/gateway/auth';
import { capIssues, parseOr400, GatewayHttpError } from '../../../src/gateway/http-error';
import { AuditLog } from '../../../src/gateway/audit';
import { z } from 'zod';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { RecentResults, type StoredResult } from '../../../src/gateway/recent-results';
import { ResultsFeed } from '../../../src/gateway/results-feed';
import type { BrokerConnection } from '../../../src/broker/broker-connection';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { WsReceiverCtor } from '../../fixtures/gateway';
import { WS_CLOSE_TOO_SLOW, WsHub, type HubSocket } from '../../../src/gateway/ws-hub';
import { ResultWindow, parseScrape } from '../../../src/gateway/pipeline-stats';
import { rolesFor } from '../../../src/supervisor/ipc';
import { rootLogger } from '../../../src/observability/logger';

const log = rootLogger('silent');

function stored(symbol: string, ts: number, latency = 1): StoredResult {
  const result = { symbol, ts, latency_ms: latency, model_version: 'm1' } as unknown as StoredResult['result'];
  return { result, text: JSON.stringify({ symbol, ts }) };
}

class FakeSocket implements HubSocket {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  sent: string[] = [];
  binary: boolean[] = [];
  closed: { code?: number } | null = null;
  terminated = false;
  private closeListeners: (() => void)[] = [];
  send(data: string | Buffer, options?: { binary?: boolean }): void {
    this.sent.push(data.toString());
    this.binary.push(options?.binary ?? false);
  }
  close(code?: number): void {
    this.closed = { code };
    this.readyState = 2;
  }
  terminate(): void {
    this.terminated = true;
  }
  pings = 0;
  ping(): void {
    this.pings++;
  }
  readonly listeners = new Map<string, ((...args: never[]) => void)[]>();
  on(event: string, listener: (...args: never[]) => void): this {
    if (event === 'close') this.closeListeners.push(listener);
    else this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }
  emit(event: 'message' | 'pong'): void {
    for (const l of this.listeners.get(event) ?? []) (l)();
  }
  once(event: string, listener: () => void): this {
    return this.on(event, listener);
  }
  emitClose(): void {
    this.readyState = 3;
    for (const l of this.closeListeners) l();
  }
}

describe('gateway configuration', () => {
  const key = '0123456789abcdefghijklmn';
  const key2 = 'ZYXWVUTSRQPONMLKJIHGFEDCBA';
  it('keeps only hashes of GATEWAY_API_KEYS and their roles', () => {
    const config = loadConfig({ GATEWAY_API_KEYS: `viewer:${key},admin:${key2}` });
    expect(config.gateway.keys).toEqual([
      { role: 'viewer', hash: hashApiKey(key) },
      { role: 'admin', hash: hashApiKey(key2) },
    ]);
    expect(JSON.stringify(config)).not.toContain(key);
  });

  it('names the setting and never echoes a key in a configuration error', () => {
    const secret = 'short-secret';
    expect(() => loadConfig({ GATEWAY_API_KEYS: `viewer:${secret}` })).toThrow(/GATEWAY_API_KEYS: the key of entry 1 is too weak: a key must be 24 to 256/);
    // Long enough but too few distinct characters: refused too, named by position, never echoed.
    for (const weak of ['a'.repeat(40), 'abababababababababababababab', '123451234512345123451234512345']) {
      const text = ((): string => {
        try {
          loadConfig({ GATEWAY_API_KEYS: `viewer:${key},admin:${weak}` });
          return 'no error';
        } catch (err) {
          return (err as Error).message;
        }
      })();
      expect(text).toMatch(/the key of entry 2 is too weak.*at least 10 distinct characters/);
      expect(text).not.toContain(weak);
    }
    const message = ((): string => {
      try {
        loadConfig({ GATEWAY_API_KEYS: `boss:${key}` });
        return 'no error';
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(message).toMatch(/GATEWAY_API_KEYS: entry 1 must be role:key with role viewer, operator or admin/);
    expect(message).not.toContain(key);
    expect(() => loadConfig({ GATEWAY_TLS_CERT: '/nonexistent.pem' })).toThrow(/GATEWAY_TLS_CERT and GATEWAY_TLS_KEY must be set together/);
    expect(() => loadConfig({ GATEWAY_PORT: '70000' })).toThrow(/GATEWAY_PORT/);
    expect(() => loadConfig({ GATEWAY_PROT: '1' })).toThrow(/did you mean GATEWAY_PORT/);
  });

  it('reads keys from GATEWAY_API_KEYS_FILE, one role:key a line, and refuses both settings at once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gateway-keys-'));
    try {
      const file = join(dir, 'keys');
      writeFileSync(file, `# gateway keys\noperator:${key}\n\nadmin:${key2}\n`);
      expect(loadConfig({ GATEWAY_API_KEYS_FILE: file }).gateway.keys.map((k) => k.role)).toEqual(['operator', 'admin']);
      expect(() => loadConfig({ GATEWAY_API_KEYS_FILE: file, GATEWAY_API_KEYS: `viewer:${key}` })).toThrow(/set only one of them/);
      expect(() => loadConfig({ GATEWAY_API_KEYS_FILE: join(dir, 'missing') })).toThrow(/GATEWAY_API_KEYS_FILE=.*cannot read it \(ENOENT\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the roles of PIPELINE_ROLES, all by default', () => {
    expect(rolesFor(loadConfig({}))).toEqual(['strategic', 'tactical', 'gateway']);
    expect(rolesFor(loadConfig({ PIPELINE_TRAINING: 'on' }))).toEqual(['strategic', 'tactical', 'trainer', 'gateway']);
    expect(rolesFor(loadConfig({ PIPELINE_ROLES: 'gateway' }))).toEqual(['gateway']);
    expect(rolesFor(loadConfig({ PIPELINE_ROLES: 'tactical,strategic' }))).toEqual(['strategic', 'tactical']);
    expect(() => loadConfig({ PIPELINE_ROLES: 'tactical,web' })).toThrow(/PIPELINE_ROLES must be a comma-separated subset of strategic,tactical,trainer,gateway/);
  });
});

describe('KeyStore and roles', () => {
  it('resolves a known key to its id and role, and an unknown key to null', () => {
    const store = new KeyStore([{ role: 'operator', hash: hashApiKey('operator-key-0123456') }]);
    expect(store.resolve('operator-key-0123456')).toEqual({ keyId: hashApiKey('operator-key-0123456').slice(0, 12), role: 'operator' });
    expect(store.resolve('operator-key-0123457')).toBeNull();
    expect(roleAtLeast('admin', 'operator')).toBe(true);
    expect(roleAtLeast('viewer', 'operator')).toBe(false);
  });
});

describe('TicketStore', () => {
  const caller = { keyId: 'abc123abc123', role: 'viewer' as const };
  it('gives a ticket that opens once, within its lifetime, bound to its caller', () => {
    let now = 0;
    const tickets = new TicketStore(30, () => now);
    const t = tickets.issue(caller);
    expect(t.length).toBeGreaterThanOrEqual(32);
    expect(tickets.peek(t)).toEqual(caller);
    expect(tickets.take(t)).toEqual(caller);
    expect(tickets.take(t)).toBeNull();
    const late = tickets.issue(caller);
    now = 30_000;
    expect(tickets.peek(late)).toBeNull();
    expect(tickets.take(late)).toBeNull();
    expect(tickets.take('made-up')).toBeNull();
  });

  it('drops expired tickets when it issues new ones', () => {
    let now = 0;
    const tickets = new TicketStore(1, () => now);
    for (let i = 0; i < 100; i++) tickets.issue(caller);
    now = 2000;
    tickets.issue(caller);
    expect(tickets.size).toBe(1);
  });
});

describe('bounded 400s', () => {
  it('lists at most 20 issues, then truncated, and clips client-chosen field names', () => {
    expect(capIssues([1, 2, 3])).toEqual({ items: [1, 2, 3] });
    expect(capIssues(Array.from({ length: 50 }, (_, i) => i))).toEqual({ items: Array.from({ length: 20 }, (_, i) => i), truncated: true });
    const schema = z.object({ n: z.array(z.number()) }).strict();
    const err = ((): GatewayHttpError => {
      try {
        parseOr400(schema, { n: Array.from({ length: 1000 }, () => 'x'), ['k'.repeat(50_000)]: 1 }, 'body');
      } catch (e) {
        return e as GatewayHttpError;
      }
      throw new Error('no error');
    })();
    expect(err.status).toBe(400);
    expect((err.extra.issues as unknown[]).length).toBe(20);
    expect(err.extra.truncated).toBe(true);
    expect(JSON.stringify({ message: err.message, ...err.extra }).length).toBeLessThan(16_384);
  });
});

describe('AuditLog', () => {
  it('rotates by size, keeping the last files, and summarises denied calls per address', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gateway-audit-'));
    const path = join(dir, 'audit.jsonl');
    const audit = new AuditLog({ path, maxBytes: 1024, keepFiles: 2, log });
    try {
      audit.open();
      const line = { time: 't', ip: '10.0.0.1', request_id: 'r', key_id: null, role: null, method: 'POST', route: '/api/bars', outcome: 'started' };
      for (let i = 0; i < 40; i++) await audit.write({ ...line, request_id: `r${i}` });
      expect(existsSync(`${path}.1`)).toBe(true);
      expect(existsSync(`${path}.2`)).toBe(true);
      expect(existsSync(`${path}.3`)).toBe(false);
      for (const f of [path, `${path}.1`, `${path}.2`]) expect(statSync(f).size).toBeLessThanOrEqual(1024);
      expect(readFileSync(path, 'utf8')).toContain('"request_id":"r39"');
      for (let i = 0; i < 500; i++) audit.denied('10.0.0.9', i % 2 === 0 ? 401 : 429, `d${i}`);
      audit.denied('10.0.0.8', 403, 'e1');
      await audit.close();
      const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.outcome === 'denied');
      expect(lines.map((l) => [l.ip, l.count, l.statuses])).toEqual([
        ['10.0.0.9', 500, { 401: 250, 429: 250 }],
        ['10.0.0.8', 1, { 403: 1 }],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a write it could not make (the route then answers 503), and recovers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gateway-audit-'));
    const path = join(dir, 'audit.jsonl');
    const audit = new AuditLog({ path, maxBytes: 1 << 20, keepFiles: 2, log });
    try {
      audit.open();
      rmSync(path);
      const { symlinkSync } = await import('node:fs');
      symlinkSync('/dev/full', path);
      const line = { time: 't', ip: '1', request_id: 'r', key_id: null, role: null, method: 'POST', route: '/api/bars', outcome: 'started' };
      await expect(audit.write(line)).rejects.toThrow(/audit file not writable \(ENOSPC\)/);
      expect(audit.failures).toBe(1);
      rmSync(path);
      await audit.write(line);
      expect(readFileSync(path, 'utf8')).toContain('"outcome":"started"');
      await audit.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RecentResults', () => {
  it('keeps the latest N per symbol, oldest first, and drops results not after the last ts', () => {
    const recent = new RecentResults({ perSymbol: 3, maxSymbols: 10 });
    const seen: number[] = [];
    recent.subscribe((s) => seen.push(s.result.ts));
    for (const ts of [1, 2, 3, 4, 5]) expect(recent.add(stored('A', ts))).toBe(true);
    expect(recent.add(stored('A', 5))).toBe(false); // duplicate
    expect(recent.add(stored('A', 2))).toBe(false); // older
    expect(recent.latest('A', 10).map((s) => s.result.ts)).toEqual([3, 4, 5]);
    expect(recent.latest('A', 2).map((s) => s.result.ts)).toEqual([4, 5]);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(recent.dropped).toBe(2);
  });

  it('bounds the symbols, dropping the least recently updated', () => {
    const recent = new RecentResults({ perSymbol: 2, maxSymbols: 2 });
    recent.add(stored('A', 1));
    recent.add(stored('B', 1));
    recent.add(stored('A', 2));
    recent.add(stored('C', 1));
    expect(recent.symbolList()).toEqual(['A', 'C']);
    expect(recent.latest('B', 5)).toEqual([]);
  });
});

/** A `ws` socket as the hub sees it when no extension is negotiated: frames go to its stream. */
class FakeWsSocket extends FakeSocket {
  readonly extensions = '';
  readonly writes: Buffer[][] = [];
  private corked: Buffer[] | null = null;
  readonly _socket = {
    destroyed: false,
    cork: (): void => {
      this.corked = [];
    },
    uncork: (): void => {
      if (this.corked !== null) this.writes.push(this.corked);
      this.corked = null;
    },
    write: (chunk: Buffer): boolean => {
      if (this.corked !== null) this.corked.push(chunk);
      else this.writes.push([chunk]);
      return true;
    },
  };
  override send(): void {
    throw new Error('frames must go to the stream, not through send');
  }
  /** The text frames written, decoded by ws's own parser. */
  frames(): Promise<string[]> {
    const out: string[] = [];
    const receiver = new WsReceiverCtor({ isServer: false });
    receiver.on('message', (data, isBinary) => out.push(`${isBinary ? 'binary:' : ''}${data.toString('utf8')}`));
    return new Promise((resolve, reject) => {
      receiver.on('error', reject);
      receiver.end(Buffer.concat(this.writes.flat()), () => resolve(out));
    });
  }
}

describe('WsHub', () => {
  it('sends each result to the clients of its symbol, in order', () => {
    const hub = new WsHub({ maxBufferedBytes: 10_000, log });
    const a = new FakeSocket();
    const ab = new FakeSocket();
    hub.add(a, ['A']);
    hub.add(ab, ['A', 'B']);
    for (const [s, ts] of [['A', 1], ['B', 1], ['A', 2]] as const) hub.publish(stored(s, ts));
    expect(a.sent).toHaveLength(0); // queued until the flush
    hub.flush();
    const parsed = (t: string): { symbol: string; ts: number } => JSON.parse(t) as { symbol: string; ts: number };
    expect(a.sent.map((t) => parsed(t).ts)).toEqual([1, 2]);
    expect(a.binary).toEqual([false, false]); // text frames
    expect(ab.sent.map((t) => `${parsed(t).symbol}${parsed(t).ts}`)).toEqual(['A1', 'B1', 'A2']);
    ab.emitClose();
    hub.publish(stored('A', 3));
    hub.flush();
    expect(ab.sent).toHaveLength(3);
    expect(a.sent).toHaveLength(3);
    expect(hub.clientCount).toBe(1);
  });

  it('frames each result once and writes a client\'s queued frames to its stream in one corked write, readable by ws', async () => {
    const hub = new WsHub({ maxBufferedBytes: 1_000_000, log });
    const a = new FakeWsSocket();
    const b = new FakeWsSocket();
    hub.add(a, ['A']);
    hub.add(b, ['A', 'B']);
    const long = (n: number): StoredResult => ({ ...stored('B', n), text: JSON.stringify({ symbol: 'B', ts: n, pad: 'é'.repeat(n) }) });
    // Payloads of 7-bit, 16-bit and 64-bit lengths (the three header forms), multi-byte UTF-8.
    const published = [stored('A', 1), long(60), stored('A', 2), long(40_000), long(70_000)];
    for (const s of published) hub.publish(s);
    hub.flush();
    expect(a.writes).toHaveLength(1);
    expect(b.writes).toHaveLength(1);
    expect(b.writes[0]).toHaveLength(5);
    expect(a.writes[0]![0]).toBe(b.writes[0]![0]); // the same frame bytes for both clients
    expect(await a.frames()).toEqual([published[0]!.text, published[2]!.text]);
    expect(await b.frames()).toEqual(published.map((s) => s.text));
    expect(hub.sent).toBe(7);
    expect(hub.writes).toBe(2);
  });

  it('flushes in the turn a result arrives when idle, and at most once per flushIntervalMs under load', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    try {
      const hub = new WsHub({ maxBufferedBytes: 100_000, flushIntervalMs: 20, log });
      const a = new FakeWsSocket();
      hub.add(a, ['A']);
      hub.publish(stored('A', 1));
      jest.advanceTimersByTime(0); // the immediate
      expect(a.writes).toHaveLength(1);
      hub.publish(stored('A', 2));
      hub.publish(stored('A', 3));
      jest.advanceTimersByTime(19);
      expect(a.writes).toHaveLength(1); // within 20 ms of the last flush: held
      jest.advanceTimersByTime(1);
      expect(a.writes).toHaveLength(2);
      expect(a.writes[1]).toHaveLength(2); // both in one write
      jest.advanceTimersByTime(100);
      hub.publish(stored('A', 4));
      jest.advanceTimersByTime(0);
      expect(a.writes).toHaveLength(3); // idle again: at once
      expect(() => new WsHub({ maxBufferedBytes: 1, flushIntervalMs: -1, log })).toThrow(RangeError);
    } finally {
      jest.useRealTimers();
    }
  });

  it('closes a client whose unsent bytes pass the bound with 1013, without waiting and without affecting others', () => {
    jest.useFakeTimers();
    try {
      const hub = new WsHub({ maxBufferedBytes: 100, terminateAfterMs: 1000, log });
      const slow = new FakeSocket();
      const fast = new FakeSocket();
      hub.add(slow, ['A']);
      hub.add(fast, ['A']);
      slow.bufferedAmount = 90; // its earlier frames are still queued
      hub.publish(stored('A', 1));
      expect(slow.closed).toEqual({ code: WS_CLOSE_TOO_SLOW });
      hub.flush();
      expect(slow.sent).toHaveLength(0);
      expect(fast.sent).toHaveLength(1);
      hub.publish(stored('A', 2));
      hub.flush();
      expect(fast.sent).toHaveLength(2);
      expect(hub.closedSlow).toBe(1);
      jest.advanceTimersByTime(1000);
      expect(slow.terminated).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });

  it('counts frames waiting for the flush against the bound', () => {
    const hub = new WsHub({ maxBufferedBytes: 100, log });
    const a = new FakeWsSocket();
    hub.add(a, ['A']);
    // Each frame is 2 + 20 bytes; the fifth would make 110 unsent bytes.
    for (let ts = 1; ts <= 5; ts++) hub.publish({ ...stored('A', ts), text: `{"symbol":"A","ts":${ts}}`.padEnd(20) });
    expect(a.closed).toEqual({ code: WS_CLOSE_TOO_SLOW });
    hub.flush();
    expect(a.writes).toHaveLength(0); // its queued frames are dropped with it
  });
});

describe('WsHub caps, pings and push-only sockets', () => {
  it('reserves at most maxPerKey sockets per key and maxTotal in all, and gives slots back on close', () => {
    const hub = new WsHub({ maxBufferedBytes: 10_000, maxPerKey: 2, maxTotal: 3, log });
    expect([hub.reserve('k1'), hub.reserve('k1'), hub.reserve('k1')]).toEqual([true, true, false]);
    expect([hub.reserve('k2'), hub.reserve('k3')]).toEqual([true, false]);
    const s = new FakeSocket();
    hub.add(s, ['A'], false, 'k1');
    s.emitClose();
    expect(hub.reserve('k3')).toBe(true);
    expect(hub.refused).toBe(2);
  });

  it('closes a socket that sends a data frame with 1008, and terminates one that missed a ping', () => {
    jest.useFakeTimers();
    try {
      const hub = new WsHub({ maxBufferedBytes: 10_000, pingMs: 1000, log });
      const talker = new FakeSocket();
      const quiet = new FakeSocket();
      const alive = new FakeSocket();
      for (const [i, s] of [talker, quiet, alive].entries()) {
        expect(hub.reserve(`k${i}`)).toBe(true);
        hub.add(s, ['A'], false, `k${i}`);
      }
      hub.start();
      talker.emit('message');
      expect(talker.closed?.code).toBe(1008);
      jest.advanceTimersByTime(1000);
      expect([quiet.pings, alive.pings]).toEqual([1, 1]);
      alive.emit('pong');
      jest.advanceTimersByTime(1000);
      expect(quiet.terminated).toBe(true);
      expect(alive.terminated).toBe(false);
      expect(alive.pings).toBe(2);
      expect([hub.closedPolicy, hub.closedDead]).toEqual([1, 1]);
      hub.closeAll();
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('ResultsFeed', () => {
  /** A channel that records prefetch and acks, and hands its consumer over. */
  class FeedChannel {
    prefetchCount = 0;
    noAck: boolean | undefined = undefined;
    acks: { tag: number; allUpTo: boolean }[] = [];
    consumer: ((msg: ConsumeMessage | null) => void) | null = null;
    on(): this {
      return this;
    }
    prefetch(n: number): Promise<void> {
      this.prefetchCount = n;
      return Promise.resolve();
    }
    assertQueue(): Promise<{ queue: string }> {
      return Promise.resolve({ queue: 'amq.gen-test' });
    }
    bindQueue(): Promise<void> {
      return Promise.resolve();
    }
    consume(_q: string, fn: (msg: ConsumeMessage | null) => void, options?: { noAck?: boolean }): Promise<void> {
      this.consumer = fn;
      this.noAck = options?.noAck;
      return Promise.resolve();
    }
    ack(msg: ConsumeMessage, allUpTo?: boolean): void {
      this.acks.push({ tag: msg.fields.deliveryTag, allUpTo: allUpTo === true });
    }
  }
  const body = (symbol: string, ts: number): Buffer =>
    Buffer.from(JSON.stringify({
      v: 1, symbol, ts, close_ts: ts + 300_000, close: 100,
      indicators: { sma20: null, ema12: null, ema26: null, rsi14: null, macd: null, macd_signal: null, macd_hist: null, bb_upper: null, bb_middle: null, bb_lower: null, atr14: null },
      strategic: { bar_close_ts: null, regime: null, regime_probabilities: null, confidence: null, uncertainty: null, similar_patterns: null, stale: false },
      actions: { tactical: 'FLAT', risk: 0, execution: 'WAIT' }, target_position: 0, combined_confidence: 0, model_version: null, degraded: [], latency_ms: 1,
    }));

  it('acknowledges in batches under a bounded prefetch, invalid bodies too, and the rest within ackAfterMs', async () => {
    jest.useFakeTimers();
    try {
      const results = new RecentResults({ perSymbol: 10, maxSymbols: 10 });
      const connection = { attach: () => undefined } as unknown as BrokerConnection;
      const feed = new ResultsFeed(connection, results, { prefetchCount: 100, ackEvery: 40, ackAfterMs: 20, log });
      const channel = new FeedChannel();
      await feed.attach({ createChannel: () => Promise.resolve(channel) } as unknown as ChannelModel);
      expect(channel.prefetchCount).toBe(100);
      expect(channel.noAck).not.toBe(true);
      const deliver = (tag: number, content: Buffer): void => channel.consumer!({ content, fields: { deliveryTag: tag }, properties: {} } as unknown as ConsumeMessage);
      for (let tag = 1; tag <= 90; tag++) deliver(tag, tag === 5 ? Buffer.from('not json') : body('A', tag * 300_000));
      expect(channel.acks).toEqual([{ tag: 40, allUpTo: true }, { tag: 80, allUpTo: true }]);
      jest.advanceTimersByTime(19);
      expect(channel.acks).toHaveLength(2);
      jest.advanceTimersByTime(1);
      expect(channel.acks[2]).toEqual({ tag: 90, allUpTo: true });
      expect(feed.received).toBe(89);
      expect(feed.invalid).toBe(1);
      expect(results.latest('A', 10).map((r) => r.result.ts / 300_000)).toEqual([81, 82, 83, 84, 85, 86, 87, 88, 89, 90]);
      jest.advanceTimersByTime(1000);
      expect(channel.acks).toHaveLength(3); // nothing pending, no timer left acking
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('pipeline figures', () => {
  it('measures results per second and latency quantiles over the window', () => {
    let now = 1_000_000;
    const w = new ResultWindow(() => now);
    now += 1000;
    for (let i = 0; i < 100; i++) w.add(stored('A', i, i < 98 ? 2 : 50));
    now += 1000;
    const f = w.figures();
    expect(f.count).toBe(100);
    expect(f.perSecond).toBe(50);
    expect(f.p50!).toBeGreaterThan(1.9);
    expect(f.p50!).toBeLessThan(2.1);
    expect(f.p99!).toBeGreaterThan(47);
    expect(f.p99!).toBeLessThan(53);
    now += 120_000;
    expect(w.figures().count).toBe(0);
  });

  it('reads handled counts, handling-time buckets and breaker states from Prometheus text', () => {
    const text = [
      '# HELP x',
      'pipeline_messages_handled_total{queue="strategic_processing.0",outcome="ok",worker="strategic"} 12',
      'pipeline_messages_handled_total{queue="strategic_processing.0",outcome="duplicate",worker="strategic"} 3',
      'pipeline_message_handle_seconds_bucket{le="0.005",queue="strategic_processing.0",worker="strategic"} 10',
      'pipeline_message_handle_seconds_bucket{le="+Inf",queue="strategic_processing.0",worker="strategic"} 12',
      'pipeline_breaker_state{stage="redis",worker="tactical"} 2',
    ].join('\n');
    const s = parseScrape(text, 5);
    expect(s.handled).toEqual({ strategic: 12 });
    expect(s.buckets.strategic!.get(0.005)).toBe(10);
    expect(s.buckets.strategic!.get(Infinity)).toBe(12);
    expect(s.breakers).toEqual({ 'tactical/redis': 2 });
  });
});

describe('OpenAPI document', () => {
  it('lists every route with its role, and its request schemas from the zod schemas', () => {
    const doc = openApiDocument() as { paths: Record<string, Record<string, { 'x-required-role'?: string; security: unknown[] }>>; components: { schemas: Record<string, { properties?: Record<string, { minItems?: number }> }> } };
    expect(doc.paths['/api/health']!.get!.security).toEqual([]);
    expect(doc.paths['/api/bars']!.post!['x-required-role']).toBe('operator');
    expect(doc.paths['/api/models/promote']!.post!['x-required-role']).toBe('admin');
    expect(doc.components.schemas.StrategicProcessRequest!.properties!.bars!.minItems).toBe(49);
    expect(JSON.stringify(doc)).not.toContain('#/$defs/');
  });
});
