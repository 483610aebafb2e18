/**
 * A set of `(symbol, ts)` keys of 5m bars in a few bits each: per symbol one bit per 5-minute slot
 * from the symbol's earliest key, so a year of one symbol is 13 kB however many results pass through
 * it. Keys off the 5-minute grid (which the bar schema does not produce, but a results file might
 * hold) go to a plain Set of their own. Used by the replay to remember which bars it published and
 * which results it already wrote without keeping a string or a body per bar.
 */
const SLOT_MS = 5 * 60_000;

interface SymbolBits {
  /** ts of bit 0. */
  base: number;
  bits: Uint8Array;
  offGrid: Set<number> | null;
}

export class BarKeySet {
  private readonly symbols = new Map<string, SymbolBits>();
  private count = 0;

  /** The number of keys in the set. */
  get size(): number {
    return this.count;
  }

  has(symbol: string, ts: number): boolean {
    const s = this.symbols.get(symbol);
    if (s === undefined) return false;
    const slot = (ts - s.base) / SLOT_MS;
    if (!Number.isInteger(slot)) return s.offGrid?.has(ts) ?? false;
    if (slot < 0 || slot >= s.bits.length * 8) return false;
    return ((s.bits[slot >> 3] as number) & (1 << (slot & 7))) !== 0;
  }

  /** Adds the key; answers false when it was already there. */
  add(symbol: string, ts: number): boolean {
    let s = this.symbols.get(symbol);
    if (s === undefined) {
      s = { base: ts, bits: new Uint8Array(64), offGrid: null };
      this.symbols.set(symbol, s);
    }
    let slot = (ts - s.base) / SLOT_MS;
    if (!Number.isInteger(slot)) {
      s.offGrid ??= new Set<number>();
      if (s.offGrid.has(ts)) return false;
      s.offGrid.add(ts);
      this.count++;
      return true;
    }
    if (slot < 0) {
      // Re-base on a whole byte so the existing bits keep their positions within a byte.
      const shiftBytes = Math.ceil(-slot / 8);
      const grown = new Uint8Array(s.bits.length + shiftBytes);
      grown.set(s.bits, shiftBytes);
      s.bits = grown;
      s.base -= shiftBytes * 8 * SLOT_MS;
      slot += shiftBytes * 8;
    }
    if (slot >= s.bits.length * 8) {
      const grown = new Uint8Array(Math.max(s.bits.length * 2, (slot >> 3) + 1));
      grown.set(s.bits);
      s.bits = grown;
    }
    const i = slot >> 3;
    const mask = 1 << (slot & 7);
    const byte = s.bits[i] as number;
    if ((byte & mask) !== 0) return false;
    s.bits[i] = byte | mask;
    this.count++;
    return true;
  }
}
