/**
 * The publisher patches a private part of amqplib: it corks the socket around each pass of the
 * connection's frame multiplexer (`connection.muxer._readIncoming`, see coalesceSocketWrites in
 * src/broker/publisher.ts), so that the frames of one pass leave in one system call. Unit tests
 * check the patch against a fake; this one checks it against the installed amqplib and the real
 * broker, so that an upgrade that renames or stops calling the method fails here instead of
 * silently switching the optimisation off.
 */
import * as amqp from 'amqplib';
import { coalesceSocketWrites } from '../../src/broker/publisher';
import { createVhost, type TestVhost } from '../fixtures/broker';

jest.setTimeout(60_000);

let vhost: TestVhost;
let model: amqp.ChannelModel | null = null;

beforeEach(async () => {
  vhost = await createVhost('amqplib-internals');
});

afterEach(async () => {
  await model?.close().catch(() => undefined);
  model = null;
  await vhost.dispose();
});

interface Socketish {
  cork(): void;
  uncork(): void;
}

describe('the amqplib write-coalescing patch on the installed amqplib', () => {
  it('finds the multiplexer it expects, and the publishes go through corked passes', async () => {
    model = await amqp.connect(vhost.url);
    const internals = (model as unknown as { connection?: { muxer?: { out?: Socketish; _readIncoming?: unknown } } }).connection;
    // What the patch relies on: a multiplexer with `_readIncoming` writing to a corkable stream.
    expect(typeof internals?.muxer?._readIncoming).toBe('function');
    const out = internals?.muxer?.out as Socketish;
    expect(typeof out.cork).toBe('function');
    expect(coalesceSocketWrites(model)).toBe(true);
    expect(coalesceSocketWrites(model)).toBe(true); // idempotent

    let corks = 0;
    let uncorks = 0;
    const cork = out.cork.bind(out);
    const uncork = out.uncork.bind(out);
    out.cork = () => {
      corks++;
      cork();
    };
    out.uncork = () => {
      uncorks++;
      uncork();
    };

    const channel = await model.createConfirmChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true });
    for (let i = 0; i < 200; i++) channel.sendToQueue(queue, Buffer.from(String(i)), { messageId: `m${i}` });
    await channel.waitForConfirms();
    // amqplib still writes through the patched pass: without it (renamed, or no longer called),
    // the socket is never corked here.
    expect(corks).toBeGreaterThan(0);
    expect(uncorks).toBe(corks);
    const { messageCount } = await channel.checkQueue(queue);
    expect(messageCount).toBe(200);
    await channel.close();
  });

});
