import { decodeFloat, decodeFloats, encodeFloat, encodeFloats, type EncodedFloat } from './float-codec';
import { assertPeriod, stateInt } from './validation';

/** Serialised {@link Sma} state. */
export interface SmaState {
  period: number;
  ring: EncodedFloat[];
  head: number;
  count: number;
  sinceRecompute: number;
  sum: EncodedFloat;
  compensation: EncodedFloat;
}

/**
 * Simple moving average: the plain mean of the last `period` values (TA-Lib `SMA`, TTR `SMA`).
 * `null` for the first `period − 1` updates, then a number.
 *
 * The window sum is a running sum made error-free step by step: both the difference
 * `x_new − x_old` and its addition to the sum go through Knuth's TwoSum, whose rounding errors are
 * collected in a compensation term, so a value of 1e8 passing through a window of values near 1
 * leaves no trace. The sum is also recomputed from the ring every `period` updates (O(1)
 * amortised). {@link BollingerBands.middle} computes the same mean through {@link RollingStats}
 * and may differ from this class in the last bit. Emits no events.
 */
export class Sma {
  /** Number of values averaged. */
  readonly period: number;
  private readonly invPeriod: number;
  private readonly ring: Float64Array;
  private head = 0;
  private n = 0;
  private sinceRecompute = 0;
  private sum = 0;
  private compensation = 0;

  /**
   * @param period - number of values averaged, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    assertPeriod('Sma', 'period', period);
    this.period = period;
    this.invPeriod = 1 / period;
    this.ring = new Float64Array(period);
  }

  /** Adds a value and returns the average, or `null` during warm-up. */
  update(x: number): number | null {
    const period = this.period;
    const head = this.head;
    let d = x;
    let err = 0;
    if (this.n === period) {
      // TwoSum(x, −old): d + err === x − old exactly.
      const old = -(this.ring[head] as number);
      d = x + old;
      const z = d - x;
      err = x - (d - z) + (old - z);
    } else {
      this.n++;
    }
    this.ring[head] = x;
    this.head = head + 1 === period ? 0 : head + 1;
    // TwoSum(sum, d).
    const s = this.sum;
    const t = s + d;
    const z = t - s;
    this.compensation += s - (t - z) + (d - z) + err;
    this.sum = t;
    if (++this.sinceRecompute >= period) this.recompute();
    return this.n === period ? (this.sum + this.compensation) * this.invPeriod : null;
  }

  /** The latest average, or `null` during warm-up. */
  get value(): number | null {
    return this.n === this.period ? (this.sum + this.compensation) * this.invPeriod : null;
  }

  /** True once `period` values have been seen. */
  get ready(): boolean {
    return this.n === this.period;
  }

  private recompute(): void {
    let s = 0;
    let c = 0;
    for (let i = 0; i < this.n; i++) {
      const v = this.ring[i] as number;
      const t = s + v;
      const z = t - s;
      c += s - (t - z) + (v - z);
      s = t;
    }
    this.sum = s;
    this.compensation = c;
    this.sinceRecompute = 0;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): SmaState {
    return {
      period: this.period,
      ring: encodeFloats(this.ring),
      head: this.head,
      count: this.n,
      sinceRecompute: this.sinceRecompute,
      sum: encodeFloat(this.sum),
      compensation: encodeFloat(this.compensation),
    };
  }

  /**
   * Restores an average saved with {@link Sma.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: SmaState): Sma {
    const sma = new Sma(state.period);
    const p = sma.period;
    sma.ring.set(decodeFloats(state.ring, p, 'ring'));
    sma.head = stateInt(state.head, 'head', 0, p - 1);
    sma.n = stateInt(state.count, 'count', 0, p);
    sma.sinceRecompute = stateInt(state.sinceRecompute, 'sinceRecompute', 0, p);
    sma.sum = decodeFloat(state.sum, 'sum');
    sma.compensation = decodeFloat(state.compensation, 'compensation');
    return sma;
  }
}
