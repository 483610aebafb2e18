import type { ConsumeMessage } from 'amqplib';
import type Redis from 'ioredis';
import { Bar5mSchema, type Bar } from '../../../schemas/bar.schema';
import type { StrategicContext } from '../../../schemas/strategic-context.schema';
import type { HandleResult } from '../../../src/broker/base-consumer';
import type { Publisher } from '../../../src/broker/publisher';
import {
  BarStageConsumer,
  type StageOutput,
  type StageState,
} from '../../../src/consumers/bar-stage-consumer';
import { ContextBufferFlow, type ContextLookup } from '../../../src/flows/context-buffer-flow';
import { acceptingStore, detachedConnection, FakeHashRedis, stageOptions } from '../../fixtures/consumers';


const WAIT_MS = 400;
const M30 = 1_800_000;
/** A 5m bar that completes a 30m period (its close is a multiple of 30m). */
const BAR: Bar = {
  symbol: 'AAA',
  timeframe: '5m',
  ts: 1_700_001_000_000 - 300_000,
  open: 1,
  high: 1,
  low: 1,
  close: 1,
  volume: 1,
};
const CLOSE = BAR.ts + 300_000;

/**
 * Like the tactical stage: each processing of the bar "sends its 30m bar" (the strategic side
 * answers some time later, as after a reconnection) and waits for that bar's context.
 */
class WaitingStage extends BarStageConsumer<StageState, Bar> {
  readonly lookups: ContextLookup[] = [];
  processings = 0;
  /** Called when a processing sends its 30m bar. */
  onSend: (processing: number) => void = () => undefined;

  constructor(readonly contexts: ContextBufferFlow) {
    super(
      detachedConnection(),
      { publish: () => Promise.resolve() } as unknown as Publisher,
      acceptingStore<StageState>(),
      Bar5mSchema,
      stageOptions(),
    );
  }

  protected override async process(
    bar: Bar,
    _state: StageState | null,
    _msg: ConsumeMessage,
    _receivedAt: number,
    superseded?: AbortSignal,
  ): Promise<StageOutput<StageState>> {
    this.onSend(++this.processings);
    const lookup = await this.contexts.lookup(bar.symbol, CLOSE, superseded);
    this.lookups.push(lookup);
    return { state: { lastTs: bar.ts }, emissions: [] };
  }
}

const message = (redelivered: boolean): ConsumeMessage =>
  ({
    content: Buffer.from(JSON.stringify(BAR)),
    properties: {},
    fields: { redelivered, routingKey: `bars.5m.${BAR.symbol}`, exchange: 'market.bars' },
  }) as unknown as ConsumeMessage;

/**
 * crash-recovery, close_all_connections: the 5m bar completing a 30m bar was waiting for that
 * bar's context when the connection closed, its 30m bar lost with the channel. The old delivery
 * kept waiting (and held the symbol's lane) until the wait ran out, which recorded the period as
 * timed out; the redelivered bar then got the previous context at once, marked stale, although
 * its re-sent 30m bar's context came soon after.
 */
describe('BarStageConsumer: a context wait whose channel is lost', () => {
  it('is abandoned at once, and the redelivered bar waits for its context afresh', async () => {
    const contexts = new ContextBufferFlow({
      redis: new FakeHashRedis() as unknown as Redis,
      prefix: 'p:',
      contextWaitMs: WAIT_MS,
    });
    await contexts.put({ symbol: 'AAA', bar_close_ts: CLOSE - M30 } as unknown as StrategicContext); // the previous context
    const stage = new WaitingStage(contexts);
    const handle = (m: ConsumeMessage): Promise<HandleResult> =>
      (stage as unknown as { handle(m: ConsumeMessage): Promise<HandleResult> }).handle(m);
    // Only the redelivery's 30m bar reaches the strategic side, which answers 100 ms later.
    stage.onSend = (n) => {
      if (n === 2)
        setTimeout(
          () =>
            void contexts.put({
              symbol: 'AAA',
              bar_close_ts: CLOSE,
            } as unknown as StrategicContext),
          100,
        );
    };

    const first = handle(message(false));
    first.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    const lostAt = Date.now();
    (stage as unknown as { reset(): void }).reset(); // the channel is gone
    await expect(first).rejects.toMatchObject({ code: 'SUPERSEDED' });
    expect(Date.now() - lostAt).toBeLessThan(WAIT_MS / 2); // not held until the wait runs out

    const second = await handle(message(true));
    expect(second.kind).toBe('commit');
    expect(stage.lookups).toHaveLength(1); // the abandoned wait gave no answer
    expect(stage.lookups[0]!.stale).toBe(false);
    expect((stage.lookups[0]!.context as unknown as { bar_close_ts: number }).bar_close_ts).toBe(
      CLOSE,
    );
  });
  it('ends the waits of many symbols at once and leaves no waiter behind', async () => {
    const contexts = new ContextBufferFlow({
      redis: new FakeHashRedis() as unknown as Redis,
      prefix: 'p:',
      contextWaitMs: WAIT_MS,
    });
    const stage = new WaitingStage(contexts);
    const handle = (m: ConsumeMessage): Promise<HandleResult> =>
      (stage as unknown as { handle(m: ConsumeMessage): Promise<HandleResult> }).handle(m);
    const symbols = Array.from({ length: 30 }, (_, i) => `S${i}`);
    const waits = symbols.map((symbol) =>
      handle({
        content: Buffer.from(JSON.stringify({ ...BAR, symbol })),
        properties: {},
        fields: { redelivered: false, routingKey: `bars.5m.${symbol}`, exchange: 'market.bars' },
      } as unknown as ConsumeMessage),
    );
    for (const w of waits) w.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    (stage as unknown as { reset(): void }).reset();
    for (const w of waits) await expect(w).rejects.toMatchObject({ code: 'SUPERSEDED' });
    expect(symbols.map((s) => contexts.held(s).waitedFor)).toEqual(symbols.map(() => 0)); // no waiter left behind
  });
});
