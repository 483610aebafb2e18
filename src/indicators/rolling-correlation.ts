import { decodeFloat, decodeFloats, encodeFloat, encodeFloats, type EncodedFloat } from './float-codec';
import { assertPeriod, stateInt } from './validation';

/** See rolling-stats.ts: recompute once this multiple of the window's centred energy has passed through. */
const BUDGET_RATIO = 1e4;

/** Serialised {@link RollingCorrelation} state. */
export interface RollingCorrelationState {
  period: number;
  xs: EncodedFloat[];
  ys: EncodedFloat[];
  head: number;
  count: number;
  sinceRecompute: number;
  /** Shifts, compensated sums (value and compensation), error budgets and the last output. */
  sums: Record<SumField, EncodedFloat>;
}

const SUM_FIELDS = [
  'kx', 'ky', 'sx', 'cx', 'sy', 'cy', 'sxx', 'cxx', 'syy', 'cyy', 'sxy', 'cxy', 'bx', 'by', 'corr',
] as const;
type SumField = (typeof SUM_FIELDS)[number];

/**
 * Rolling Pearson correlation of two series over the last `period` pairs, O(1) per update.
 * `null` until the window is full, then a number in [−1, 1].
 *
 * When either series is constant over the window (zero variance) the correlation is undefined;
 * this class returns **0** then (no linear relationship can be measured), never NaN.
 *
 * Numerics as {@link RollingStats}: shifted, Neumaier-compensated sums of `x`, `y`, `x²`, `y²`,
 * `xy`, recomputed exactly every `period` updates and whenever cancellation threatens; a constant
 * window is recentred on its value so its variance is exactly 0. Emits no events.
 */
export class RollingCorrelation {
  /** Window length. */
  readonly period: number;
  private readonly xs: Float64Array;
  private readonly ys: Float64Array;
  private head = 0;
  private n = 0;
  private sinceRecompute = 0;
  private kx = 0;
  private ky = 0;
  private sx = 0;
  private cx = 0;
  private sy = 0;
  private cy = 0;
  private sxx = 0;
  private cxx = 0;
  private syy = 0;
  private cyy = 0;
  private sxy = 0;
  private cxy = 0;
  private bx = 0;
  private by = 0;
  private corr = 0;

  /**
   * @param period - window length, an integer >= 2.
   * @throws RangeError when `period` is not an integer >= 2.
   */
  constructor(period: number) {
    assertPeriod('RollingCorrelation', 'period', period, 2);
    this.period = period;
    this.xs = new Float64Array(period);
    this.ys = new Float64Array(period);
  }

  /** Adds the pair `(x, y)`, dropping the oldest pair once the window is full. */
  update(x: number, y: number): void {
    const period = this.period;
    const head = this.head;
    let n = this.n;
    if (n === 0) {
      this.kx = x;
      this.ky = y;
    }
    const dx = x - this.kx;
    const dy = y - this.ky;
    let tx = dx;
    let ty = dy;
    let txx = dx * dx;
    let tyy = dy * dy;
    let txy = dx * dy;
    if (n === period) {
      const ox = (this.xs[head] as number) - this.kx;
      const oy = (this.ys[head] as number) - this.ky;
      const oxx = ox * ox;
      const oyy = oy * oy;
      this.bx += txx + oxx;
      this.by += tyy + oyy;
      tx -= ox;
      ty -= oy;
      txx -= oxx;
      tyy -= oyy;
      txy -= ox * oy;
    } else {
      this.n = ++n;
      this.bx += txx;
      this.by += tyy;
    }
    this.xs[head] = x;
    this.ys[head] = y;
    this.head = head + 1 === period ? 0 : head + 1;

    let s = this.sx;
    let t = s + tx;
    this.cx += Math.abs(s) >= Math.abs(tx) ? s - t + tx : tx - t + s;
    this.sx = t;
    s = this.sy;
    t = s + ty;
    this.cy += Math.abs(s) >= Math.abs(ty) ? s - t + ty : ty - t + s;
    this.sy = t;
    s = this.sxx;
    t = s + txx;
    this.cxx += Math.abs(s) >= Math.abs(txx) ? s - t + txx : txx - t + s;
    this.sxx = t;
    s = this.syy;
    t = s + tyy;
    this.cyy += Math.abs(s) >= Math.abs(tyy) ? s - t + tyy : tyy - t + s;
    this.syy = t;
    s = this.sxy;
    t = s + txy;
    this.cxy += Math.abs(s) >= Math.abs(txy) ? s - t + txy : txy - t + s;
    this.sxy = t;

    const sumX = this.sx + this.cx;
    const sumY = this.sy + this.cy;
    let varX = this.sxx + this.cxx - (sumX * sumX) / n;
    let varY = this.syy + this.cyy - (sumY * sumY) / n;
    if (++this.sinceRecompute >= period || this.bx > BUDGET_RATIO * varX || this.by > BUDGET_RATIO * varY) {
      this.recompute();
      const rx = this.sx + this.cx;
      const ry = this.sy + this.cy;
      varX = this.sxx + this.cxx - (rx * rx) / n;
      varY = this.syy + this.cyy - (ry * ry) / n;
    }
    if (n < period) return;
    if (!(varX > 0) || !(varY > 0)) {
      this.corr = 0;
      return;
    }
    const covXY = this.sxy + this.cxy - ((this.sx + this.cx) * (this.sy + this.cy)) / n;
    const r = covXY / (Math.sqrt(varX) * Math.sqrt(varY));
    this.corr = r > 1 ? 1 : r < -1 ? -1 : r;
  }

  /** The correlation over the window, or `null` until `period` pairs have been seen. */
  get value(): number | null {
    return this.n === this.period ? this.corr : null;
  }

  /** True once `period` pairs have been seen. */
  get ready(): boolean {
    return this.n === this.period;
  }

  private recompute(): void {
    const n = this.n;
    this.kx = centre(this.xs, n);
    this.ky = centre(this.ys, n);
    let sx = 0;
    let cx = 0;
    let sy = 0;
    let cy = 0;
    let sxx = 0;
    let cxx = 0;
    let syy = 0;
    let cyy = 0;
    let sxy = 0;
    let cxy = 0;
    for (let i = 0; i < n; i++) {
      const dx = (this.xs[i] as number) - this.kx;
      const dy = (this.ys[i] as number) - this.ky;
      let t = sx + dx;
      cx += Math.abs(sx) >= Math.abs(dx) ? sx - t + dx : dx - t + sx;
      sx = t;
      t = sy + dy;
      cy += Math.abs(sy) >= Math.abs(dy) ? sy - t + dy : dy - t + sy;
      sy = t;
      const qx = dx * dx;
      t = sxx + qx;
      cxx += Math.abs(sxx) >= Math.abs(qx) ? sxx - t + qx : qx - t + sxx;
      sxx = t;
      const qy = dy * dy;
      t = syy + qy;
      cyy += Math.abs(syy) >= Math.abs(qy) ? syy - t + qy : qy - t + syy;
      syy = t;
      const qxy = dx * dy;
      t = sxy + qxy;
      cxy += Math.abs(sxy) >= Math.abs(qxy) ? sxy - t + qxy : qxy - t + sxy;
      sxy = t;
    }
    this.sx = sx;
    this.cx = cx;
    this.sy = sy;
    this.cy = cy;
    this.sxx = sxx;
    this.cxx = cxx;
    this.syy = syy;
    this.cyy = cyy;
    this.sxy = sxy;
    this.cxy = cxy;
    this.bx = sxx + cxx;
    this.by = syy + cyy;
    this.sinceRecompute = 0;
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): RollingCorrelationState {
    const sums = {} as Record<SumField, EncodedFloat>;
    for (const f of SUM_FIELDS) sums[f] = encodeFloat(this[f]);
    return {
      period: this.period,
      xs: encodeFloats(this.xs),
      ys: encodeFloats(this.ys),
      head: this.head,
      count: this.n,
      sinceRecompute: this.sinceRecompute,
      sums,
    };
  }

  /**
   * Restores a window saved with {@link RollingCorrelation.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: RollingCorrelationState): RollingCorrelation {
    const r = new RollingCorrelation(state.period);
    const p = r.period;
    r.xs.set(decodeFloats(state.xs, p, 'xs'));
    r.ys.set(decodeFloats(state.ys, p, 'ys'));
    r.head = stateInt(state.head, 'head', 0, p - 1);
    r.n = stateInt(state.count, 'count', 0, p);
    r.sinceRecompute = stateInt(state.sinceRecompute, 'sinceRecompute', 0, p);
    for (const f of SUM_FIELDS) r[f] = decodeFloat(state.sums[f], `sums.${f}`);
    return r;
  }
}

/**
 * The shift for an exact recompute: the mean of the first `n` values, or the common value when
 * they are all equal (so a constant window has exactly zero deviations).
 */
function centre(values: Float64Array, n: number): number {
  let s = 0;
  let c = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    const t = s + v;
    c += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
    s = t;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo === hi ? lo : (s + c) / n;
}
