import WebSocket from 'ws';
import type { Bar } from '../../schemas/bar.schema';
import { PipelineError, StartupError, ValidationError } from '../errors';
import type { Logger } from '../observability/logger';
import { Backoff } from '../util/backoff';
import type { BarSource } from './bar-source';
import {
  BINANCE_MAX_LIMIT,
  CANDLE_MS,
  barProblem,
  candleToBar,
  closedRows,
  klinesQuery,
  parseRestKlines,
  parseStreamMessage,
  streamPath,
  type Candle,
  type KlineEvent,
} from './binance-kline-messages';

/** Binance's public market-data stream (no key needed). */
export const BINANCE_WS_URL = 'wss://stream.binance.com:9443';
/** Binance's public REST API (no key needed for klines). */
export const BINANCE_REST_URL = 'https://api.binance.com';

/** A REST answer that a retry will not change (a rejected symbol or parameter, a wrong URL). */
export class BinanceRequestError extends PipelineError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('BINANCE_REQUEST_REJECTED', message, false, options);
  }
}

/** Options of {@link BinanceKlineSource}. */
export interface BinanceKlineSourceOptions {
  /** Binance symbols, e.g. `BTCUSDT` (published as given, upper case). */
  symbols: readonly string[];
  /** Stream endpoint; the combined-stream path is appended. @defaultValue {@link BINANCE_WS_URL} */
  wsUrl?: string;
  /** REST endpoint; `/api/v3/klines` is appended. @defaultValue {@link BINANCE_REST_URL} */
  restUrl?: string;
  /** Closed candles per symbol published from REST before the first live one. @defaultValue 0 */
  warmupBars?: number;
  /** First reconnect (and REST retry) delay; doubles per failed attempt, with jitter. @defaultValue 1000 */
  reconnectDelayMs?: number;
  /** Largest reconnect (and REST retry) delay. @defaultValue 30000 */
  maxReconnectDelayMs?: number;
  /** Rows per REST request when paging. @defaultValue 1000 (Binance's maximum) */
  restPageLimit?: number;
  /** Bound of one REST request. @defaultValue 10000 */
  requestTimeoutMs?: number;
  /**
   * A stream that delivers nothing (no frame, no ping) this long is taken as dead and reconnected.
   * Binance sends a kline event per symbol about every 2 s and a ping every 20 s. @defaultValue 120000
   */
  idleTimeoutMs?: number;
  /** Failed connection attempts at start before giving up with exit code 2. @defaultValue 3 */
  initialMaxAttempts?: number;
  /** Random numbers in [0, 1) for the jitter. @defaultValue Math.random */
  random?: () => number;
  log: Logger;
}

/** How many bars came from where, and what was skipped. */
export interface BinanceFeedCounts {
  warmup: number;
  live: number;
  /** Bars fetched from REST to fill a gap before a live candle. */
  gapFilled: number;
  /** Candles that failed the wire contract's bar rules (logged, not published). */
  invalid: number;
  /** Stream connections opened after the first. */
  reconnects: number;
}

/**
 * Binance's public 5m klines as a {@link BarSource}: the combined stream for the live candles (only
 * closed ones, `k.x`), REST for the warm-up and for every gap. Candle times are compared with each
 * other only, never with this process's clock, so a mirror or a recorded stream may run at any speed.
 *
 * - Warm-up: the last `warmupBars` closed candles of each symbol from `/api/v3/klines` (no
 *   `startTime`). The last row of that answer may still be forming; see {@link closedRows}.
 * - Live: a closed candle whose `ts` is at or before the symbol's last published one is dropped (a
 *   repeat); one more than 5 min after it is preceded by the missing candles from REST, asked for by
 *   time (`startTime` = last published + 5 min, paged by `restPageLimit`), in order.
 * - Disconnects: the stream reconnects with exponential backoff and jitter; candles that closed
 *   meanwhile come from REST before the next live one (the gap rule above).
 *
 * Emits no events; counts are in {@link counts}, and progress goes to the logger.
 */
export class BinanceKlineSource implements BarSource {
  readonly name = 'binance';
  /** What has been yielded so far. */
  readonly counts: BinanceFeedCounts = { warmup: 0, live: 0, gapFilled: 0, invalid: 0, reconnects: 0 };

  private readonly symbols: readonly string[];
  private readonly wsUrl: string;
  private readonly restUrl: string;
  private readonly warmupBars: number;
  private readonly backoff: Backoff;
  private readonly pageLimit: number;
  private readonly requestTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly initialMaxAttempts: number;
  private readonly log: Logger;

  /** Open time of the last bar yielded, per symbol. */
  private readonly lastTs = new Map<string, number>();
  /** Closed candles received and not yet handled, in arrival order. */
  private readonly queue: KlineEvent[] = [];
  /** The latest moment the stream has shown: its largest event time, and per symbol the latest open time. */
  private latestEventTime = -Infinity;
  private readonly latestOpenTime = new Map<string, number>();
  private socket: WebSocket | null = null;
  private everOpened = false;
  private failedAttempts = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private fatal: Error | null = null;
  private closed = false;
  private started = false;
  private waiters: (() => void)[] = [];
  /** The warm-up is over: REST failures from here on are retried, never a start-up error. */
  private live = false;
  /** Some REST request has succeeded (failures before that stop the start). */
  private restOk = false;

  constructor(options: BinanceKlineSourceOptions) {
    const symbols = options.symbols.map((s) => s.trim().toUpperCase()).filter((s) => s !== '');
    if (symbols.length === 0) throw new ValidationError('give at least one symbol');
    const bad = symbols.filter((s) => !/^[A-Z0-9]{1,32}$/.test(s));
    if (bad.length > 0) throw new ValidationError(`not a Binance symbol: ${bad.join(', ')} (letters and digits, e.g. BTCUSDT)`);
    if (new Set(symbols).size !== symbols.length) throw new ValidationError('a symbol is listed twice');
    this.symbols = symbols;
    this.wsUrl = trimSlash(options.wsUrl ?? BINANCE_WS_URL);
    this.restUrl = trimSlash(options.restUrl ?? BINANCE_REST_URL);
    checkUrl(this.wsUrl, ['ws:', 'wss:'], '--ws-url');
    checkUrl(this.restUrl, ['http:', 'https:'], '--rest-url');
    this.warmupBars = options.warmupBars ?? 0;
    const initialDelayMs = options.reconnectDelayMs ?? 1000;
    const maxDelayMs = options.maxReconnectDelayMs ?? 30_000;
    this.pageLimit = options.restPageLimit ?? BINANCE_MAX_LIMIT;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
    this.initialMaxAttempts = options.initialMaxAttempts ?? 3;
    this.log = options.log;
    if (!Number.isInteger(this.warmupBars) || this.warmupBars < 0) throw new RangeError('warmupBars must be an integer >= 0');
    if (!Number.isInteger(this.pageLimit) || this.pageLimit < 2 || this.pageLimit > BINANCE_MAX_LIMIT) {
      throw new RangeError(`restPageLimit must be an integer in 2..${BINANCE_MAX_LIMIT}`);
    }
    if (!(initialDelayMs > 0) || !(maxDelayMs >= initialDelayMs)) throw new RangeError('reconnect delays must be > 0, max >= first');
    this.backoff = new Backoff({ initialDelayMs, maxDelayMs, random: options.random ?? Math.random });
  }

  /** The symbols, upper case, in the order given. */
  get symbolList(): readonly string[] {
    return this.symbols;
  }

  async *bars(signal: AbortSignal): AsyncGenerator<Bar> {
    if (this.started) throw new Error('BinanceKlineSource.bars() runs once per source');
    this.started = true;
    const onAbort = (): void => this.wake();
    signal.addEventListener('abort', onAbort);
    try {
      // The stream first: candles that close during the warm-up wait in the queue, and what it has
      // shown tells whether the last REST row is closed.
      this.connect();
      await this.waitFor(() => this.everOpened, signal);
      if (signal.aborted) return;
      // Without a warm-up too: one small request per symbol checks the symbol and --rest-url at start.
      for (const symbol of this.symbols) {
        for (const candle of await this.warmupCandles(symbol, signal)) {
          if (signal.aborted) return;
          const bar = this.accept(candle, 'warmup');
          if (bar !== null) yield bar;
        }
        if (signal.aborted) return;
      }
      this.live = true;
      for (;;) {
        await this.waitFor(() => this.queue.length > 0, signal);
        const event = this.queue.shift();
        if (signal.aborted || event === undefined) return;
        const { candle } = event;
        const last = this.lastTs.get(candle.symbol);
        if (last !== undefined && candle.openTime <= last) continue; // a repeat (after a reconnect, or of the warm-up)
        if (last !== undefined && candle.openTime > last + CANDLE_MS) {
          for (const missing of await this.fetchRange(candle.symbol, last + CANDLE_MS, candle.openTime, signal)) {
            if (signal.aborted) return;
            const bar = this.accept(missing, 'gapFilled');
            if (bar !== null) yield bar;
          }
          if (signal.aborted) return;
        }
        const bar = this.accept(candle, 'live');
        if (bar !== null) yield bar;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.close();
    }
  }

  /** Takes a candle as published (or as skipped when it breaks the bar rules); null when not to yield. */
  private accept(candle: Candle, kind: 'warmup' | 'live' | 'gapFilled'): Bar | null {
    const last = this.lastTs.get(candle.symbol);
    if (last !== undefined && candle.openTime <= last) return null;
    this.lastTs.set(candle.symbol, candle.openTime);
    const bar = candleToBar(candle);
    const problem = barProblem(bar);
    if (problem !== null) {
      this.counts.invalid++;
      this.log.warn({ symbol: bar.symbol, ts: bar.ts, problem }, 'candle breaks the bar rules; not published');
      return null;
    }
    this.counts[kind]++;
    return bar;
  }

  // ---- REST ---------------------------------------------------------------------------------

  /** The last `warmupBars` closed candles of `symbol`, oldest first. */
  private async warmupCandles(symbol: string, signal: AbortSignal): Promise<Candle[]> {
    // What the stream had shown BEFORE the request: a candle it had seen close was closed when REST
    // answered; a moment seen only after the answer says nothing about the row REST sent.
    const seen = this.latestSeen(symbol);
    // One more row than asked for: the last one may still be forming (then it is held back).
    let rows = await this.request(symbol, { limit: Math.min(this.warmupBars + 1, BINANCE_MAX_LIMIT) }, signal);
    if (this.warmupBars === 0) return [];
    let closed = closedRows(rows, seen);
    // More than one page: page back by candle time (endTime just before the oldest row so far).
    while (closed.length < this.warmupBars && rows.length > 0 && !signal.aborted) {
      const oldest = closed[0]?.openTime ?? rows[0]?.openTime;
      if (oldest === undefined) break;
      rows = await this.request(symbol, { limit: Math.min(this.warmupBars - closed.length, BINANCE_MAX_LIMIT), endTime: oldest - 1 }, signal);
      const older = rows.filter((r) => r.openTime < oldest).sort((a, b) => a.openTime - b.openTime);
      if (older.length === 0) break;
      closed = [...older, ...closed];
    }
    const out = closed.slice(-this.warmupBars);
    this.log.info({ symbol, bars: out.length, asked: this.warmupBars }, 'warm-up candles from REST');
    return out;
  }

  /** The candles of `symbol` with open times in [from, until), oldest first, paged by `restPageLimit`. */
  private async fetchRange(symbol: string, from: number, until: number, signal: AbortSignal): Promise<Candle[]> {
    const out: Candle[] = [];
    let start = from;
    while (start < until && !signal.aborted) {
      const rows = await this.request(symbol, { limit: this.pageLimit, startTime: start, endTime: until - 1 }, signal);
      const page = rows.filter((r) => r.openTime >= start && r.openTime < until).sort((a, b) => a.openTime - b.openTime);
      out.push(...page);
      const lastRow = page[page.length - 1];
      if (rows.length < this.pageLimit || lastRow === undefined) break;
      start = lastRow.openTime + CANDLE_MS;
    }
    // Candles the exchange does not have (it was down) stay a gap: the pipeline accepts gaps.
    this.log.info({ symbol, from, until, bars: out.length, missing: Math.round((until - from) / CANDLE_MS) }, 'gap filled from REST');
    return out;
  }

  /**
   * One `/api/v3/klines` request, retried with backoff while the failure may pass (network, 5xx,
   * 429/418 with their `Retry-After`); a 4xx answer is a {@link BinanceRequestError}. Resolves with []
   * when `signal` aborts.
   */
  private async request(symbol: string, params: { limit: number; startTime?: number; endTime?: number }, signal: AbortSignal): Promise<Candle[]> {
    const url = `${this.restUrl}/api/v3/klines?${klinesQuery(symbol, params)}`;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) return [];
      let retryAfterMs: number | null = null;
      let failure: unknown;
      try {
        const response = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.requestTimeoutMs)]) });
        const text = await response.text();
        if (response.ok) {
          const candles = parseRestKlines(symbol, JSON.parse(text) as unknown);
          this.restOk = true;
          return candles;
        }
        if (response.status === 429 || response.status === 418 || response.status >= 500) {
          const header = Number(response.headers.get('retry-after'));
          retryAfterMs = Number.isFinite(header) && header > 0 ? header * 1000 : null;
          failure = new Error(`HTTP ${response.status} ${text.slice(0, 200)}`);
        } else {
          const error = new BinanceRequestError(`${url} answered ${response.status}: ${text.slice(0, 300)}`);
          // At start this is a setting to fix (a symbol or --rest-url).
          if (!this.live) {
            throw new StartupError('--symbols/--rest-url', `pipeline feed: ${error.message}; check the symbol (Binance spot, e.g. BTCUSDT) and --rest-url`, { cause: error });
          }
          throw error;
        }
      } catch (err) {
        if (err instanceof PipelineError) throw err;
        if (signal.aborted) return [];
        failure = err;
      }
      if (!this.restOk && attempt + 1 >= this.initialMaxAttempts) {
        throw new StartupError('--rest-url', `pipeline feed: cannot get klines from ${this.restUrl} (${describe(failure)}); check --rest-url and the network`, { cause: failure });
      }
      const delay = retryAfterMs ?? this.backoff.delayMs(attempt + 1);
      this.log.warn({ err: failure, symbol, attempt: attempt + 1, delayMs: Math.round(delay) }, 'klines request failed; retrying');
      await this.sleep(delay, signal);
    }
  }

  private latestSeen(symbol: string): { eventTime: number; openTime: number } | null {
    const openTime = this.latestOpenTime.get(symbol);
    if (openTime === undefined && !Number.isFinite(this.latestEventTime)) return null;
    return { eventTime: this.latestEventTime, openTime: openTime ?? -Infinity };
  }

  // ---- stream -------------------------------------------------------------------------------

  private connect(): void {
    if (this.closed) return;
    const url = `${this.wsUrl}${streamPath(this.symbols)}`;
    const socket = new WebSocket(url, { handshakeTimeout: this.requestTimeoutMs });
    this.socket = socket;
    socket.on('open', () => {
      if (this.everOpened) this.counts.reconnects++;
      this.everOpened = true;
      this.log.info({ url, symbols: this.symbols.length }, 'kline stream connected');
      this.touch(socket);
      this.wake();
    });
    socket.on('message', (data: WebSocket.RawData) => {
      this.touch(socket);
      this.failedAttempts = 0; // a working connection: the next disconnect starts the backoff over
      let event: KlineEvent | null;
      try {
        event = parseStreamMessage(rawText(data));
      } catch (err) {
        this.log.warn({ err }, 'kline stream frame ignored');
        return;
      }
      if (event === null || !this.symbols.includes(event.candle.symbol)) return;
      this.latestEventTime = Math.max(this.latestEventTime, event.eventTime);
      const seen = this.latestOpenTime.get(event.candle.symbol) ?? -Infinity;
      this.latestOpenTime.set(event.candle.symbol, Math.max(seen, event.candle.openTime));
      if (event.closed) {
        this.queue.push(event);
        this.wake();
      }
    });
    socket.on('ping', () => this.touch(socket));
    socket.on('unexpected-response', (_req, res) => {
      this.log.warn({ url, status: res.statusCode }, 'kline stream upgrade refused');
      socket.terminate();
    });
    socket.on('error', (err: Error) => {
      this.log.warn({ err, url }, 'kline stream error');
    });
    socket.on('close', (code: number) => {
      if (this.socket === socket) this.socket = null;
      this.clearIdle();
      if (this.closed) return;
      this.failedAttempts++;
      if (!this.everOpened && this.failedAttempts >= this.initialMaxAttempts) {
        this.fatal = new StartupError('--ws-url', `pipeline feed: cannot open the kline stream at ${this.wsUrl} after ${this.failedAttempts} attempts; check --ws-url and the network`);
        this.wake();
        return;
      }
      const delay = this.backoff.delayMs(this.failedAttempts);
      this.log.warn({ code, attempt: this.failedAttempts, delayMs: Math.round(delay) }, 'kline stream closed; reconnecting');
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        this.connect();
      }, delay);
      this.reconnectTimer.unref();
    });
  }

  /** Restarts the idle watch: a stream silent for `idleTimeoutMs` is cut and reconnected. */
  private touch(socket: WebSocket): void {
    this.clearIdle();
    this.idleTimer = setTimeout(() => {
      this.log.warn({ idleTimeoutMs: this.idleTimeoutMs }, 'kline stream silent; reconnecting');
      socket.terminate();
    }, this.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Exponential backoff with jitter: between half and all of min(max, first × 2^attempt). */
  private close(): void {
    this.closed = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.clearIdle();
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) socket.terminate();
    this.wake();
  }

  // ---- waiting ------------------------------------------------------------------------------

  /** Waits until `ready()` or `signal` aborts; throws the stream's fatal error. */
  private async waitFor(ready: () => boolean, signal: AbortSignal): Promise<void> {
    for (;;) {
      if (this.fatal !== null) throw this.fatal;
      if (signal.aborted || ready()) return;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function checkUrl(url: string, protocols: readonly string[], flag: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError(`${flag} ${JSON.stringify(url)} is not a URL`);
  }
  if (!protocols.includes(parsed.protocol)) throw new ValidationError(`${flag} must start with ${protocols.join(' or ')}, got ${JSON.stringify(url)}`);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
