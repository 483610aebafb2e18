import { IntegratedResultSchema, type IntegratedResult } from '../../schemas/integrated-result.schema';
import { QUEUE_RESULTS } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, interleave, publishBars, QueueCollector, waitFor, type TestVhost } from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(180_000);

describe('pipeline end to end', () => {
  let vhost: TestVhost;
  let pipeline: TestPipeline;
  let results: QueueCollector;

  beforeAll(async () => {
    vhost = await createVhost('e2e');
    pipeline = await startPipeline(vhost.url);
    await waitHealthy(pipeline);
    results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    await results.start();
  });

  afterAll(async () => {
    await results?.stop();
    await pipeline?.stop();
    await clearRedis(pipeline.prefix);
    await vhost?.dispose();
  });

  it('publishes exactly one valid result per bar, in ts order per symbol, without look-ahead', async () => {
    const symbols = ['BTCUSD', 'ETH.USD', 'SOL-USD'];
    const markets = symbols.map((symbol, i) =>
      generateSyntheticMarket({ seed: 100 + i, symbol, bars: 1200, gapProbability: i === 2 ? 0.03 : 0 }).bars,
    );
    const bars = interleave(markets);
    await publishBars(vhost.url, bars);
    await waitFor(() => results.messages.length >= bars.length, 120_000, `${bars.length} results`);
    // Nothing more arrives: exactly one per bar.
    await new Promise((r) => setTimeout(r, 500));
    expect(results.messages).toHaveLength(bars.length);

    const bySymbol = new Map<string, IntegratedResult[]>();
    for (const message of results.messages) {
      const parsed = IntegratedResultSchema.parse(JSON.parse(message.body));
      expect(message.messageId).toBe(`${parsed.symbol}:5m:${parsed.ts}`);
      expect(message.routingKey).toBe(`results.${parsed.symbol}`);
      const list = bySymbol.get(parsed.symbol) ?? [];
      list.push(parsed);
      bySymbol.set(parsed.symbol, list);
    }
    for (const [i, symbol] of symbols.entries()) {
      const got = bySymbol.get(symbol) ?? [];
      expect(got.map((r) => r.ts)).toEqual(markets[i]!.map((b) => b.ts));
      for (const r of got) {
        expect(r.close_ts).toBe(r.ts + 300_000);
        // A context, when there is one, closed on a 30m boundary at or before the bar.
        const closeTs = r.strategic.bar_close_ts ?? r.close_ts - (r.close_ts % 1_800_000);
        expect(closeTs).toBeLessThanOrEqual(r.close_ts);
        expect(closeTs % 1_800_000).toBe(0);
        expect(r.strategic.stale).toBe(false);
      }
      // Indicators appear after their warm-up (SMA20 on the 20th bar, MACD signal on the 34th)...
      expect(got.slice(0, 19).every((r) => r.indicators.sma20 === null)).toBe(true);
      expect(got.slice(40).every((r) => r.indicators.sma20 !== null && r.indicators.macd_signal !== null)).toBe(true);
      // ...and the agents decide every bar.
      expect(got.every((r) => r.actions.tactical !== null && r.model_version !== null && !r.degraded.includes('agents'))).toBe(true);
      // The regime is read once 48 thirty-minute bars have closed; probabilities sum to 1.
      const late = got.slice(-300);
      expect(late.every((r) => r.strategic.regime !== null && r.strategic.confidence !== null)).toBe(true);
      for (const r of late) {
        const p = r.strategic.regime_probabilities!;
        expect(p.BULL + p.BEAR + p.SIDEWAYS + p.VOLATILE).toBeCloseTo(1, 9);
      }
      // Once the first 30m bar has closed, every result carries a context.
      const withContext = got.filter((r) => r.strategic.bar_close_ts !== null).length;
      expect(withContext).toBeGreaterThan(got.length - 7);
    }
  });
});
