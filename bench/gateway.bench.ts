/**
 * Gateway load benchmark (issue 14), against the local RabbitMQ and Redis, all in one run:
 *
 * 1. One pipeline (strategic, tactical, gateway; training off so that runs compare), GB_SYMBOLS
 *    symbols. Rounds without WebSocket clients and with GB_CLIENTS clients connected, in pairs,
 *    GB_ROUNDS pairs. Each round publishes GB_BARS new bars at once (the pipeline's sustained
 *    rate: as fast as it goes) and times first publish → last result on `integrated_results`.
 *    With clients: every client must receive every result of its symbols, in `ts` order.
 * 2. A stalled client (its socket paused: it reads nothing) among normal clients while a round runs:
 *    the gateway closes it with 1013 (read once it resumes), and the others still get everything.
 *
 * Env: GB_BARS (6000), GB_SYMBOLS (20), GB_CLIENTS (200), GB_ROUNDS (4: pairs of rounds, ABBA order).
 * Output: bars/s per round, the ratio with/without clients per pair and its median, the gateway's
 * CPU seconds per round, frames delivered, and the 1013 check.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createServer } from 'node:net';
import * as amqp from 'amqplib';
import Redis from 'ioredis';
import type { Bar } from '../schemas/bar.schema';
import { EXCHANGE_BARS, QUEUE_RESULTS, routingKeys } from '../src/broker/topology';
import { loadConfig } from '../src/config/config';
import { generateSyntheticMarket } from '../src/producers/synthetic-market';
import { rolesFor } from '../src/supervisor/ipc';
import { Supervisor } from '../src/supervisor/supervisor';

const BARS = Number(process.env.GB_BARS ?? 6000);
const SYMBOLS = Number(process.env.GB_SYMBOLS ?? 20);
const CLIENTS = Number(process.env.GB_CLIENTS ?? 200);
const ROUNDS = Number(process.env.GB_ROUNDS ?? 4);
const WINDOW = 500;

interface WsClient {
  on(event: 'open', fn: () => void): void;
  on(event: 'message', fn: (data: Buffer) => void): void;
  on(event: 'close', fn: (code: number) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  terminate(): void;
  _socket: { pause(): void; resume(): void };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const WsCtor = require('ws') as new (url: string) => WsClient;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** One client: its symbols, the ts it got per symbol, and whether the order held. */
class Client {
  readonly lastTs = new Map<string, number>();
  count = 0;
  outOfOrder = 0;
  closeCode: number | null = null;
  readonly ws: WsClient;
  readonly opened: Promise<void>;

  constructor(url: string, readonly symbols: string[]) {
    // url carries the key: `ws://host:port?token=<key>`.
    const [base, token] = url.split('?token=');
    this.ws = new WsCtor(`${base}/ws?symbols=${symbols.join(',')}&token=${token}`);
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', () => resolve());
      this.ws.on('error', reject);
    });
    this.ws.on('close', (code) => (this.closeCode = code));
    this.ws.on('message', (data) => {
      // The body starts {"v":1,"symbol":...,"ts":...}: read both without parsing all of it.
      const m = /"symbol":"([^"]+)","ts":(\d+)/.exec(data.toString('utf8', 0, 120));
      if (m === null) return;
      const ts = Number(m[2]);
      if (ts <= (this.lastTs.get(m[1]!) ?? -1)) this.outOfOrder++;
      this.lastTs.set(m[1]!, ts);
      this.count++;
    });
  }
}

async function main(): Promise<void> {
  const vname = `bench-gateway-${randomUUID().slice(0, 6)}`;
  execFileSync('rabbitmqctl', ['add_vhost', vname], { stdio: 'ignore' });
  execFileSync('rabbitmqctl', ['set_permissions', '-p', vname, 'guest', '.*', '.*', '.*'], { stdio: 'ignore' });
  const url = `amqp://guest:guest@127.0.0.1:5672/${vname}`;
  const prefix = `bench:${randomUUID().slice(0, 6)}:`;
  const key = randomBytes(24).toString('hex');
  const port = await freePort();
  const env = {
    ...process.env,
    AMQP_URL: url,
    PIPELINE_REDIS_PREFIX: prefix,
    HEALTH_PORT: '0',
    LOG_LEVEL: 'warn',
    PIPELINE_TRAINING: 'off',
    PIPELINE_ROLES: 'strategic,tactical,gateway',
    PIPELINE_DATA_DIR: `/tmp/${prefix.replace(/:/g, '_')}`,
    GATEWAY_PORT: String(port),
    GATEWAY_API_KEYS: `viewer:${key}`,
    GATEWAY_RATE_LIMIT_PER_MINUTE: '100000',
  };
  const config = loadConfig(env);
  const supervisor = new Supervisor({ config, roles: rolesFor(config), env });
  const wsUrl = `ws://127.0.0.1:${port}?token=${key}`;
  const rounds = 2 * ROUNDS + 1; // the last one for the stalled client
  const perSymbol = Math.ceil(BARS / SYMBOLS);
  const markets = Array.from({ length: SYMBOLS }, (_, i) => generateSyntheticMarket({ seed: 900 + i, symbol: `GW${i}`, bars: perSymbol * rounds }).bars);
  const roundBars = (r: number): Bar[] =>
    markets.flatMap((m) => m.slice(r * perSymbol, (r + 1) * perSymbol)).sort((a, b) => a.ts - b.ts || a.symbol.localeCompare(b.symbol));
  const pub = await amqp.connect(url, { noDelay: true }).catch(() => null);
  try {
    await supervisor.start();
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${supervisor.healthPort}/health`).catch(() => null);
      if (res?.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const conn = pub ?? (await amqp.connect(url, { noDelay: true }));
    const pch = await conn.createConfirmChannel();
    const sub = await amqp.connect(url, { noDelay: true });
    const sch = await sub.createChannel();
    await sch.prefetch(1000);
    let received = 0;
    let waiter: { n: number; resolve: () => void } | null = null;
    await sch.consume(QUEUE_RESULTS, (msg) => {
      if (msg === null) return;
      sch.ack(msg);
      received++;
      if (waiter !== null && received >= waiter.n) {
        const w = waiter;
        waiter = null;
        w.resolve();
      }
    });
    const runRound = async (r: number): Promise<number> => {
      const bars = roundBars(r);
      const target = received + bars.length;
      const done = new Promise<void>((resolve) => (waiter = { n: target, resolve }));
      const t0 = performance.now();
      for (let i = 0; i < bars.length; i += WINDOW) {
        for (const b of bars.slice(i, i + WINDOW)) {
          pch.publish(EXCHANGE_BARS, routingKeys.bar('5m', b.symbol), Buffer.from(JSON.stringify(b)), { persistent: true, contentType: 'application/json', messageId: `${b.symbol}:5m:${b.ts}` });
        }
        await pch.waitForConfirms();
      }
      await done;
      return bars.length / ((performance.now() - t0) / 1000);
    };
    const symbolsOf = (i: number): string[] => (i % 4 === 3 ? [`GW${i % SYMBOLS}`, `GW${(i + 1) % SYMBOLS}`] : [`GW${i % SYMBOLS}`]);
    // Rounds alternate (without, with, without, with, ...) so that warm-up and drift affect both kinds.
    const without: number[] = [];
    const withClients: number[] = [];
    const delivery: string[] = [];
    const cpu: { without: number[]; with: number[]; clients: number[]; plainOwn: number[] } = { without: [], with: [], clients: [], plainOwn: [] };
    const ownCpu = (): number => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    };
    const gatewayPid = supervisor.pids().gateway;
    /** CPU seconds (user + system) the gateway process has used so far. */
    const gatewayCpu = (): number => {
      if (gatewayPid === undefined) return NaN;
      const fields = readFileSync(`/proc/${gatewayPid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s)
    };
    let round = 0;
    const plain = async (): Promise<void> => {
      const c0 = gatewayCpu();
      const o0 = ownCpu();
      without.push(await runRound(round++));
      cpu.without.push(gatewayCpu() - c0);
      cpu.plainOwn.push(ownCpu() - o0);
    };
    const loaded = async (): Promise<void> => {
      const clients = Array.from({ length: CLIENTS }, (_, i) => new Client(wsUrl, symbolsOf(i)));
      await Promise.all(clients.map((c) => c.opened));
      const r = round;
      const c0 = gatewayCpu();
      const o0 = ownCpu();
      withClients.push(await runRound(round++));
      const bars = roundBars(r);
      const expected = (c: Client): number => bars.filter((b) => c.symbols.includes(b.symbol)).length;
      const deadline = Date.now() + 30_000;
      while (clients.some((c) => c.count < expected(c)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
      cpu.with.push(gatewayCpu() - c0);
      cpu.clients.push(ownCpu() - o0);
      const complete = clients.filter((c) => c.count === expected(c) && c.outOfOrder === 0 && c.symbols.every((s) => c.lastTs.get(s) === bars.filter((b) => b.symbol === s).pop()!.ts)).length;
      const frames = clients.reduce((n, c) => n + c.count, 0);
      delivery.push(`${complete}/${CLIENTS} clients got every result of their symbols in ts order (${frames} frames, ${clients.reduce((n, c) => n + c.outOfOrder, 0)} out of order)`);
      for (const c of clients) c.ws.terminate();
    };
    // Pairs in ABBA order (without-with, with-without, ...) so that a load that rises or falls
    // during the run weighs on both kinds alike; each pair's ratio is reported.
    for (let k = 0; k < ROUNDS; k++) {
      if (k % 2 === 0) {
        await plain();
        await loaded();
      } else {
        await loaded();
        await plain();
      }
    }
    // The stalled client.
    const normal = Array.from({ length: 10 }, (_, i) => new Client(wsUrl, [`GW${i % SYMBOLS}`]));
    const stalled = new Client(wsUrl, markets.map((m) => m[0]!.symbol));
    await Promise.all([...normal, stalled].map((c) => c.opened));
    stalled.ws._socket.pause();
    const metrics = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${supervisor.healthPort}/metrics`)).text();
      const m = /pipeline_gateway_ws_slow_closed_total\{[^}]*\} (\d+)/.exec(text);
      return m === null ? 0 : Number(m[1]);
    };
    const r = round;
    const stalledRate = await runRound(round++);
    const bars = roundBars(r);
    let closedByGateway = false;
    for (let i = 0; i < 50 && !closedByGateway; i++) {
      closedByGateway = (await metrics()) >= 1;
      if (!closedByGateway) await new Promise((res) => setTimeout(res, 100));
    }
    stalled.ws._socket.resume();
    const deadline = Date.now() + 10_000;
    while (stalled.closeCode === null && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    const normalOk = normal.every((c) => c.count === bars.filter((b) => b.symbol === c.symbols[0]).length && c.outOfOrder === 0);
    for (const c of [...normal, stalled]) c.ws.terminate();

    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const fmt = (x: number): string => x.toFixed(0);
    process.stdout.write(`machine: 2 cores shared with other jobs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end\n`);
    process.stdout.write(`pipeline: strategic, tactical, gateway; training off; ${SYMBOLS} symbols; ${perSymbol * SYMBOLS} bars per round\n`);
    process.stdout.write(`without clients: ${without.map(fmt).join(', ')} bars/s (mean ${fmt(mean(without))})\n`);
    process.stdout.write(`with ${CLIENTS} WebSocket clients: ${withClients.map(fmt).join(', ')} bars/s (mean ${fmt(mean(withClients))})\n`);
    const ratios = withClients.map((w, i) => w / without[i]!);
    const sorted = [...ratios].sort((a, b) => a - b);
    const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
    process.stdout.write(`ratio with/without per pair: ${ratios.map((r) => r.toFixed(3)).join(', ')}; median ${median.toFixed(3)} (drop ${((1 - median) * 100).toFixed(1)}%, target < 10%); ratio of means ${(mean(withClients) / mean(without)).toFixed(3)}\n`);
    process.stdout.write(`gateway CPU per round: without clients ${cpu.without.map((c) => c.toFixed(2)).join(', ')} s; with ${CLIENTS} clients ${cpu.with.map((c) => c.toFixed(2)).join(', ')} s; this benchmark process (publisher and result reader; plus the ${CLIENTS} clients) ${cpu.plainOwn.map((c) => c.toFixed(2)).join(', ')} s without, ${cpu.clients.map((c) => c.toFixed(2)).join(', ')} s with clients, on the same 2 cores\n`);
    for (const d of delivery) process.stdout.write(`delivery: ${d}\n`);
    process.stdout.write(`stalled client: closed by the gateway ${closedByGateway ? 'yes' : 'NO'}, close code seen by the client ${stalled.closeCode} (frames read before it: ${stalled.count}); 10 normal clients complete and in order: ${normalOk}; round rate ${fmt(stalledRate)} bars/s\n`);
    await sub.close();
    await conn.close();
  } finally {
    await supervisor.stop();
    execFileSync('rabbitmqctl', ['delete_vhost', vname], { stdio: 'ignore' });
    const redis = new Redis();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
