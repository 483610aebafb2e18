import { type EncodedFloat } from './float-codec';
import {
  floats,
  int,
  LAST_SLOT,
  PERIOD,
  type StateField,
  restoreState,
  saveState,
} from './state-fields';
import { assertPeriod } from './validation';

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
 * A monotonic deque of (sequence number, value) in a preallocated ring: the front is the extreme
 * of the window, and each value behind it is less extreme than the one before.
 */
class MonotonicDeque {
  readonly seq: Float64Array;
  readonly values: Float64Array;
  head = 0;
  length = 0;

  /** @param keepsMax - true for the maximum's deque, false for the minimum's. */
  constructor(
    period: number,
    private readonly keepsMax: boolean,
  ) {
    this.seq = new Float64Array(period);
    this.values = new Float64Array(period);
  }

  /** Drops the front if its sequence number is at most `expired`, then adds `x` as number `seq`. */
  push(x: number, seq: number, expired: number): void {
    const period = this.values.length;
    let head = this.head;
    let len = this.length;
    if (len > 0 && (this.seq[head] as number) <= expired) {
      head = head + 1 === period ? 0 : head + 1;
      len--;
    }
    while (len > 0) {
      let back = head + len - 1;
      if (back >= period) back -= period;
      const v = this.values[back] as number;
      if (this.keepsMax ? v > x : v < x) break;
      len--;
    }
    let slot = head + len;
    if (slot >= period) slot -= period;
    this.seq[slot] = seq;
    this.values[slot] = x;
    this.head = head;
    this.length = len + 1;
  }

  /** The front value (NaN when empty). */
  get front(): number {
    return this.length === 0 ? Number.NaN : (this.values[this.head] as number);
  }
}

/** Each deque's fields, keyed `min…` or `max…` in the saved state. */
const dequeFields = (side: 'min' | 'max', owner: string): StateField[] => [
  int(`${side}Head`, LAST_SLOT, 'head', owner),
  int(`${side}Length`, PERIOD, 'length', owner),
  floats(`${side}Seq`, 'seq', owner),
  floats(`${side}Values`, 'values', owner),
];

const FIELDS = [
  int('seq', () => Number.MAX_SAFE_INTEGER),
  ...dequeFields('min', 'lows'),
  ...dequeFields('max', 'highs'),
];

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
  /** The minimum's deque: values increase from front to back. */
  private readonly lows: MonotonicDeque;
  /** The maximum's deque: values decrease from front to back. */
  private readonly highs: MonotonicDeque;

  /**
   * @param period - window length, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    assertPeriod('RollingMinMax', 'period', period);
    this.period = period;
    this.lows = new MonotonicDeque(period, false);
    this.highs = new MonotonicDeque(period, true);
  }

  /** Adds `x` to the window, dropping the oldest value once the window is full. */
  update(x: number): void {
    const seq = this.seq;
    const expired = seq - this.period; // entries with sequence <= expired have left the window
    this.lows.push(x, seq, expired);
    this.highs.push(x, seq, expired);
    this.seq = seq + 1;
  }

  /** True once `period` values have been seen. */
  get ready(): boolean {
    return this.seq >= this.period;
  }

  /** Smallest value in the window (NaN before the first update). */
  get min(): number {
    return this.lows.front;
  }

  /** Largest value in the window (NaN before the first update). */
  get max(): number {
    return this.highs.front;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): RollingMinMaxState {
    return saveState(this, FIELDS);
  }

  /**
   * Restores a window saved with {@link RollingMinMax.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: RollingMinMaxState): RollingMinMax {
    return restoreState(new RollingMinMax(state.period), state, FIELDS);
  }
}
