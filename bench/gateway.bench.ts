/**
 * Gateway load benchmark (issue 14), against the local RabbitMQ and Redis, all in one run:
 *
 * 1. One pipeline (strategic, tactical, gateway; training off so that runs compare), GB_SYMBOLS
 *    symbols. Rounds of three kinds: no WebSocket client; GB_CLIENTS clients at normal priority; the
 *    same clients at nice 19. GB_ROUNDS groups of one round of each kind, the order reversed every
 *    other group (ABC CBA ...) so that drift weighs on every kind alike. Each round publishes GB_BARS
 *    new bars at once (the pipeline's sustained rate: as fast as it goes) and times first publish →
 *    last result on `integrated_results`. With clients: every client must receive every result of
 *    its symbols, in `ts` order, checked in the same run.
 *    The clients stand for remote users: they run in a child process of their own (`nice -n 0` or
 *    `nice -n 19`), never in this one. At normal priority their CPU is taken from the pipeline's two
 *    cores as it would be by any program on the machine; at nice 19 the kernel gives them only what the
 *    pipeline leaves, which is what clients on other machines cost it, except for the loopback TCP work
 *    that stays charged to the gateway. Both figures are reported.
 * 2. A stalled client (its socket paused: it reads nothing) among normal clients while a round runs:
 *    the gateway closes it with 1013 (read once it resumes), the others still get everything, and the
 *    round's rate is compared with the rounds without clients.
 *
 * 3. The process pool saturated (gateway contract 2): tactical process calls of 2,000 bars kept
 *    past the pool and its queue (each call that got a slot is replaced by two, one of them refused
 *    with 503) while `/api/health` is probed every 100 ms and one more round is published to 10
 *    WebSocket clients: health latency p50/p99/max (target: within 250 ms), the calls refused, and
 *    the round's delivery and rate.
 *
 * The clients authenticate with `Authorization` on the upgrade (contract 2 refuses `?token=`); all
 * use one key, so the bench lifts GATEWAY_WS_MAX_PER_KEY.
 *
 * Env: GB_BARS (6000), GB_SYMBOLS (20), GB_CLIENTS (200), GB_ROUNDS (4 groups of three rounds),
 * GB_SATURATION (1; 0 skips section 3).
 * Output: bars/s per round, the ratio with/without clients per group and its median for each client
 * priority, the CPU seconds of the gateway and of the clients per round, frames per socket write,
 * the delivery check of every loaded round, and the 1013 check.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
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
import { median, quantile } from '../src/util/quantile';

const BARS = Number(process.env.GB_BARS ?? 6000);
const SYMBOLS = Number(process.env.GB_SYMBOLS ?? 20);
const CLIENTS = Number(process.env.GB_CLIENTS ?? 200);
const ROUNDS = Number(process.env.GB_ROUNDS ?? 4);
const WINDOW = 500;
const SATURATION = process.env.GB_SATURATION !== '0';

interface WsClient {
  on(event: 'open', fn: () => void): void;
  on(event: 'message', fn: (data: Buffer) => void): void;
  on(event: 'close', fn: (code: number) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  terminate(): void;
  _socket: { pause(): void; resume(): void };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const WsCtor = require('ws') as new (url: string, options?: { headers?: Record<string, string> }) => WsClient;

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
    // url carries the key as `ws://host:port#<key>`; it goes in the upgrade's Authorization header.
    const [base, key] = url.split('#');
    this.ws = new WsCtor(`${base}/ws?symbols=${symbols.join(',')}`, { headers: { authorization: `Bearer ${key}` } });
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

/** Messages between this process and its clients process. */
type ToClients = { type: 'open'; url: string; symbols: string[][] } | { type: 'report' } | { type: 'close' };
interface ClientReport {
  type: 'report';
  /** Per client: frames, out of order, last ts per symbol. */
  clients: { count: number; outOfOrder: number; lastTs: Record<string, number> }[];
  /** CPU seconds (user + system) of the clients process since it opened its clients. */
  cpuSeconds: number;
}
type FromClients = { type: 'opened' } | ClientReport | { type: 'error'; message: string };

/** The clients process: opens the clients it is told to, reports what they got, closes them. */
function clientsMain(): void {
  let clients: Client[] = [];
  let cpu0 = process.cpuUsage();
  const send = (m: FromClients): void => void process.send?.(m);
  process.on('message', (m: ToClients) => {
    if (m.type === 'open') {
      clients = m.symbols.map((symbols) => new Client(m.url, symbols));
      Promise.all(clients.map((c) => c.opened)).then(
        () => {
          cpu0 = process.cpuUsage();
          send({ type: 'opened' });
        },
        (err: unknown) => send({ type: 'error', message: String(err) }),
      );
    } else if (m.type === 'report') {
      const u = process.cpuUsage(cpu0);
      send({
        type: 'report',
        cpuSeconds: (u.user + u.system) / 1e6,
        clients: clients.map((c) => ({ count: c.count, outOfOrder: c.outOfOrder, lastTs: Object.fromEntries(c.lastTs) })),
      });
    } else {
      for (const c of clients) c.ws.terminate();
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/** A clients process at the given nice value, talking over IPC. */
class ClientsProcess {
  private readonly child: ChildProcess;
  private readonly replies: ((m: FromClients) => void)[] = [];

  constructor(readonly nice: number) {
    // `nice` before exec, so every thread of that Node process (GC, libuv pool) has the priority.
    this.child = fork(__filename, ['--clients'], { execPath: '/usr/bin/nice', execArgv: ['-n', String(nice), process.execPath, ...process.execArgv] });
    this.child.on('message', (m: FromClients) => this.replies.shift()?.(m));
  }

  private ask(m: ToClients): Promise<FromClients> {
    return new Promise((resolve) => {
      this.replies.push(resolve);
      this.child.send(m);
    });
  }

  async open(url: string, symbols: string[][]): Promise<void> {
    const r = await this.ask({ type: 'open', url, symbols });
    if (r.type !== 'opened') throw new Error(`clients process: ${r.type === 'error' ? r.message : r.type}`);
  }

  async report(): Promise<ClientReport> {
    const r = await this.ask({ type: 'report' });
    if (r.type !== 'report') throw new Error('clients process: no report');
    return r;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.send({ type: 'close' });
    });
  }
}

type Kind = 'without' | 'nice0' | 'nice19';

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
    // Every client uses the one key: the per-key socket cap (16 by default) is lifted for them.
    GATEWAY_WS_MAX_PER_KEY: '1000',
  };
  const config = loadConfig(env);
  const supervisor = new Supervisor({ config, roles: rolesFor(config), env });
  const wsUrl = `ws://127.0.0.1:${port}#${key}`;
  const rounds = 3 * ROUNDS + 2; // then one for the stalled client, one for the saturated pool
  const perSymbol = Math.ceil(BARS / SYMBOLS);
  const markets = Array.from({ length: SYMBOLS }, (_, i) => generateSyntheticMarket({ seed: 900 + i, symbol: `GW${i}`, bars: perSymbol * rounds }).bars);
  const roundBars = (r: number): Bar[] =>
    markets.flatMap((m) => m.slice(r * perSymbol, (r + 1) * perSymbol)).sort((a, b) => a.ts - b.ts || a.symbol.localeCompare(b.symbol));
  const pub = await amqp.connect(url, { noDelay: true }).catch(() => null);
  const load0 = loadavg();
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
    const clientSymbols = Array.from({ length: CLIENTS }, (_, i) => symbolsOf(i));
    const metrics = async (): Promise<Map<string, number>> => {
      const text = await (await fetch(`http://127.0.0.1:${supervisor.healthPort}/metrics`)).text();
      const out = new Map<string, number>();
      for (const m of text.matchAll(/^(pipeline_gateway_ws_\w+)(?:\{[^}]*\})? (\S+)$/gm)) out.set(m[1]!, Number(m[2]));
      return out;
    };
    const pids = supervisor.pids();
    /** CPU seconds (user + system) a process has used so far. */
    const cpuOf = (pid: number | undefined): number => {
      if (pid === undefined) return NaN;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s)
    };
    const gatewayCpu = (): number => cpuOf(pids.gateway);
    /** CPU seconds of the other workers (strategic, tactical). */
    const workersCpu = (): number => Object.entries(pids).reduce((n, [role, pid]) => (role === 'gateway' ? n : n + cpuOf(pid)), 0);
    const rates: Record<Kind, number[]> = { without: [], nice0: [], nice19: [] };
    const gwCpu: Record<Kind, number[]> = { without: [], nice0: [], nice19: [] };
    const clientCpu: Record<Kind, number[]> = { without: [], nice0: [], nice19: [] };
    const wkCpu: Record<Kind, number[]> = { without: [], nice0: [], nice19: [] };
    const framesPerWrite: Record<Kind, number[]> = { without: [], nice0: [], nice19: [] };
    const delivery: string[] = [];
    let deliveryFailures = 0;
    let round = 0;
    const runKind = async (kind: Kind): Promise<void> => {
      const r = round++;
      const bars = roundBars(r);
      const clients = kind === 'without' ? null : new ClientsProcess(kind === 'nice0' ? 0 : 19);
      await clients?.open(wsUrl, clientSymbols);
      const m0 = await metrics();
      const c0 = gatewayCpu();
      const w0 = workersCpu();
      rates[kind].push(await runRound(r));
      wkCpu[kind].push(workersCpu() - w0);
      if (clients === null) {
        gwCpu[kind].push(gatewayCpu() - c0);
        return;
      }
      const lastOf = new Map<string, number>();
      const countOf = new Map<string, number>();
      for (const b of bars) {
        lastOf.set(b.symbol, b.ts);
        countOf.set(b.symbol, (countOf.get(b.symbol) ?? 0) + 1);
      }
      const expected = clientSymbols.map((syms) => syms.reduce((n, s) => n + (countOf.get(s) ?? 0), 0));
      const deadline = Date.now() + 60_000;
      let report = await clients.report();
      while (report.clients.some((c, i) => c.count < expected[i]!) && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 100));
        report = await clients.report();
      }
      gwCpu[kind].push(gatewayCpu() - c0);
      clientCpu[kind].push(report.cpuSeconds);
      const m1 = await metrics();
      const frames = (m1.get('pipeline_gateway_ws_frames_total') ?? NaN) - (m0.get('pipeline_gateway_ws_frames_total') ?? NaN);
      const writes = (m1.get('pipeline_gateway_ws_writes_total') ?? NaN) - (m0.get('pipeline_gateway_ws_writes_total') ?? NaN);
      framesPerWrite[kind].push(frames / writes);
      const complete = report.clients.filter((c, i) => c.count === expected[i] && c.outOfOrder === 0 && clientSymbols[i]!.every((s) => c.lastTs[s] === lastOf.get(s))).length;
      if (complete !== CLIENTS) deliveryFailures++;
      const got = report.clients.reduce((n, c) => n + c.count, 0);
      const want = expected.reduce((n, c) => n + c, 0);
      delivery.push(`round ${r} (${kind === 'nice0' ? 'clients at normal priority' : 'clients at nice 19'}): ${complete}/${CLIENTS} clients got every result of their symbols in ts order (${got} of ${want} frames, ${report.clients.reduce((n, c) => n + c.outOfOrder, 0)} out of order)`);
      await clients.close();
    };
    const order: Kind[] = ['without', 'nice0', 'nice19'];
    for (let k = 0; k < ROUNDS; k++) for (const kind of k % 2 === 0 ? order : [...order].reverse()) await runKind(kind);

    // The stalled client, among 10 normal ones (in this process: 11 clients cost little).
    const normal = Array.from({ length: 10 }, (_, i) => new Client(wsUrl, [`GW${i % SYMBOLS}`]));
    const stalled = new Client(wsUrl, markets.map((m) => m[0]!.symbol));
    await Promise.all([...normal, stalled].map((c) => c.opened));
    stalled.ws._socket.pause();
    const slowClosed = async (): Promise<number> => (await metrics()).get('pipeline_gateway_ws_slow_closed_total') ?? 0;
    const slow0 = await slowClosed();
    const r = round;
    const stalledRate = await runRound(round++);
    const bars = roundBars(r);
    let closedByGateway = false;
    for (let i = 0; i < 50 && !closedByGateway; i++) {
      closedByGateway = (await slowClosed()) > slow0;
      if (!closedByGateway) await new Promise((res) => setTimeout(res, 100));
    }
    stalled.ws._socket.resume();
    const deadline = Date.now() + 10_000;
    while (stalled.closeCode === null && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    const normalOk = normal.every((c) => c.count === bars.filter((b) => b.symbol === c.symbols[0]).length && c.outOfOrder === 0);
    for (const c of [...normal, stalled]) c.ws.terminate();

    // The process pool saturated: health and the stream meanwhile.
    let saturation: string[] = [];
    if (SATURATION) {
      const base = `http://127.0.0.1:${port}`;
      const heavy = JSON.stringify({ symbol: 'SAT', bars: generateSyntheticMarket({ seed: 77, symbol: 'SAT', bars: 2000 }).bars });
      const statuses = new Map<number, number>();
      let saturating = true;
      const running = new Set<Promise<void>>();
      const fire = (): void => {
        const p: Promise<void> = (async () => {
          const res = await fetch(`${base}/api/tactical/process`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: heavy }).catch(() => null);
          await res?.text();
          const status = res?.status ?? 0;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status !== 503 && saturating) {
            fire();
            fire();
          }
        })().finally(() => running.delete(p));
        running.add(p);
      };
      for (let i = 0; i < 14; i++) fire();
      while ((statuses.get(503) ?? 0) === 0) await new Promise((res) => setTimeout(res, 50));
      const healthMs: number[] = [];
      let probing = true;
      const probes = (async () => {
        while (probing) {
          const t0 = performance.now();
          const res = await fetch(`${base}/api/health`).catch(() => null);
          await res?.text();
          healthMs.push(performance.now() - t0);
          await new Promise((res) => setTimeout(res, 100));
        }
      })();
      const watchers = Array.from({ length: 10 }, (_, i) => new Client(wsUrl, [`GW${i % SYMBOLS}`]));
      await Promise.all(watchers.map((c) => c.opened));
      const sr = round;
      const satRate = await runRound(round++);
      const satBars = roundBars(sr);
      const watchDeadline = Date.now() + 60_000;
      const want = (c: Client): number => satBars.filter((b) => b.symbol === c.symbols[0]).length;
      while (watchers.some((c) => c.count < want(c)) && Date.now() < watchDeadline) await new Promise((res) => setTimeout(res, 50));
      const watchersOk = watchers.every((c) => c.count === want(c) && c.outOfOrder === 0);
      probing = false;
      await probes;
      const refusedDuring = statuses.get(503) ?? 0;
      saturating = false;
      while (running.size > 0) await Promise.all([...running]);
      for (const c of watchers) c.ws.terminate();
      const sorted = [...healthMs].sort((a, b) => a - b);
      const q = (p: number): number => quantile(sorted, p);
      saturation = [
        `process pool saturated (GATEWAY_PROCESS_CONCURRENCY 2, queue 8; calls of 2,000 bars): answers ${[...statuses].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}×${v}`).join(', ')} (503s while the round ran: ${refusedDuring})`,
        `  /api/health meanwhile: ${healthMs.length} probes, p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms (target: within 250 ms) ${sorted[sorted.length - 1]! <= 250 ? '✓' : '✗'}`,
        `  a round published meanwhile: ${satRate.toFixed(0)} bars/s; 10 WebSocket clients complete and in order: ${watchersOk}`,
      ];
    }

    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const fmt = (x: number): string => x.toFixed(0);
    const secs = (xs: number[]): string => xs.map((c) => c.toFixed(2)).join(', ');
    const out = (line: string): boolean => process.stdout.write(`${line}\n`);
    out(`machine: 2 cores shared with other jobs; load average ${load0.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`);
    out(`pipeline: strategic, tactical, gateway; training off; ${SYMBOLS} symbols; ${perSymbol * SYMBOLS} bars per round; ${CLIENTS} clients in a process of their own`);
    out(`without clients: ${rates.without.map(fmt).join(', ')} bars/s (mean ${fmt(mean(rates.without))})`);
    for (const kind of ['nice0', 'nice19'] as const) {
      const ratios = rates[kind].map((w, i) => w / rates.without[i]!);
      const med = median(ratios);
      const label = kind === 'nice0' ? 'clients at normal priority' : 'clients at nice 19';
      out(`${label}: ${rates[kind].map(fmt).join(', ')} bars/s (mean ${fmt(mean(rates[kind]))}); ratio to the round without clients of the same group: ${ratios.map((x) => x.toFixed(3)).join(', ')}; median ${med.toFixed(3)} (drop ${((1 - med) * 100).toFixed(1)}%, target < 10%); ratio of means ${(mean(rates[kind]) / mean(rates.without)).toFixed(3)}`);
    }
    out(`gateway CPU per round: without clients ${secs(gwCpu.without)} s; clients at normal priority ${secs(gwCpu.nice0)} s; at nice 19 ${secs(gwCpu.nice19)} s`);
    out(`strategic and tactical workers' CPU per round (to the last result): without clients ${secs(wkCpu.without)} s; clients at normal priority ${secs(wkCpu.nice0)} s; at nice 19 ${secs(wkCpu.nice19)} s`);
    out(`clients process CPU per round: at normal priority ${secs(clientCpu.nice0)} s; at nice 19 ${secs(clientCpu.nice19)} s`);
    out(`frames per socket write: at normal priority ${framesPerWrite.nice0.map((x) => x.toFixed(2)).join(', ')}; at nice 19 ${framesPerWrite.nice19.map((x) => x.toFixed(2)).join(', ')}`);
    for (const d of delivery) out(`delivery: ${d}`);
    out(`delivery: ${deliveryFailures === 0 ? 'complete and in order in every loaded round' : `INCOMPLETE or out of order in ${deliveryFailures} round(s)`}`);
    out(`stalled client: closed by the gateway ${closedByGateway ? 'yes' : 'NO'}, close code seen by the client ${stalled.closeCode} (frames read before it: ${stalled.count}); 10 normal clients complete and in order: ${normalOk}; round rate ${fmt(stalledRate)} bars/s (${(stalledRate / mean(rates.without)).toFixed(3)} of the mean without clients)`);
    for (const line of saturation) out(line);
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

if (process.argv.includes('--clients')) {
  clientsMain();
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
