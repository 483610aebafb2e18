/**
 * Redis key names that work on one Redis and on a Redis Cluster.
 *
 * On a Redis Cluster every key lives in one of 16,384 hash slots, and a MULTI may only touch keys of
 * one slot. The part of a key between `{` and `}` (its hash tag) alone decides the slot, so the
 * state keys of a symbol carry the symbol as a hash tag (`<prefix>tactical:state:{BTCUSD}`): all of a
 * symbol's keys share a slot and one MULTI can write them together.
 *
 * On a single Redis the keys keep the names they always had (`<prefix>tactical:state:BTCUSD`), so an
 * upgraded pipeline finds the state its previous version wrote; a key renamed under a running
 * deployment would look like a lost symbol. Moving from one Redis to a cluster therefore starts a new
 * state epoch (docs/scaling.md).
 */

/** What the key helpers need to know of a client: ioredis sets `isCluster` on both client kinds. */
export interface KeyedClient {
  readonly isCluster: boolean;
}

/** The symbol as it appears in a key: `{SYMBOL}` (a hash tag) on a cluster, `SYMBOL` otherwise. */
export function symbolKeyPart(client: KeyedClient, symbol: string): string {
  return client.isCluster ? `{${symbol}}` : symbol;
}

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with. */
export function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The Redis Cluster hash slot of a key (hash tag rules of the Redis Cluster specification). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(Buffer.from(key.slice(open + 1, close))) % 16384;
  }
  return crc16(Buffer.from(key)) % 16384;
}
