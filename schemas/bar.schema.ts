import { z } from 'zod';

/** Timeframes the pipeline knows, with their length in milliseconds. */
export const TIMEFRAME_MS = { '5m': 300_000, '30m': 1_800_000 } as const;
export type Timeframe = keyof typeof TIMEFRAME_MS;

/** 1 to 32 of `A-Z a-z 0-9 . _ - /`. */
export const SYMBOL_PATTERN = /^[A-Za-z0-9._\-/]{1,32}$/;

/**
 * Bar times end before the year 10000 (9999-12-31T23:59:59.999Z). A larger `ts` is almost always
 * micro- or nanoseconds; unbounded, it reached code that formats it as a date and threw there.
 */
export const MAX_BAR_TS = 253_402_300_799_999;

// zod 4 numbers are finite by construction (and JSON cannot carry Infinity or NaN).
const price = (name: string) =>
  z.number({ error: `${name} must be a finite number` }).positive(`${name} must be greater than 0`);

/**
 * One OHLCV bar, the input message of the pipeline (wire contract v1). `ts` is the bar's open time in
 * epoch milliseconds (UTC) and a multiple of the timeframe.
 */
export const BarSchema = z
  .object({
    symbol: z
      .string({ error: 'symbol must be a string' })
      .regex(SYMBOL_PATTERN, 'symbol must be 1 to 32 of A-Z a-z 0-9 . _ - /'),
    timeframe: z.enum(['5m', '30m'], { error: 'timeframe must be "5m" or "30m"' }),
    ts: z
      .number({ error: 'ts must be a number' })
      .int('ts must be an integer (epoch milliseconds)')
      .nonnegative('ts must not be negative')
      .max(MAX_BAR_TS, 'ts must be epoch milliseconds before the year 10000; a larger value is usually micro- or nanoseconds'),
    open: price('open'),
    high: price('high'),
    low: price('low'),
    close: price('close'),
    volume: z
      .number({ error: 'volume must be a finite number' })
      .nonnegative('volume must not be negative'),
  })
  .superRefine((bar, ctx) => {
    const step = TIMEFRAME_MS[bar.timeframe];
    if (bar.ts % step !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['ts'],
        message: `ts ${bar.ts} is not a multiple of ${bar.timeframe} (${step} ms): send the bar's open time`,
      });
    }
    if (!(bar.low <= Math.min(bar.open, bar.close))) {
      ctx.addIssue({
        code: 'custom',
        path: ['low'],
        message: `low ${bar.low} must be <= min(open, close) ${Math.min(bar.open, bar.close)}`,
      });
    }
    if (!(Math.max(bar.open, bar.close) <= bar.high)) {
      ctx.addIssue({
        code: 'custom',
        path: ['high'],
        message: `high ${bar.high} must be >= max(open, close) ${Math.max(bar.open, bar.close)}`,
      });
    }
  });

export type Bar = z.infer<typeof BarSchema>;

/** The price and volume fields of a bar, for code that needs no identity or time. */
export type Ohlcv = Pick<Bar, 'open' | 'high' | 'low' | 'close' | 'volume'>;

/** The identity used for dedupe and as `messageId`: `<symbol>:<timeframe>:<ts>`. */
export function barId(bar: Pick<Bar, 'symbol' | 'timeframe' | 'ts'>): string {
  return `${bar.symbol}:${bar.timeframe}:${bar.ts}`;
}

/**
 * A 30m bar built by the resampler: a {@link Bar} with timeframe `30m` and `bars`, the number of 5m
 * bars it aggregates (6 unless the feed had gaps).
 */
export const Bar30mSchema = BarSchema.and(
  z.object({
    timeframe: z.literal('30m'),
    bars: z.number().int().min(1).max(6).optional(),
  }),
);
export type Bar30m = z.infer<typeof Bar30mSchema>;

/** A 5m bar: the input of the tactical worker and the resampler. */
export const Bar5mSchema = BarSchema.refine((b) => b.timeframe === '5m', {
  path: ['timeframe'],
  message: 'timeframe must be "5m" for bars routed as bars.5m.<symbol>',
});
