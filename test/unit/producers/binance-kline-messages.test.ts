import {
  candleToBar,
  closedRows,
  klinesQuery,
  parseRestKlines,
  parseStreamMessage,
  streamPath,
  type Candle,
} from '../../../src/producers/binance-kline-messages';
import { ValidationError } from '../../../src/errors';

const T = 1_744_299_600_000; // a multiple of 5 min

// The example row of Binance's documentation, with our times.
const ROW = [T, '0.01634790', '0.80000000', '0.01575800', '0.01577100', '148976.11427815', T + 299_999, '2434.19055334', 308, '1756.87402397', '28.46694368', '0'];

function candle(openTime: number): Candle {
  return { symbol: 'BTCUSDT', openTime, closeTime: openTime + 299_999, open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 };
}

describe('Binance kline parsing', () => {
  it('parses a REST row into a candle with numbers', () => {
    expect(parseRestKlines('BNBBTC', [ROW])).toEqual([
      { symbol: 'BNBBTC', openTime: T, closeTime: T + 299_999, open: 0.0163479, high: 0.8, low: 0.015758, close: 0.015771, volume: 148976.11427815 },
    ]);
  });

  it('names the row and the field of a bad REST answer', () => {
    expect(() => parseRestKlines('X', { code: -1121, msg: 'Invalid symbol.' })).toThrow(ValidationError);
    expect(() => parseRestKlines('X', [ROW, [T, 'abc', '1', '1', '1', '1', T + 299_999]])).toThrow(/row 1: 1: not a number: "abc"/);
    expect(() => parseRestKlines('X', [[T, '1']])).toThrow(/row 0/);
  });

  it('parses a closed and a partial kline event of the combined stream', () => {
    const frame = (x: boolean): string =>
      JSON.stringify({
        stream: 'bnbbtc@kline_5m',
        data: {
          e: 'kline',
          E: T + 123_456,
          s: 'BNBBTC',
          k: { t: T, T: T + 299_999, s: 'BNBBTC', i: '5m', f: 100, L: 200, o: '0.0010', c: '0.0020', h: '0.0025', l: '0.0015', v: '1000', n: 100, x, q: '1.0000', V: '500', Q: '0.500', B: '123456' },
        },
      });
    expect(parseStreamMessage(frame(true))).toEqual({
      candle: { symbol: 'BNBBTC', openTime: T, closeTime: T + 299_999, open: 0.001, high: 0.0025, low: 0.0015, close: 0.002, volume: 1000 },
      closed: true,
      eventTime: T + 123_456,
    });
    expect(parseStreamMessage(frame(false))?.closed).toBe(false);
  });

  it('ignores frames that are not kline events and rejects broken ones', () => {
    expect(parseStreamMessage('{"result":null,"id":1}')).toBeNull();
    expect(() => parseStreamMessage('not json')).toThrow(/not JSON/);
    expect(() => parseStreamMessage(JSON.stringify({ stream: 's', data: { e: 'kline', E: 1, s: 'A', k: { t: 1 } } }))).toThrow(ValidationError);
    const other = { stream: 'a@kline_1m', data: { e: 'kline', E: 1, s: 'A', k: { t: 0, T: 59_999, s: 'A', i: '1m', o: '1', c: '1', h: '1', l: '1', v: '1', x: true } } };
    expect(() => parseStreamMessage(JSON.stringify(other))).toThrow(/interval 1m, expected 5m/);
  });

  it("makes the wire contract's bar with the candle's open time as ts", () => {
    expect(candleToBar(candle(T))).toEqual({ symbol: 'BTCUSDT', timeframe: '5m', ts: T, open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 });
  });

  it('holds back the last REST row unless the stream has shown a later moment', () => {
    const rows = [candle(T + 600_000), candle(T), candle(T + 300_000)];
    expect(closedRows(rows, null).map((c) => c.openTime)).toEqual([T, T + 300_000]);
    // An event inside the last candle: it may still be forming.
    expect(closedRows(rows, { eventTime: T + 700_000, openTime: T + 600_000 })).toHaveLength(2);
    // An event after its close time, or a later candle of the symbol: it is closed.
    expect(closedRows(rows, { eventTime: T + 900_000, openTime: T + 600_000 })).toHaveLength(3);
    expect(closedRows(rows, { eventTime: -Infinity, openTime: T + 900_000 })).toHaveLength(3);
    expect(closedRows([], null)).toEqual([]);
  });

  it('builds the documented request and stream paths', () => {
    expect(klinesQuery('BTCUSDT', { limit: 6 })).toBe('symbol=BTCUSDT&interval=5m&limit=6');
    expect(klinesQuery('BTCUSDT', { limit: 1000, startTime: T, endTime: T + 1 })).toBe(`symbol=BTCUSDT&interval=5m&limit=1000&startTime=${T}&endTime=${T + 1}`);
    expect(streamPath(['BTCUSDT', 'ETHUSDT'])).toBe('/stream?streams=btcusdt@kline_5m/ethusdt@kline_5m');
  });
});
