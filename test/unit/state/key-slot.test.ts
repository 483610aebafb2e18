import { keySlot, symbolKeyPart } from '../../../src/state/keys';
import { CLUSTER_MARKER_TAGS } from '../../../src/state/state-epoch-store';

describe('Redis Cluster key slots', () => {
  it('matches the slots Redis computes (values from CLUSTER KEYSLOT)', () => {
    // The examples of the CLUSTER KEYSLOT documentation, and the CRC16/XMODEM check value 0x31C3.
    expect(keySlot('somekey')).toBe(11058);
    expect(keySlot('foo{hash_tag}')).toBe(2515);
    expect(keySlot('somethingelse{hash_tag}')).toBe(2515);
    expect(keySlot('123456789')).toBe(12739);
  });

  it('hashes only the tag, so every key of a symbol shares one slot', () => {
    expect(keySlot('p:tactical:state:{BTCUSD}')).toBe(keySlot('p:tactical:seen:{BTCUSD}:300000:53'));
    expect(keySlot('p:ctx:{BTCUSD}')).toBe(keySlot('BTCUSD'));
    expect(keySlot('a{}b')).toBe(keySlot('a{}b')); // an empty tag hashes the whole key
    expect(keySlot('a{}b')).not.toBe(keySlot(''));
  });

  it('tags the symbol on a cluster only', () => {
    expect(symbolKeyPart({ isCluster: true }, 'S1.X')).toBe('{S1.X}');
    expect(symbolKeyPart({ isCluster: false }, 'S1.X')).toBe('S1.X');
  });
});

describe('epoch copies on a Redis Cluster', () => {
  it('puts one copy in each block of 1,024 slots', () => {
    expect(CLUSTER_MARKER_TAGS).toHaveLength(16);
    expect(CLUSTER_MARKER_TAGS.map((tag) => Math.floor(keySlot(`p:epoch:{${tag}}`) / 1024))).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });
});
