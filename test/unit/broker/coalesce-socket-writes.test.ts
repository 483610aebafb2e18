import type { ChannelModel } from 'amqplib';
import { coalesceSocketWrites } from '../../../src/broker/publisher';

/** amqplib's multiplexer pass is corked, so the frames it writes leave in one system call. */
describe('coalesceSocketWrites', () => {
  function fakeModel(): { model: ChannelModel; log: string[]; mux: { _readIncoming(): void } } {
    const log: string[] = [];
    const out = {
      cork: () => log.push('cork'),
      uncork: () => log.push('uncork'),
      write: (s: string) => log.push(`write ${s}`),
    };
    const mux = {
      out,
      _readIncoming(): void {
        out.write('a');
        out.write('b');
      },
    };
    return { model: { connection: { muxer: mux } } as unknown as ChannelModel, log, mux };
  }

  it('corks the socket around each multiplexer pass, once however often it is applied', () => {
    const { model, log, mux } = fakeModel();
    coalesceSocketWrites(model);
    coalesceSocketWrites(model);
    mux._readIncoming();
    expect(log).toEqual(['cork', 'write a', 'write b', 'uncork']);
  });

  it('uncorks when a write throws', () => {
    const { model, log, mux } = fakeModel();
    mux._readIncoming = () => {
      throw new Error('boom');
    };
    coalesceSocketWrites(model);
    expect(() => mux._readIncoming()).toThrow('boom');
    expect(log).toEqual(['cork', 'uncork']);
  });

  it('leaves a model without the expected internals alone, and says so', () => {
    expect(coalesceSocketWrites({} as ChannelModel)).toBe(false);
    const renamed = { connection: { muxer: { out: { cork: () => undefined, uncork: () => undefined }, readIncoming: () => undefined } } };
    expect(coalesceSocketWrites(renamed as unknown as ChannelModel)).toBe(false);
    expect(renamed.connection.muxer).not.toHaveProperty('_readIncoming');
  });

  it('says the patch is in place when applied', () => {
    const { model } = fakeModel();
    expect(coalesceSocketWrites(model)).toBe(true);
    expect(coalesceSocketWrites(model)).toBe(true);
  });
});
