import { decodeFloat, decodeFloats, encodeFloat, encodeFloats, type EncodedFloat } from './float-codec';
import { assertPeriod, stateInt } from './validation';

/** See rolling-stats.ts: recompute once this multiple of the window's centred energy has passed through. */
const BUDGET_RATIO = 1e4;

/** Serialised {@link RollingSlope} state. */
export interface RollingSlopeState {
  period: number;
  ring: EncodedFloat[];
  head: number;
  count: number;
  sinceRecompute: number;
  shift: EncodedFloat;
  s1: EncodedFloat;
  c1: EncodedFloat;
  s2: EncodedFloat;
  c2: EncodedFloat;
  st: EncodedFloat;
  ct: EncodedFloat;
  budget: EncodedFloat;
  slope: EncodedFloat;
}

/**
 * Rolling least-squares slope of `y` against the time index `0 … period − 1` (oldest value at 0),
 * O(1) per update: `Σ(t − t̄)(y − ȳ) / Σ(t − t̄)²`, in units of y per update. `null` until the
 * window is full.
 *
 * The window keeps `S1 = Σ(y−K)` and `T = Σ t·(y−K)` for a shift `K`; sliding the window moves
 * every index down by one, which is `T ← T − (S1 − d_oldest) + (period − 1)·d_new`. Sums are
 * Neumaier-compensated and recomputed exactly as in {@link RollingStats}; a constant window has a
 * slope of exactly 0. Emits no events.
 */
export class RollingSlope {
  /** Window length. */
  readonly period: number;
  private readonly ring: Float64Array;
  private readonly meanIndex: number;
  private readonly indexVariance: number;
  private head = 0;
  private n = 0;
  private sinceRecompute = 0;
  private shift = 0;
  private s1 = 0;
  private c1 = 0;
  private s2 = 0;
  private c2 = 0;
  private st = 0;
  private ct = 0;
  private budget = 0;
  private slope = 0;

  /**
   * @param period - window length, an integer >= 2 (a slope needs two points).
   * @throws RangeError when `period` is not an integer >= 2.
   */
  constructor(period: number) {
    assertPeriod('RollingSlope', 'period', period, 2);
    this.period = period;
    this.ring = new Float64Array(period);
    this.meanIndex = (period - 1) / 2;
    this.indexVariance = (period * (period * period - 1)) / 12; // Σ(t − t̄)²
  }

  /** Adds `y` as the newest point, dropping the oldest once the window is full. */
  update(y: number): void {
    const period = this.period;
    const head = this.head;
    let n = this.n;
    if (n === 0) this.shift = y;
    const d = y - this.shift;
    const sq = d * d;
    const sum1 = this.s1 + this.c1;
    let t1: number;
    let t2: number;
    let tt: number;
    if (n === period) {
      const old = (this.ring[head] as number) - this.shift;
      const oldSq = old * old;
      t1 = d - old;
      t2 = sq - oldSq;
      tt = (period - 1) * d - (sum1 - old);
      this.budget += sq + oldSq;
    } else {
      t1 = d;
      t2 = sq;
      tt = n * d;
      this.n = ++n;
      this.budget += sq;
    }
    this.ring[head] = y;
    this.head = head + 1 === period ? 0 : head + 1;

    let s = this.s1;
    let t = s + t1;
    this.c1 += Math.abs(s) >= Math.abs(t1) ? s - t + t1 : t1 - t + s;
    this.s1 = t;
    s = this.s2;
    t = s + t2;
    this.c2 += Math.abs(s) >= Math.abs(t2) ? s - t + t2 : t2 - t + s;
    this.s2 = t;
    s = this.st;
    t = s + tt;
    this.ct += Math.abs(s) >= Math.abs(tt) ? s - t + tt : tt - t + s;
    this.st = t;

    const newSum1 = this.s1 + this.c1;
    const centred = this.s2 + this.c2 - (newSum1 * newSum1) / n;
    if (++this.sinceRecompute >= period || this.budget > BUDGET_RATIO * centred) this.recompute();
    if (n === period) {
      this.slope = (this.st + this.ct - this.meanIndex * (this.s1 + this.c1)) / this.indexVariance;
    }
  }

  /** The slope over the window, or `null` until `period` values have been seen. */
  get value(): number | null {
    return this.n === this.period ? this.slope : null;
  }

  /** True once `period` values have been seen. */
  get ready(): boolean {
    return this.n === this.period;
  }

  private recompute(): void {
    const ring = this.ring;
    const n = this.n;
    const period = this.period;
    // Oldest value first: slot `head` once the window is full, slot 0 before.
    const start = n === period ? this.head : 0;
    let s = 0;
    let c = 0;
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const v = ring[i] as number;
      const t = s + v;
      c += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
      s = t;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const shift = lo === hi ? lo : (s + c) / n;
    let s1 = 0;
    let c1 = 0;
    let s2 = 0;
    let c2 = 0;
    let st = 0;
    let ct = 0;
    let slot = start;
    for (let i = 0; i < n; i++) {
      const d = (ring[slot] as number) - shift;
      slot = slot + 1 === period ? 0 : slot + 1;
      let t = s1 + d;
      c1 += Math.abs(s1) >= Math.abs(d) ? s1 - t + d : d - t + s1;
      s1 = t;
      const q = d * d;
      t = s2 + q;
      c2 += Math.abs(s2) >= Math.abs(q) ? s2 - t + q : q - t + s2;
      s2 = t;
      const w = i * d;
      t = st + w;
      ct += Math.abs(st) >= Math.abs(w) ? st - t + w : w - t + st;
      st = t;
    }
    this.shift = shift;
    this.s1 = s1;
    this.c1 = c1;
    this.s2 = s2;
    this.c2 = c2;
    this.st = st;
    this.ct = ct;
    this.budget = s2 + c2;
    this.sinceRecompute = 0;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): RollingSlopeState {
    return {
      period: this.period,
      ring: encodeFloats(this.ring),
      head: this.head,
      count: this.n,
      sinceRecompute: this.sinceRecompute,
      shift: encodeFloat(this.shift),
      s1: encodeFloat(this.s1),
      c1: encodeFloat(this.c1),
      s2: encodeFloat(this.s2),
      c2: encodeFloat(this.c2),
      st: encodeFloat(this.st),
      ct: encodeFloat(this.ct),
      budget: encodeFloat(this.budget),
      slope: encodeFloat(this.slope),
    };
  }

  /**
   * Restores a window saved with {@link RollingSlope.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: RollingSlopeState): RollingSlope {
    const r = new RollingSlope(state.period);
    const p = r.period;
    r.ring.set(decodeFloats(state.ring, p, 'ring'));
    r.head = stateInt(state.head, 'head', 0, p - 1);
    r.n = stateInt(state.count, 'count', 0, p);
    r.sinceRecompute = stateInt(state.sinceRecompute, 'sinceRecompute', 0, p);
    r.shift = decodeFloat(state.shift, 'shift');
    r.s1 = decodeFloat(state.s1, 's1');
    r.c1 = decodeFloat(state.c1, 'c1');
    r.s2 = decodeFloat(state.s2, 's2');
    r.c2 = decodeFloat(state.c2, 'c2');
    r.st = decodeFloat(state.st, 'st');
    r.ct = decodeFloat(state.ct, 'ct');
    r.budget = decodeFloat(state.budget, 'budget');
    r.slope = decodeFloat(state.slope, 'slope');
    return r;
  }
}
