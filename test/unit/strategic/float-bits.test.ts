import { encodeFloat, encodeFloats } from '../../../src/indicators/float-codec';
import { decodeFloat32Bits, decodeFloat64Bits, encodeFloat32Bits, encodeFloat64Bits } from '../../../src/strategic/float-bits';

const bitsOf = (a: Float64Array | Float32Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

describe('float bits codec', () => {
  const specials = [0, -0, Number.NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MAX_VALUE, 1 / 3, 37050.25];

  it('round-trips every double bit for bit, specials included', () => {
    const a = Float64Array.from(specials);
    const back = decodeFloat64Bits(JSON.parse(JSON.stringify(encodeFloat64Bits(a))), a.length, 'x');
    expect(bitsOf(back)).toBe(bitsOf(a));
    expect(Object.is(back[1], -0)).toBe(true);
  });

  it('round-trips a Float32Array bit for bit, and a view into a larger buffer', () => {
    const big = Float32Array.from([9, ...specials, 9]);
    const view = big.subarray(1, 1 + specials.length);
    const back = decodeFloat32Bits(encodeFloat32Bits(view), specials.length, 'v');
    expect(bitsOf(back)).toBe(bitsOf(view));
  });

  it('reads the number arrays of states written before', () => {
    const a = Float64Array.from(specials);
    expect(bitsOf(decodeFloat64Bits(encodeFloats(a), a.length, 'x'))).toBe(bitsOf(a));
    const f = Float32Array.from([1.5, -0, 3]);
    expect(bitsOf(decodeFloat32Bits([1.5, '-0', 3], 3, 'v'))).toBe(bitsOf(f));
  });

  it('encodeFloats (the number-array codec of the other states) encodes each value as encodeFloat does', () => {
    const a = Float64Array.from([...specials, 2, -3.5, 0]);
    expect(encodeFloats(a)).toStrictEqual(Array.from(a, encodeFloat));
    expect(encodeFloats(a).slice(0, 5)).toStrictEqual([0, '-0', 'NaN', 'Infinity', '-Infinity']);
  });

  it('rejects a wrong length or a string that is not base64', () => {
    expect(() => decodeFloat64Bits(encodeFloat64Bits(new Float64Array(3)), 4, 'rows')).toThrow(/rows must hold 4/);
    expect(() => decodeFloat64Bits('not base64!', 1, 'rows')).toThrow(RangeError);
    expect(() => decodeFloat32Bits([1, 2], 3, 'v')).toThrow(/v must be an array of 3/);
  });
});
