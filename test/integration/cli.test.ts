/**
 * The producer and the CLI against a real RabbitMQ, in a vhost of this file's own (made and deleted
 * with rabbitmqctl), so nothing here touches another test's or a running pipeline's queues.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import pino from 'pino';
import { barId, type Bar } from '../../schemas/bar.schema';
import {
  declareTopology,
  EXCHANGE_BARS,
  EXCHANGE_DLX,
  EXCHANGE_RESULTS,
  QUEUE_DEAD_LETTERS,
  QUEUE_RESULTS,
  routingKeys,
} from '../../src/broker/topology';
import { deadLetterInfo } from '../../src/cli/dlq-command';
import { runCli } from '../../src/cli/main';
import { createVhost, type TemporaryVhost } from '../../src/cli/vhost';
import { BarProducer, HEADER_PUBLISHED_AT } from '../../src/producers/bar-producer';
import { interleaveByTs } from '../../src/producers/csv-bars';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';

jest.setTimeout(30_000);

const execFileAsync = promisify(execFile);

const log = pino({ level: 'silent' });
let vhost: TemporaryVhost;
let model: ChannelModel;
let channel: Channel;
const started: { stop(): Promise<unknown> }[] = [];

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A queue of this test's own bound to `exchange`, collecting what arrives. */
async function tap(exchange: string, pattern: string): Promise<ConsumeMessage[]> {
  const { queue } = await channel.assertQueue(`tap-${randomUUID()}`, { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, exchange, pattern);
  const got: ConsumeMessage[] = [];
  await channel.consume(queue, (msg) => msg !== null && got.push(msg), { noAck: true });
  return got;
}

function producer(overrides: Partial<ConstructorParameters<typeof BarProducer>[0]> = {}): BarProducer {
  const p = new BarProducer({ url: vhost.url, queueType: 'quorum', maxAttempts: 10, log, ...overrides });
  started.push(p);
  return p;
}

function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const code = await runCli(args, { env: { AMQP_URL: vhost.url }, out: out.stream, err: err.stream });
  return { code, out: out.text(), err: err.text() };
}

async function queueDepth(queue: string): Promise<number> {
  // basic.get counts exactly (management stats of quorum queues lag): take every message, then
  // return them all by closing the channel.
  const ch = await model.createChannel();
  let n = 0;
  while ((await ch.get(queue, { noAck: false })) !== false) n++;
  await ch.close();
  return n;
}

beforeAll(async () => {
  vhost = await createVhost({ baseUrl: 'amqp://guest:guest@127.0.0.1:5672', vhost: `test-cli-${randomUUID()}` });
  model = await amqp.connect(vhost.url);
  model.on('error', () => undefined); // the connection-drop test closes it on purpose
  channel = await model.createChannel();
  await declareTopology(channel, { queueType: 'quorum', maxAttempts: 10 });
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((c) => c.stop()));
});

afterAll(async () => {
  await model?.close().catch(() => undefined);
  await vhost?.remove();
});

describe('BarProducer', () => {
  it('publishes interleaved bars with confirms, in order, with messageId and x-published-at', async () => {
    const got = await tap(EXCHANGE_BARS, routingKeys.bar('5m', '#'));
    const markets = ['AAA', 'BBB'].map((symbol, i) => generateSyntheticMarket({ seed: 7 + i, symbol, bars: 400 }).bars);
    const sent: Bar[] = [];
    const p = producer({ maxUnconfirmed: 50 });
    await p.start();
    const before = Date.now();
    let progress = 0;
    const result = await p.publish(interleaveByTs(markets), {
      onProgress: (n) => (progress = n),
      onSent: (bar) => sent.push(bar),
    });
    expect(result).toMatchObject({ published: 800, confirmed: 800, aborted: false });
    expect(progress).toBe(800);
    expect(p.pendingConfirms).toBe(0);
    await waitFor(() => got.length === 800, 10_000);
    expect(got.map((m) => m.properties.messageId as string)).toEqual(sent.map((b) => barId(b)));
    expect(sent.map((b) => b.ts)).toEqual([...sent.map((b) => b.ts)].sort((a, b) => a - b));
    const first = got[0] as ConsumeMessage;
    expect(first.fields.routingKey).toBe(routingKeys.bar('5m', 'AAA'));
    expect(first.properties.deliveryMode).toBe(2);
    expect(first.properties.contentType).toBe('application/json');
    expect(JSON.parse(first.content.toString())).toEqual(sent[0]);
    const publishedAt = first.properties.headers?.[HEADER_PUBLISHED_AT] as number;
    expect(publishedAt).toBeGreaterThanOrEqual(before);
    expect(publishedAt).toBeLessThanOrEqual(Date.now());
  });

  it('paces by absolute time at the requested rate', async () => {
    const { bars } = generateSyntheticMarket({ seed: 3, symbol: 'PACE', bars: 50 });
    const p = producer();
    await p.start();
    const result = await p.publish(bars, { ratePerSecond: 250 });
    // 50 bars at 250/s: the last one is due 196 ms after the first.
    expect(result.durationMs).toBeGreaterThanOrEqual(190);
    expect(result.durationMs).toBeLessThan(1500);
  });

  it('rejects an invalid bar without publishing it, after confirming the bars before it', async () => {
    const { bars } = generateSyntheticMarket({ seed: 4, symbol: 'BAD', bars: 3 });
    const broken = { ...(bars[2] as Bar), high: 0.0001 };
    const got = await tap(EXCHANGE_BARS, routingKeys.bar('5m', 'BAD'));
    const p = producer();
    await p.start();
    await expect(p.publish([bars[0] as Bar, bars[1] as Bar, broken])).rejects.toThrow(/bar BAD:5m:\d+ is invalid: high/);
    expect(p.pendingConfirms).toBe(0);
    await waitFor(() => got.length === 2, 5000);
  });

  it('survives the broker dropping the connection: every bar arrives, first arrivals in publish order', async () => {
    // A durable queue of our own survives the forced close of every connection of the vhost.
    const tapQueue = `tap-durable-${randomUUID()}`;
    await channel.assertQueue(tapQueue, { durable: true });
    await channel.bindQueue(tapQueue, EXCHANGE_BARS, routingKeys.bar('5m', 'DROP'));
    const { bars } = generateSyntheticMarket({ seed: 9, symbol: 'DROP', bars: 3000 });
    const p = producer({ maxUnconfirmed: 200, confirmTimeoutMs: 20_000 });
    await p.start();
    let confirmedSoFar = 0;
    const run = p.publish(bars, { ratePerSecond: 1000, onProgress: (n) => (confirmedSoFar = n) });
    await waitFor(() => confirmedSoFar > 300, 10_000);
    await execFileAsync('rabbitmqctl', ['close_all_connections', '-p', vhost.vhost, 'test: simulated broker restart']);
    const result = await run;
    expect(result.confirmed).toBe(3000);

    model = await amqp.connect(vhost.url);
    model.on('error', () => undefined);
    channel = await model.createChannel();
    const ids: string[] = [];
    let msg;
    while ((msg = await channel.get(tapQueue, { noAck: true })) !== false) ids.push(String(msg.properties.messageId));
    await channel.deleteQueue(tapQueue);
    // At least once: every bar arrived; first arrivals are in publish order (repeats come later).
    const firsts = [...new Set(ids)];
    expect(firsts).toEqual(bars.map((b) => barId(b)));
    expect(ids.length - firsts.length).toBeLessThanOrEqual(result.resent);
  });

  it('stop() is idempotent', async () => {
    const p = producer();
    await p.start();
    const first = p.stop();
    expect(p.stop()).toBe(first);
    await first;
  });
});

describe('pipeline CLI', () => {
  it('publish --synthetic interleaves the symbols and prints a confirmed summary', async () => {
    const got = await tap(EXCHANGE_BARS, routingKeys.bar('5m', '#'));
    const { code, out } = await cli(['publish', '--synthetic', '--symbols', 'SX,SY', '--count', '30', '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ published: 60, confirmed: 60, symbols: { SX: 30, SY: 30 } });
    await waitFor(() => got.length === 60, 5000);
    expect(got.slice(0, 4).map((m) => m.fields.routingKey)).toEqual([
      routingKeys.bar('5m', 'SX'),
      routingKeys.bar('5m', 'SY'),
      routingKeys.bar('5m', 'SX'),
      routingKeys.bar('5m', 'SY'),
    ]);
  });

  it('publish declares the pipeline\'s shards: with PIPELINE_SHARDS=2 bars go through the ring, never straight to shard 0', async () => {
    const sharded = await createVhost({ baseUrl: 'amqp://guest:guest@127.0.0.1:5672', vhost: `test-cli-shards-${randomUUID()}` });
    try {
      const out = capture();
      const err = capture();
      const env = { AMQP_URL: sharded.url, PIPELINE_SHARDS: '2', PIPELINE_REDIS_PREFIX: `test-cli-shards-${randomUUID()}:` };
      const code = await runCli(['publish', '--synthetic', '--symbols', 'SX,SY', '--count', '3'], { env, out: out.stream, err: err.stream });
      expect({ code, err: err.text() }).toMatchObject({ code: 0 });
      const { stdout } = await execFileAsync('rabbitmqctl', ['list_bindings', '-q', '--no-table-headers', '-p', sharded.vhost, 'source_name', 'destination_name']);
      const fromBars = stdout
        .split('\n')
        .map((line) => line.split('\t'))
        .filter(([source]) => source === EXCHANGE_BARS)
        .map(([, destination]) => destination);
      expect(fromBars).toContain('pipeline.tactical.ring');
      expect(fromBars).not.toContain('tactical_processing.0');
    } finally {
      await sharded.remove();
    }
  });

  it('publish --csv refuses a file whose name is not a symbol, naming it and both fixes, and publishes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-csv-'));
    try {
      const file = join(dir, 'tail_BTCUSDT.csv');
      await writeFile(file, 'timestamp,open,high,low,close,volume\n2025-04-03 17:05:00+00:00,1,2,0.5,1.5,10\n');
      const got = await tap(EXCHANGE_BARS, routingKeys.bar('5m', '#'));
      const refused = await cli(['publish', '--csv', file, '--json']);
      expect(refused.code).toBe(64);
      expect(refused.err).toContain(`${file}: cannot tell the symbol of its bars`);
      expect(refused.err).toContain('Pass --symbol <SYMBOL>, or add a "symbol" column');
      expect(refused.out).toBe('');
      const { code, out } = await cli(['publish', '--csv', file, '--symbol', 'BTCUSDT', '--json']);
      expect(code).toBe(0);
      expect(JSON.parse(out)).toMatchObject({ published: 1, confirmed: 1, symbols: { BTCUSDT: 1 } });
      await waitFor(() => got.length === 1, 5000);
      expect(got.map((m) => m.fields.routingKey)).toEqual([routingKeys.bar('5m', 'BTCUSDT')]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('results --count prints that many results in queue order and acknowledges them', async () => {
    const body = (ts: number): Buffer =>
      Buffer.from(
        JSON.stringify({
          v: 1,
          symbol: 'RES',
          ts,
          close_ts: ts + 300_000,
          close: 10,
          indicators: Object.fromEntries(
            ['sma20', 'ema12', 'ema26', 'rsi14', 'macd', 'macd_signal', 'macd_hist', 'bb_upper', 'bb_middle', 'bb_lower', 'atr14'].map((k) => [k, null]),
          ),
          strategic: { bar_close_ts: null, regime: null, regime_probabilities: null, confidence: null, uncertainty: null, similar_patterns: null, stale: false },
          actions: { tactical: 'FLAT', risk: 0, execution: 'WAIT' },
          target_position: 0,
          combined_confidence: 0,
          model_version: null,
          degraded: [],
          latency_ms: 1,
        }),
      );
    const confirm = await model.createConfirmChannel();
    for (let i = 0; i < 3; i++) {
      confirm.publish(EXCHANGE_RESULTS, routingKeys.result('RES'), body(i * 300_000), { messageId: `RES:5m:${i * 300_000}` });
    }
    await confirm.waitForConfirms();
    await confirm.close();
    const json = await cli(['results', '--count', '2', '--timeout-ms', '5000']);
    expect(json.code).toBe(0);
    expect(json.out.trim().split('\n').map((l) => (JSON.parse(l) as { ts: number }).ts)).toEqual([0, 300_000]);
    const table = await cli(['results', '--format', 'table', '--count', '1', '--timeout-ms', '5000']);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^symbol\s+ts\s+close\s+regime/);
    expect(table.out).toMatch(/RES\s+1970-01-01T00:10:00.000Z\s+10\s+-\s+-\s+FLAT/);
    expect(await queueDepth(QUEUE_RESULTS)).toBe(0);
  });

  it('dlq list shows dead letters without removing them, replay republishes to the origin, purge empties', async () => {
    const origin = await tap(EXCHANGE_BARS, routingKeys.bar('5m', 'DLQ.#'));
    const bar = generateSyntheticMarket({ seed: 5, symbol: 'DLQ.A', bars: 1 }).bars[0] as Bar;
    const confirm = await model.createConfirmChannel();
    confirm.publish(EXCHANGE_DLX, '', Buffer.from(JSON.stringify(bar)), {
      messageId: barId(bar),
      persistent: true,
      headers: {
        'x-rejection-reason': 'bar is out of order: older than the last accepted bar',
        'x-rejected-by': 'tactical',
        'x-original-exchange': EXCHANGE_BARS,
        'x-original-routing-key': routingKeys.bar('5m', 'DLQ.A'),
        'x-original-queue': 'tactical_processing',
        [HEADER_PUBLISHED_AT]: 1,
      },
    });
    confirm.publish(EXCHANGE_DLX, '', Buffer.from('{"broken":'), {
      messageId: 'broker-dead-lettered',
      headers: {
        'x-death': [
          { reason: 'delivery_limit', queue: 'resampler_processing', exchange: EXCHANGE_BARS, 'routing-keys': [routingKeys.bar('5m', 'DLQ.B')], count: 1 },
        ],
      },
    });
    confirm.publish(EXCHANGE_DLX, '', Buffer.from('x'), { messageId: 'no-origin', headers: { 'x-rejection-reason': 'who knows' } });
    await confirm.waitForConfirms();
    await confirm.close();

    const list = await cli(['dlq', 'list', '--json']);
    expect(list.code).toBe(0);
    const listed = list.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(listed.map((l) => [l.messageId, l.stage, l.exchange, l.routingKey])).toEqual([
      [barId(bar), 'tactical', EXCHANGE_BARS, routingKeys.bar('5m', 'DLQ.A')],
      ['broker-dead-lettered', 'broker', EXCHANGE_BARS, routingKeys.bar('5m', 'DLQ.B')],
      ['no-origin', 'unknown', null, null],
    ]);
    expect(listed[1]?.reason).toBe('broker dead-lettered: delivery_limit');
    const text = await cli(['dlq', 'list', '--count', '1']);
    expect(text.out).toContain('reason: bar is out of order');
    expect(text.out).toContain('1 of 3 dead letters shown; none removed');
    expect(await queueDepth(QUEUE_DEAD_LETTERS)).toBe(3);

    const replay = await cli(['dlq', 'replay', '--filter-reason', 'OUT OF ORDER']);
    expect(replay.code).toBe(0);
    expect(replay.out).toContain('replayed 1 dead letters; 2 skipped, 0 failed');
    await waitFor(() => origin.length === 1, 5000);
    const replayed = origin[0] as ConsumeMessage;
    expect(replayed.properties.messageId).toBe(barId(bar));
    expect(JSON.parse(replayed.content.toString())).toEqual(bar);
    expect(replayed.properties.headers).toMatchObject({ 'x-replay-count': 1, [HEADER_PUBLISHED_AT]: 1 });
    expect(replayed.properties.headers?.['x-rejection-reason']).toBeUndefined();
    expect(deadLetterInfo(replayed).stage).toBe('unknown');
    expect(await queueDepth(QUEUE_DEAD_LETTERS)).toBe(2);

    // The broker-dead-lettered one goes back to its x-death origin; the one without origin stays.
    const rest = await cli(['dlq', 'replay']);
    expect(rest.out).toContain('replayed 1 dead letters; 1 skipped, 0 failed');
    expect(rest.err).toContain('no-origin: no recorded origin');
    await waitFor(() => origin.length === 2, 5000);
    expect(origin[1]?.fields.routingKey).toBe(routingKeys.bar('5m', 'DLQ.B'));

    expect((await cli(['dlq', 'purge'])).code).toBe(64);
    const purge = await cli(['dlq', 'purge', '--yes']);
    expect(purge.out).toContain('purged 1 dead letters');
    expect(await queueDepth(QUEUE_DEAD_LETTERS)).toBe(0);
  });
});
