/**
 * Exact JSON encoding of IEEE-754 doubles for indicator state.
 *
 * JSON numbers round-trip every finite double exactly (V8 prints the shortest string that parses
 * back to the same bits), but JSON has no NaN, no infinities and loses the sign of `-0`. State
 * that is saved to Redis and restored must reproduce the uninterrupted run bit for bit, so those
 * four values are written as strings. Finite non-zero numbers and `+0` stay plain numbers, which
 * keeps saved state readable.
 */

/** A double as stored in indicator state: a plain number, or a string for the values JSON lacks. */
export type EncodedFloat = number | 'NaN' | 'Infinity' | '-Infinity' | '-0';

/** Encodes one double so that {@link decodeFloat} restores the same bits (NaN payloads aside). */
export function encodeFloat(x: number): EncodedFloat {
  if (x === 0) return Object.is(x, -0) ? '-0' : 0;
  if (Number.isFinite(x)) return x;
  if (Number.isNaN(x)) return 'NaN';
  return x > 0 ? 'Infinity' : '-Infinity';
}

/**
 * Decodes a value written by {@link encodeFloat}.
 * @throws TypeError when `v` is neither a finite number nor one of the four special strings.
 */
export function decodeFloat(v: unknown, name: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  switch (v) {
    case '-0':
      return -0;
    case 'NaN':
      return Number.NaN;
    case 'Infinity':
      return Number.POSITIVE_INFINITY;
    case '-Infinity':
      return Number.NEGATIVE_INFINITY;
    default:
      throw new TypeError(`indicator state field ${name} is not an encoded number: ${String(v)}`);
  }
}

/** Encodes a whole buffer, element by element. */
export function encodeFloats(values: Float64Array): EncodedFloat[] {
  // A plain loop with a fast path for finite non-zero values: `Array.from(values, encodeFloat)` took
  // 5-7x as long, and the strategic checkpoint encodes a few hundred values per bar.
  const n = values.length;
  const out = new Array<EncodedFloat>(n);
  for (let i = 0; i < n; i++) {
    const x = values[i] as number;
    out[i] = x !== 0 && x - x === 0 ? x : encodeFloat(x);
  }
  return out;
}

/**
 * Decodes a buffer written by {@link encodeFloats} into a new `Float64Array`.
 * @throws RangeError when the array does not have `expectedLength` elements.
 */
export function decodeFloats(v: unknown, expectedLength: number, name: string): Float64Array {
  if (!Array.isArray(v) || v.length !== expectedLength) {
    throw new RangeError(`indicator state field ${name} must be an array of ${expectedLength} numbers`);
  }
  const out = new Float64Array(expectedLength);
  for (let i = 0; i < expectedLength; i++) out[i] = decodeFloat(v[i], `${name}[${i}]`);
  return out;
}
