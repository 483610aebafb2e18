import { BarBatchSchema } from '../../../schemas/bar-batch.schema';
import type { Bar } from '../../../schemas/bar.schema';
import { batchBySymbol } from '../../../src/cli/replay-source';

const T0 = Date.UTC(2024, 0, 1);
const M5 = 300_000;

function bar(symbol: string, slot: number): Bar {
  return { symbol, timeframe: '5m', ts: T0 + slot * M5, open: 10, high: 11, low: 9, close: 10.5, volume: 1 };
}

async function collect(source: AsyncIterable<Bar[]>): Promise<Bar[][]> {
  const out: Bar[][] = [];
  for await (const b of source) out.push(b);
  return out;
}

describe('batchBySymbol', () => {
  it('keeps each symbol in source order, every bar once, batches full until the end', async () => {
    const interleaved: Bar[] = [];
    for (let slot = 0; slot < 10; slot++) for (const s of ['B', 'A', 'C']) if (!(s === 'C' && slot > 3)) interleaved.push(bar(s, slot));
    const batches = await collect(batchBySymbol(interleaved, 4));
    for (const batch of batches) {
      expect(new Set(batch.map((b) => b.symbol)).size).toBe(1);
      expect(batch.length).toBeLessThanOrEqual(4);
      expect(BarBatchSchema.safeParse({ v: 1, symbol: batch[0]!.symbol, bars: batch }).success).toBe(true);
    }
    for (const s of ['A', 'B', 'C']) {
      const got = batches.flat().filter((b) => b.symbol === s).map((b) => b.ts);
      expect(got).toEqual(interleaved.filter((b) => b.symbol === s).map((b) => b.ts));
    }
    // Full batches leave while reading, the remainders at the end.
    expect(batches.map((b) => `${b[0]!.symbol}${b.length}`)).toEqual(['B4', 'A4', 'C4', 'B4', 'A4', 'A2', 'B2']);
  });
});

describe('BarBatchSchema', () => {
  const ok = { v: 1, symbol: 'A', bars: [bar('A', 0), bar('A', 1)] };

  it('accepts consecutive bars of one symbol', () => {
    expect(BarBatchSchema.safeParse(ok).success).toBe(true);
  });

  it.each([
    ['another symbol inside', { ...ok, bars: [bar('A', 0), bar('B', 1)] }, 'one symbol per batch'],
    ['bars not oldest first', { ...ok, bars: [bar('A', 1), bar('A', 0)] }, 'oldest first'],
    ['a repeated bar', { ...ok, bars: [bar('A', 1), bar('A', 1)] }, 'oldest first'],
    ['no bar', { ...ok, bars: [] }, 'at least one bar'],
    ['a 30m bar', { ...ok, bars: [{ ...bar('A', 0), timeframe: '30m', ts: T0 }] }, 'timeframe must be "5m"'],
    ['an invalid bar', { ...ok, bars: [{ ...bar('A', 0), low: 20 }] }, 'low 20'],
  ])('rejects %s', (_what, body, message) => {
    const r = BarBatchSchema.safeParse(body);
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.message).join('; ')).toContain(message);
  });
});
