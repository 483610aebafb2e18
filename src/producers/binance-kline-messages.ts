/**
 * Binance's public kline formats, parsed into bars: the REST rows of `/api/v3/klines` and the
 * events of the combined stream `/stream?streams=<symbol>@kline_5m/...`. Pure: no network, no clock.
 *
 * Formats (Binance spot API documentation, "Kline/Candlestick data" and "Kline/Candlestick Streams"):
 * - REST row: `[openTime, "open", "high", "low", "close", "volume", closeTime, "quoteVolume", trades,
 *   "takerBuyBase", "takerBuyQuote", "ignore"]`, times in epoch milliseconds, prices as strings.
 * - stream message: `{"stream":"btcusdt@kline_5m","data":{"e":"kline","E":eventTime,"s":"BTCUSDT",
 *   "k":{"t":openTime,"T":closeTime,"s":"BTCUSDT","i":"5m","o":"…","c":"…","h":"…","l":"…","v":"…",
 *   "x":isClosed,…}}}`.
 */
import { z } from 'zod';
import { BarSchema, TIMEFRAME_MS, type Bar, type Ohlcv } from '../../schemas/bar.schema';
import { ValidationError } from '../errors';

/** The one interval the feed asks for: the pipeline's input timeframe. */
export const BINANCE_INTERVAL = '5m';
/** Length of one 5m candle in milliseconds. */
export const CANDLE_MS = TIMEFRAME_MS['5m'];
/** Most rows `/api/v3/klines` returns for one request (Binance's documented maximum of `limit`). */
export const BINANCE_MAX_LIMIT = 1000;

/** A candle as Binance gives it, numbers parsed. */
export interface Candle extends Ohlcv {
  symbol: string;
  /** Open time, epoch ms. */
  openTime: number;
  /** Close time, epoch ms (Binance: open time + 5 min − 1 ms). */
  closeTime: number;
}

/** A kline event of the stream: the candle, whether it is closed, and the event time. */
export interface KlineEvent {
  candle: Candle;
  closed: boolean;
  /** Binance's event time `E` (the source's clock, never ours). */
  eventTime: number;
}

const decimal = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n) || (typeof v === 'string' && v.trim() === '')) {
    ctx.addIssue({ code: 'custom', message: `not a number: ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return n;
});
const time = z.number().int().nonnegative();

const RestRowSchema = z.tuple([time, decimal, decimal, decimal, decimal, decimal, time], { error: 'a kline row starts [openTime, open, high, low, close, volume, closeTime, ...]' }).rest(z.unknown());

const StreamMessageSchema = z.object({
  stream: z.string(),
  data: z.object({
    e: z.literal('kline'),
    E: time,
    s: z.string(),
    k: z.object({
      t: time,
      T: time,
      s: z.string(),
      i: z.string(),
      o: decimal,
      c: decimal,
      h: decimal,
      l: decimal,
      v: decimal,
      x: z.boolean(),
    }),
  }),
});

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') + ': ' : ''}${i.message}`).join('; ');
}

/** Parses the body of `/api/v3/klines` for `symbol`; throws a {@link ValidationError} naming the bad row. */
export function parseRestKlines(symbol: string, body: unknown): Candle[] {
  if (!Array.isArray(body)) {
    throw new ValidationError(`klines of ${symbol}: expected a JSON array of rows, got ${JSON.stringify(body).slice(0, 200)}`);
  }
  return body.map((row: unknown, index) => {
    const parsed = RestRowSchema.safeParse(row);
    if (!parsed.success) throw new ValidationError(`klines of ${symbol}, row ${index}: ${describeIssues(parsed.error)}`);
    const [openTime, open, high, low, close, volume, closeTime] = parsed.data;
    return { symbol, openTime, closeTime, open, high, low, close, volume };
  });
}

/**
 * Parses one text frame of the combined stream. Returns null for a frame that is not a kline event
 * (Binance sends none on this stream, but a mirror may send its own notices); throws a
 * {@link ValidationError} for a kline event that does not parse.
 */
export function parseStreamMessage(text: string): KlineEvent | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ValidationError(`stream frame is not JSON: ${text.slice(0, 200)}`);
  }
  const data = (json as { data?: { e?: unknown } } | null)?.data;
  if (typeof data !== 'object' || data === null || data.e !== 'kline') return null;
  const parsed = StreamMessageSchema.safeParse(json);
  if (!parsed.success) throw new ValidationError(`kline event does not parse: ${describeIssues(parsed.error)}`);
  const { E, k } = parsed.data.data;
  if (k.i !== BINANCE_INTERVAL) throw new ValidationError(`kline event of ${k.s} has interval ${k.i}, expected ${BINANCE_INTERVAL}`);
  return {
    candle: { symbol: k.s, openTime: k.t, closeTime: k.T, open: k.o, high: k.h, low: k.l, close: k.c, volume: k.v },
    closed: k.x,
    eventTime: E,
  };
}

/** The wire contract's 5m bar of a candle: `ts` is the candle's open time. */
export function candleToBar(candle: Candle): Bar {
  return {
    symbol: candle.symbol,
    timeframe: '5m',
    ts: candle.openTime,
    open: candle.open,
    high: candle.high,
    low: candle.low,
    close: candle.close,
    volume: candle.volume,
  };
}

/** Null when `bar` satisfies the wire contract, else why not. */
export function barProblem(bar: Bar): string | null {
  const parsed = BarSchema.safeParse(bar);
  return parsed.success ? null : parsed.error.issues.map((i) => i.message).join('; ');
}

/**
 * The warm-up rows of a `/api/v3/klines` answer without `startTime`: the last row may be the candle
 * still forming, and REST does not say. A row followed by another one is closed. The last row counts
 * as closed only when the source had already shown a later moment when the request was sent: a
 * stream event whose event time is past the row's close time, or a candle that opened after it
 * (`latestSeen`, from the stream, taken before the request).
 * Otherwise it is held back: the stream's close of that candle, or the gap fill before the next
 * closed candle, publishes it with its final values. Our own clock is never consulted.
 */
export function closedRows(rows: readonly Candle[], latestSeen: { eventTime: number; openTime: number } | null): Candle[] {
  const sorted = [...rows].sort((a, b) => a.openTime - b.openTime);
  const last = sorted[sorted.length - 1];
  if (last === undefined) return [];
  const lastClosed = latestSeen !== null && (latestSeen.eventTime > last.closeTime || latestSeen.openTime > last.openTime);
  return lastClosed ? sorted : sorted.slice(0, -1);
}

/** The query string of a `/api/v3/klines` request. */
export function klinesQuery(symbol: string, params: { limit: number; startTime?: number; endTime?: number }): string {
  const q = new URLSearchParams({ symbol, interval: BINANCE_INTERVAL, limit: String(params.limit) });
  if (params.startTime !== undefined) q.set('startTime', String(params.startTime));
  if (params.endTime !== undefined) q.set('endTime', String(params.endTime));
  return q.toString();
}

/** The combined-stream path for `symbols`: `/stream?streams=btcusdt@kline_5m/ethusdt@kline_5m`. */
export function streamPath(symbols: readonly string[]): string {
  return `/stream?streams=${symbols.map((s) => `${s.toLowerCase()}@kline_${BINANCE_INTERVAL}`).join('/')}`;
}
