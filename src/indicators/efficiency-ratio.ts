import { decodeFloat, decodeFloats, encodeFloat, encodeFloats, type EncodedFloat } from './float-codec';
import { assertPeriod, stateInt } from './validation';

/** Recompute the path length exactly once this multiple of it has passed through the running sum. */
const BUDGET_RATIO = 1e4;

/** Serialised {@link EfficiencyRatio} state. */
export interface EfficiencyRatioState {
  period: number;
  closes: EncodedFloat[];
  moves: EncodedFloat[];
  head: number;
  /** Closes seen, saturating at `period + 1`. */
  count: number;
  sinceRecompute: number;
  prevClose: EncodedFloat;
  pathSum: EncodedFloat;
  pathComp: EncodedFloat;
  budget: EncodedFloat;
  ratio: EncodedFloat;
}

/**
 * Kaufman efficiency ratio over `period` changes:
 * `|close_t − close_{t−period}| / Σ_{i=t−period+1..t} |close_i − close_{i−1}|`, in [0, 1].
 * Needs `period + 1` closes, so the first value appears on bar index `period`; `null` before.
 *
 * When the closes did not move at all over the window the ratio is 0/0; this class returns
 * **0** then (no directional movement), never NaN. The path length is a Neumaier-compensated
 * running sum, recomputed exactly from the ring every `period` updates and when a large move has
 * left the window, so a flat window gives exactly 0. Emits no events.
 */
export class EfficiencyRatio {
  /** Number of close-to-close changes in the window. */
  readonly period: number;
  /** The last `period` closes before the current one (slot `head` is the oldest once full). */
  private readonly closes: Float64Array;
  /** The last `period` absolute changes (slot `head` is the oldest once full). */
  private readonly moves: Float64Array;
  private head = 0;
  private count = 0;
  private sinceRecompute = 0;
  private prevClose = 0;
  private pathSum = 0;
  private pathComp = 0;
  private budget = 0;
  private ratio = 0;

  /**
   * @param period - number of changes in the window, an integer >= 1.
   * @throws RangeError when `period` is not an integer >= 1.
   */
  constructor(period: number) {
    assertPeriod('EfficiencyRatio', 'period', period);
    this.period = period;
    this.closes = new Float64Array(period);
    this.moves = new Float64Array(period);
  }

  /** Adds a close. */
  update(close: number): void {
    const period = this.period;
    const count = this.count;
    if (count === 0) {
      this.prevClose = close;
      this.count = 1;
      return;
    }
    const head = this.head;
    const change = close - this.prevClose;
    const move = change < 0 ? -change : change;
    let term = move;
    if (count > period) {
      const oldMove = this.moves[head] as number;
      term -= oldMove;
      this.budget += move + oldMove;
    } else {
      this.count = count + 1;
      this.budget += move;
    }
    this.closes[head] = this.prevClose;
    this.moves[head] = move;
    this.head = head + 1 === period ? 0 : head + 1;
    this.prevClose = close;

    const s = this.pathSum;
    const t = s + term;
    this.pathComp += Math.abs(s) >= Math.abs(term) ? s - t + term : term - t + s;
    this.pathSum = t;
    let path = this.pathSum + this.pathComp;
    if (++this.sinceRecompute >= period || this.budget > BUDGET_RATIO * path) {
      this.recompute();
      path = this.pathSum + this.pathComp;
    }
    if (this.count <= period) return;
    // The ring now holds close_{t−period}..close_{t−1}; the oldest sits in the next slot to reuse.
    const first = this.closes[this.head] as number;
    const net = close > first ? close - first : first - close;
    if (!(path > 0)) {
      this.ratio = 0;
      return;
    }
    const r = net / path;
    this.ratio = r > 1 ? 1 : r;
  }

  /** The efficiency ratio, or `null` until `period + 1` closes have been seen. */
  get value(): number | null {
    return this.count > this.period ? this.ratio : null;
  }

  /** True once {@link EfficiencyRatio.value} is a number. */
  get ready(): boolean {
    return this.count > this.period;
  }

  private recompute(): void {
    const moves = this.moves;
    const n = this.count - 1 < this.period ? this.count - 1 : this.period;
    let s = 0;
    let c = 0;
    for (let i = 0; i < n; i++) {
      const v = moves[i] as number;
      const t = s + v;
      c += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
      s = t;
    }
    this.pathSum = s;
    this.pathComp = c;
    this.budget = s + c;
    this.sinceRecompute = 0;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): EfficiencyRatioState {
    return {
      period: this.period,
      closes: encodeFloats(this.closes),
      moves: encodeFloats(this.moves),
      head: this.head,
      count: this.count,
      sinceRecompute: this.sinceRecompute,
      prevClose: encodeFloat(this.prevClose),
      pathSum: encodeFloat(this.pathSum),
      pathComp: encodeFloat(this.pathComp),
      budget: encodeFloat(this.budget),
      ratio: encodeFloat(this.ratio),
    };
  }

  /**
   * Restores a ratio saved with {@link EfficiencyRatio.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: EfficiencyRatioState): EfficiencyRatio {
    const r = new EfficiencyRatio(state.period);
    const p = r.period;
    r.closes.set(decodeFloats(state.closes, p, 'closes'));
    r.moves.set(decodeFloats(state.moves, p, 'moves'));
    r.head = stateInt(state.head, 'head', 0, p - 1);
    r.count = stateInt(state.count, 'count', 0, p + 1);
    r.sinceRecompute = stateInt(state.sinceRecompute, 'sinceRecompute', 0, p);
    r.prevClose = decodeFloat(state.prevClose, 'prevClose');
    r.pathSum = decodeFloat(state.pathSum, 'pathSum');
    r.pathComp = decodeFloat(state.pathComp, 'pathComp');
    r.budget = decodeFloat(state.budget, 'budget');
    r.ratio = decodeFloat(state.ratio, 'ratio');
    return r;
  }
}
