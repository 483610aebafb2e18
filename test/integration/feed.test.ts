/**
 * `pipeline feed binance` as a user runs it (bin/pipeline.js in a child process, stopped with
 * SIGTERM) against a local server speaking Binance's kline formats, publishing into a private vhost
 * where a queue bound to `bars.5m.#` on market.bars receives what it publishes.
 */
import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { BarSchema, type Bar } from '../../schemas/bar.schema';
import { EXCHANGE_BARS } from '../../src/broker/topology';
import { createVhost, waitFor, type TestVhost } from '../fixtures/broker';
import { CANDLE_MS, FakeBinance, finalCandle } from '../fixtures/binance-server';
import { CLI_BIN, spawnProcess, type Spawned } from '../fixtures/processes';

jest.setTimeout(240_000);

const T0 = Date.UTC(2025, 0, 1, 0, 0);
const BTC = 'BTCUSDT';
const ETH = 'ETHUSDT';

interface Got {
  bar: Bar;
  messageId: string | undefined;
  contentType: string | undefined;
  persistent: boolean;
}

describe('pipeline feed binance', () => {
  let vhost: TestVhost;
  let server: FakeBinance;
  let connection: amqp.ChannelModel;
  let channel: amqp.Channel;
  let feed: Spawned | null = null;
  const queue = `feed-${randomUUID()}`;

  beforeEach(async () => {
    vhost = await createVhost('feed');
    connection = await amqp.connect(vhost.url);
    channel = await connection.createChannel();
    await channel.assertExchange(EXCHANGE_BARS, 'topic', { durable: true });
    await channel.assertQueue(queue, { durable: false });
    await channel.bindQueue(queue, EXCHANGE_BARS, 'bars.5m.#');
  });

  afterEach(async () => {
    if (feed !== null && feed.proc.exitCode === null && feed.proc.signalCode === null) {
      feed.proc.kill('SIGKILL');
      await feed.exited;
    }
    feed = null;
    await server?.stop().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    await vhost?.dispose();
  });

  async function queued(): Promise<number> {
    return (await channel.checkQueue(queue)).messageCount;
  }

  /** Every message in the queue, in queue order (basic.get until empty). */
  async function drain(): Promise<Got[]> {
    const out: Got[] = [];
    for (;;) {
      const msg = await channel.get(queue, { noAck: true });
      if (msg === false) return out;
      out.push({
        bar: BarSchema.parse(JSON.parse(msg.content.toString('utf8'))),
        messageId: msg.properties.messageId as string | undefined,
        contentType: msg.properties.contentType as string | undefined,
        persistent: msg.properties.deliveryMode === 2,
      });
    }
  }

  function startFeed(args: string[]): Spawned {
    const env = { ...process.env, AMQP_URL: vhost.url, LOG_LEVEL: 'info' };
    const url = `127.0.0.1:${server.port}`;
    return spawnProcess(process.execPath, [CLI_BIN, 'feed', 'binance', '--symbols', `${BTC},${ETH}`, '--ws-url', `ws://${url}`, '--rest-url', `http://${url}`, '--reconnect-delay-ms', '100', ...args], env);
  }

  it('publishes every closed candle once, in order, across warm-up, partial candles, a cut connection and a gap only REST can fill', async () => {
    // 12 closed candles per symbol, the 13th (index 12) forming.
    server = new FakeBinance(T0, { [BTC]: 12, [ETH]: 12 });
    await server.start();
    const f = startFeed(['--warmup-bars', '5', '--verbose']);
    feed = f;
    const expected = new Map<string, number[]>([
      [BTC, []],
      [ETH, []],
    ]);
    const expect_ = (symbol: string, from: number, to: number): void => {
      for (let i = from; i <= to; i++) expected.get(symbol)?.push(i);
    };
    const total = (): number => [...expected.values()].reduce((n, l) => n + l.length, 0);

    // Warm-up: candles 7..11 (the last five closed); the forming 12 is not published from REST.
    expect_(BTC, 7, 11);
    expect_(ETH, 7, 11);
    await waitFor(async () => (await queued()) >= total() || f.proc.exitCode !== null, 120_000, 'the warm-up bars');
    expect(f.proc.exitCode).toBeNull();
    expect(server.requests.filter((r) => r.includes('startTime'))).toEqual([]);
    expect(server.requests.some((r) => r.includes(`symbol=${BTC}`) && r.includes('limit=6'))).toBe(true);

    // Live: partial updates are not published; the closed candle is, with its final values; a
    // repeat of a candle already published is dropped.
    server.sendPartial(BTC, 12);
    server.sendPartial(ETH, 12);
    server.sendClosed(BTC, 11); // a repeat of the last warm-up candle
    server.sendClosed(BTC, 12);
    server.sendClosed(ETH, 12);
    server.sendPartial(BTC, 13);
    expect_(BTC, 12, 12);
    expect_(ETH, 12, 12);
    await waitFor(async () => (await queued()) >= total() || f.proc.exitCode !== null, 60_000, 'the first live bars');

    // A cut connection; new connections are refused for a while, and candles close meanwhile:
    // 1,203 of BTC (more than one REST page of 1,000) and 3 of ETH.
    const connectionsBefore = server.connections;
    server.refuseUpgrades = true;
    server.cut();
    server.closeUpTo(BTC, 13 + 1203);
    server.closeUpTo(ETH, 16);
    await waitFor(() => server.openSockets === 0, 30_000, 'the cut');
    const reconnecting = (): number => f.stderr().split('kline stream closed; reconnecting').length - 1;
    // The cut, then at least one refused attempt.
    await waitFor(() => reconnecting() >= 2, 30_000, 'a refused reconnect');
    server.refuseUpgrades = false;
    await waitFor(() => server.connections > connectionsBefore || f.proc.exitCode !== null, 60_000, 'the reconnect');
    expect(f.proc.exitCode).toBeNull();
    // The next closed candles after the reconnect: the gaps come from REST first.
    server.sendClosed(BTC, 13 + 1203);
    server.sendClosed(ETH, 16);
    expect_(BTC, 13, 13 + 1203);
    expect_(ETH, 13, 16);
    await waitFor(async () => (await queued()) >= total() || f.proc.exitCode !== null, 120_000, `all ${total()} bars`);
    expect(server.requests.some((r) => r.includes(`symbol=${BTC}`) && r.includes(`startTime=${T0 + 13 * CANDLE_MS}`))).toBe(true);
    expect(server.requests.some((r) => r.includes(`symbol=${BTC}`) && r.includes(`startTime=${T0 + 1013 * CANDLE_MS}`))).toBe(true);

    // SIGTERM: exits 0 with a summary once the last bar is confirmed.
    f.proc.kill('SIGTERM');
    const exit = await f.exited;
    expect({ code: exit.code, stderr: exit.code === 0 ? '' : f.stderr() }).toEqual({ code: 0, stderr: '' });
    expect(f.stdout()).toMatch(new RegExp(`published ${total()} bars \\(${total()} confirmed\\): 10 warm-up, 4 live, ${1203 + 3} from REST`));

    const got = await drain();
    expect(got).toHaveLength(total());
    for (const [symbol, indices] of expected) {
      const mine = got.filter((g) => g.bar.symbol === symbol);
      expect(mine.map((g) => (g.bar.ts - T0) / CANDLE_MS)).toEqual(indices);
      for (const g of mine) {
        const c = finalCandle(symbol, T0, (g.bar.ts - T0) / CANDLE_MS);
        expect(g.bar).toEqual({ symbol, timeframe: '5m', ts: c.openTime, open: c.open, high: c.high, low: c.low, close: c.close, volume: c.volume });
        expect(g.messageId).toBe(`${symbol}:5m:${g.bar.ts}`);
        expect(g.contentType).toBe('application/json');
        expect(g.persistent).toBe(true);
      }
    }
  });

  it('stops at start with exit code 2 naming --ws-url when the stream cannot be opened', async () => {
    server = new FakeBinance(T0, { [BTC]: 3, [ETH]: 3 });
    server.refuseUpgrades = true;
    await server.start();
    const f = startFeed(['--warmup-bars', '2']);
    feed = f;
    const exit = await f.exited;
    expect(exit.code).toBe(2);
    expect(f.stderr()).toMatch(/cannot open the kline stream at ws:\/\/127\.0\.0\.1:\d+ after 3 attempts; check --ws-url/);
    expect(await queued()).toBe(0);
  });

  it('stops at start with exit code 2 and a line naming the setting when the symbol is unknown', async () => {
    server = new FakeBinance(T0, { [BTC]: 3 });
    await server.start();
    const f = startFeed([]); // ETHUSDT is unknown to this server
    feed = f;
    const exit = await f.exited;
    expect(exit.code).toBe(2);
    expect(f.stderr()).toMatch(/Invalid symbol\..*check the symbol/);
    expect(await queued()).toBe(0);
  });
});
