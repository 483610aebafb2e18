import { type EncodedFloat } from './float-codec';
import { decodeFields, encodeFields, float, floats, slots } from './state-fields';
import { RING, RingWindow, type RingState } from './window';

/** Serialised {@link RollingCorrelation} state. */
export interface RollingCorrelationState extends RingState {
  xs: EncodedFloat[];
  ys: EncodedFloat[];
  /** Shifts, compensated sums (value and compensation), error budgets and the last output. */
  sums: Record<
    | 'kx'
    | 'ky'
    | 'sx'
    | 'cx'
    | 'sy'
    | 'cy'
    | 'sxx'
    | 'cxx'
    | 'syy'
    | 'cyy'
    | 'sxy'
    | 'cxy'
    | 'bx'
    | 'by'
    | 'corr',
    EncodedFloat
  >;
}

/** Indices of the compensated sums of x, y, x², y² and xy (deviations from the shifts). */
const SX = 0;
const SY = 2;
const SXX = 4;
const SYY = 6;
const SXY = 8;

const FIELDS = [
  floats('xs', 'ring'),
  floats('ys', 'paired'),
  RING.head,
  RING.count,
  RING.sinceRecompute,
];

const SUM_FIELDS = [
  float('kx'),
  float('ky'),
  ...slots('sums', ['sx', 'cx', 'sy', 'cy', 'sxx', 'cxx', 'syy', 'cyy', 'sxy', 'cxy']),
  float('bx'),
  float('by'),
  float('corr'),
];

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
export class RollingCorrelation extends RingWindow {
  private kx = 0;
  private ky = 0;
  private bx = 0;
  private by = 0;
  private corr = 0;

  /**
   * @param period - window length, an integer >= 2.
   * @throws RangeError when `period` is not an integer >= 2.
   */
  constructor(period: number) {
    // ring: the x of each pair; paired: the y.
    super('RollingCorrelation', period, 2, 5, true);
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
    const full = n === period;
    // While the window fills, the leaving deviations are +0, which take out exactly nothing.
    const dx = x - this.kx;
    const dy = y - this.ky;
    const ox = full ? (this.ring[head] as number) - this.kx : 0;
    const oy = full ? (this.paired[head] as number) - this.ky : 0;
    const qx = dx * dx;
    const qy = dy * dy;
    const oqx = ox * ox;
    const oqy = oy * oy;
    if (!full) this.n = ++n;
    this.bx += qx + oqx;
    this.by += qy + oqy;
    this.pushPair(x, y);
    this.addNeumaier(SX, dx - ox);
    this.addNeumaier(SY, dy - oy);
    this.addNeumaier(SXX, qx - oqx);
    this.addNeumaier(SYY, qy - oqy);
    this.addNeumaier(SXY, dx * dy - ox * oy);

    let varX = this.centred(SX, SXX);
    let varY = this.centred(SY, SYY);
    if (this.due() || this.overBudget(this.bx, varX) || this.overBudget(this.by, varY)) {
      this.recompute();
      varX = this.centred(SX, SXX);
      varY = this.centred(SY, SYY);
    }
    if (n < period) return;
    if (!(varX > 0) || !(varY > 0)) {
      this.corr = 0;
      return;
    }
    const covXY = this.total(SXY) - (this.total(SX) * this.total(SY)) / n;
    const r = covXY / (Math.sqrt(varX) * Math.sqrt(varY));
    this.corr = r > 1 ? 1 : r < -1 ? -1 : r;
  }

  /** The correlation over the window, or `null` until `period` pairs have been seen. */
  get value(): number | null {
    return this.n === this.period ? this.corr : null;
  }

  private recompute(): void {
    const n = this.n;
    const xs = this.ring;
    const ys = this.paired;
    this.kx = this.recentre(xs, 0, SX, SXX, -1);
    this.ky = this.recentre(ys, 0, SY, SYY, -1);
    this.sums.fill(0, SXY, SXY + 2);
    for (let i = 0; i < n; i++)
      this.addNeumaier(SXY, ((xs[i] as number) - this.kx) * ((ys[i] as number) - this.ky));
    this.bx = this.total(SXX);
    this.by = this.total(SYY);
  }

  /** The full state as plain JSON-safe data. */
  toJSON(): RollingCorrelationState {
    const state = encodeFields(this, FIELDS, { period: this.period });
    return Object.assign(state, { sums: encodeFields(this, SUM_FIELDS) }) as unknown as RollingCorrelationState;
  }

  /**
   * Restores a window saved with {@link RollingCorrelation.toJSON}.
   * @throws RangeError or TypeError when the state is malformed.
   */
  static fromJSON(state: RollingCorrelationState): RollingCorrelation {
    const r = new RollingCorrelation(state.period);
    decodeFields(r, state, FIELDS, r.period);
    decodeFields(r, state.sums, SUM_FIELDS, r.period, 'sums.');
    return r;
  }
}
