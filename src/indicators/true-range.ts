import { type EncodedFloat } from './float-codec';
import { decodeFields, encodeFields, float, int } from './state-fields';

/** Serialised {@link TrueRange} state. */
export interface TrueRangeState {
  /** Bars seen, saturating at 2. */
  count: number;
  prevClose: EncodedFloat;
  tr: EncodedFloat;
}

/** Bars seen saturate at 2: none, one (no previous close yet), two or more. */
const FIELDS = [int('count', () => 2), float('prevClose'), float('tr')];

/**
 * Wilder's true range: `max(high − low, |high − prevClose|, |low − prevClose|)`, as TA-Lib
 * `TRANGE`. The first bar has no previous close and therefore no true range (`null`), as in
 * TA-Lib; TTR's `TR` instead falls back to `high − low` there. Emits no events.
 */
export class TrueRange {
  private count = 0;
  private prevClose = 0;
  private tr = 0;

  /** Adds a bar and returns its true range, or `null` for the first bar. */
  update(high: number, low: number, close: number): number | null {
    const pc = this.prevClose;
    this.prevClose = close;
    if (this.count === 0) {
      this.count = 1;
      return null;
    }
    this.count = 2;
    let tr = high - low;
    const up = high > pc ? high - pc : pc - high;
    const down = low > pc ? low - pc : pc - low;
    if (up > tr) tr = up;
    if (down > tr) tr = down;
    this.tr = tr;
    return tr;
  }

  /** True once a true range exists (from the second bar on). */
  get ready(): boolean {
    return this.count === 2;
  }

  /** The latest true range, or `null` before the second bar. */
  get value(): number | null {
    return this.count === 2 ? this.tr : null;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): TrueRangeState {
    return encodeFields(this, FIELDS) as unknown as TrueRangeState;
  }

  /**
   * Restores a true range saved with {@link TrueRange.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: TrueRangeState): TrueRange {
    const t = new TrueRange();
    decodeFields(t, state, FIELDS, 0);
    return t;
  }
}
