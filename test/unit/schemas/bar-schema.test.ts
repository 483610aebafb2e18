import { BarSchema, Bar5mSchema } from '../../../schemas/bar.schema';

const good = { symbol: 'BTCUSD', timeframe: '5m', ts: 1700000100000, open: 37000.5, high: 37100.25, low: 36950.75, close: 37050, volume: 123.456 };

function reasons(value: unknown): string[] {
  const parsed = Bar5mSchema.safeParse(value);
  return parsed.success ? [] : parsed.error.issues.map((i) => i.message);
}

describe('BarSchema', () => {
  it('accepts the example bar of the wire contract', () => {
    expect(BarSchema.parse(good)).toEqual(good);
  });
  it.each([
    ['a misaligned ts', { ts: good.ts + 1 }, /not a multiple of 5m/],
    ['high below low', { high: 36900 }, /high 36900 must be >= max/],
    ['a non-positive price', { open: 0 }, /open must be greater than 0/],
    ['a negative volume', { volume: -1 }, /volume must not be negative/],
    ['unknown symbol characters', { symbol: 'BTC USD!' }, /symbol must be 1 to 32 of/],
    ['a symbol longer than 32', { symbol: 'A'.repeat(33) }, /symbol must be 1 to 32 of/],
    ['a string price', { close: '37050' }, /close must be a finite number/],
    ['a 30m bar on the 5m route', { timeframe: '30m', ts: 1700001000000 }, /timeframe must be "5m"/],
  ])('rejects %s with a reason', (_name, patch, pattern) => {
    expect(reasons({ ...good, ...patch }).join('; ')).toMatch(pattern);
  });
});
