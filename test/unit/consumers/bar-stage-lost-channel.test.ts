import type { ConsumeMessage } from 'amqplib';
import { Bar5mSchema, type Bar } from '../../../schemas/bar.schema';
import type { HandleResult } from '../../../src/broker/base-consumer';
import type { Publisher } from '../../../src/broker/publisher';
import {
  BarStageConsumer,
  type StageOutput,
  type StageState,
} from '../../../src/consumers/bar-stage-consumer';
import { PublishError } from '../../../src/errors';
import { acceptingStore, detachedConnection, stageOptions } from '../../fixtures/consumers';

class EchoStage extends BarStageConsumer<StageState, Bar> {
  protected override process(bar: Bar): Promise<StageOutput<StageState>> {
    return Promise.resolve({
      state: { lastTs: bar.ts },
      emissions: [
        {
          exchange: 'x',
          routingKey: `r.${bar.symbol}`,
          body: bar,
          messageId: `${bar.symbol}:5m:${bar.ts}`,
        },
      ],
    });
  }
}

/**
 * A lost channel resets the stage while a symbol's bars wait for their confirms: the first bar's
 * hand-over fails, so the next bar's wait stops before reaching its own confirm, which then fails
 * too (the channel closed). That failure was an unhandled rejection, which ends the worker
 * (crash-recovery test, close_all_connections).
 */
describe('BarStageConsumer when the channel is lost with confirms outstanding', () => {
  it('fails the waiting bars without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const rejecters: ((err: Error) => void)[] = [];
      const publisher = {
        publish: () => new Promise<void>((_resolve, reject) => rejecters.push(reject)),
      } as unknown as Publisher;
      const store = acceptingStore<StageState>();
      const consumer = new EchoStage(
        detachedConnection(),
        publisher,
        store,
        Bar5mSchema,
        stageOptions(),
      );
      const bar = (i: number): Bar => ({
        symbol: 'AAA',
        timeframe: '5m',
        ts: 1_700_000_100_000 + i * 300_000,
        open: 1,
        high: 1,
        low: 1,
        close: 1,
        volume: 1,
      });
      const message = (b: Bar): ConsumeMessage =>
        ({
          content: Buffer.from(JSON.stringify(b)),
          properties: {},
          fields: {
            redelivered: false,
            routingKey: `bars.5m.${b.symbol}`,
            exchange: 'market.bars',
          },
        }) as unknown as ConsumeMessage;
      const handle = (m: ConsumeMessage): Promise<HandleResult> =>
        (consumer as unknown as { handle(m: ConsumeMessage): Promise<HandleResult> }).handle(m);
      const first = await handle(message(bar(0)));
      const second = await handle(message(bar(1)));
      expect(rejecters).toHaveLength(2);
      (consumer as unknown as { reset(): void }).reset(); // the channel is gone
      rejecters[0]!(new PublishError('broker did not confirm AAA:5m:0: channel closed'));
      await new Promise((r) => setTimeout(r, 20));
      rejecters[1]!(new PublishError('broker did not confirm AAA:5m:1: channel closed'));
      for (const r of [first, second]) {
        expect(r.kind).toBe('commit');
        await expect(r.kind === 'commit' ? r.committed : Promise.resolve()).rejects.toBeDefined();
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
