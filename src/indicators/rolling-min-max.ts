import { decodeFloats, encodeFloats, type EncodedFloat } from './float-codec';
import { assertPeriod, stateInt } from './validation';

/** Serialised {@link RollingMinMax} state. */
export interface RollingMinMaxState {
  period: number;
  /** Updates seen so far (the sequence number of the next value). */
  seq: number;
  minHead: number;
  minLength: number;
  minSeq: EncodedFloat[];
  minValues: EncodedFloat[];
  maxHead: number;
  maxLength: number;
  maxSeq: EncodedFloat[];
  maxValues: EncodedFloat[];
}

/**
 * Rolling minimum and maximum over the last `period` values, O(1) amortised per update, using
 * two monotonic deques stored in preallocated ring buffers (no allocation per update).
 *
 * Before the window is full (`ready` false) `min`/`max` cover the values seen so far; before the
 * first update they are NaN. Emits no events.
 */
export class RollingMinMax {
  /** Window length. */
  readonly period: number;
  private seq = 0;
  private readonly minSeq: Float64Array;
  private readonly minValues: Float64Array;
  private minHead = 0;
  private minLength = 0;
  private readonly maxSeq: Float64Array;
  private readonly maxValues: Float64Array;
  private maxHead = 0;
  private maxLength = 0;

  /**
   * @param period - window length, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    assertPeriod('RollingMinMax', 'period', period);
    this.period = period;
    this.minSeq = new Float64Array(period);
    this.minValues = new Float64Array(period);
    this.maxSeq = new Float64Array(period);
    this.maxValues = new Float64Array(period);
  }

  /** Adds `x` to the window, dropping the oldest value once the window is full. */
  update(x: number): void {
    const period = this.period;
    const seq = this.seq;
    const expired = seq - period; // entries with sequence <= expired have left the window

    // Minimum: values increase from front to back.
    let head = this.minHead;
    let len = this.minLength;
    if (len > 0 && (this.minSeq[head] as number) <= expired) {
      head = head + 1 === period ? 0 : head + 1;
      len--;
    }
    while (len > 0) {
      let back = head + len - 1;
      if (back >= period) back -= period;
      if ((this.minValues[back] as number) < x) break;
      len--;
    }
    let slot = head + len;
    if (slot >= period) slot -= period;
    this.minSeq[slot] = seq;
    this.minValues[slot] = x;
    this.minHead = head;
    this.minLength = len + 1;

    // Maximum: values decrease from front to back.
    head = this.maxHead;
    len = this.maxLength;
    if (len > 0 && (this.maxSeq[head] as number) <= expired) {
      head = head + 1 === period ? 0 : head + 1;
      len--;
    }
    while (len > 0) {
      let back = head + len - 1;
      if (back >= period) back -= period;
      if ((this.maxValues[back] as number) > x) break;
      len--;
    }
    slot = head + len;
    if (slot >= period) slot -= period;
    this.maxSeq[slot] = seq;
    this.maxValues[slot] = x;
    this.maxHead = head;
    this.maxLength = len + 1;

    this.seq = seq + 1;
  }

  /** True once `period` values have been seen. */
  get ready(): boolean {
    return this.seq >= this.period;
  }

  /** Smallest value in the window (NaN before the first update). */
  get min(): number {
    return this.minLength === 0 ? Number.NaN : (this.minValues[this.minHead] as number);
  }

  /** Largest value in the window (NaN before the first update). */
  get max(): number {
    return this.maxLength === 0 ? Number.NaN : (this.maxValues[this.maxHead] as number);
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): RollingMinMaxState {
    return {
      period: this.period,
      seq: this.seq,
      minHead: this.minHead,
      minLength: this.minLength,
      minSeq: encodeFloats(this.minSeq),
      minValues: encodeFloats(this.minValues),
      maxHead: this.maxHead,
      maxLength: this.maxLength,
      maxSeq: encodeFloats(this.maxSeq),
      maxValues: encodeFloats(this.maxValues),
    };
  }

  /**
   * Restores a window saved with {@link RollingMinMax.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: RollingMinMaxState): RollingMinMax {
    const r = new RollingMinMax(state.period);
    const p = r.period;
    r.seq = stateInt(state.seq, 'seq', 0, Number.MAX_SAFE_INTEGER);
    r.minHead = stateInt(state.minHead, 'minHead', 0, p - 1);
    r.minLength = stateInt(state.minLength, 'minLength', 0, p);
    r.minSeq.set(decodeFloats(state.minSeq, p, 'minSeq'));
    r.minValues.set(decodeFloats(state.minValues, p, 'minValues'));
    r.maxHead = stateInt(state.maxHead, 'maxHead', 0, p - 1);
    r.maxLength = stateInt(state.maxLength, 'maxLength', 0, p);
    r.maxSeq.set(decodeFloats(state.maxSeq, p, 'maxSeq'));
    r.maxValues.set(decodeFloats(state.maxValues, p, 'maxValues'));
    return r;
  }
}
