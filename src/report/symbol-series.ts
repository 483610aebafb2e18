/**
 * The results of one symbol as the report needs them, in columns of typed arrays instead of one
 * object per result: 51 bytes a result (a year of 5m bars of one symbol is about 5 MB), so a
 * report of millions of results fits in a few hundred MB where the parsed objects would need tens
 * of GB. Only the fields the charts and tables read are kept; the counts are taken as results arrive
 * (see {@link ReportAccumulator}).
 */
import type { IntegratedResult } from '../../schemas/integrated-result.schema';

export const REGIMES = ['BULL', 'BEAR', 'SIDEWAYS', 'VOLATILE'] as const;
export type Regime = (typeof REGIMES)[number];
const ACTIONS = ['LONG', 'SHORT', 'FLAT'] as const;
const CONFIDENCES = ['LOW', 'MEDIUM', 'HIGH'] as const;
/** The code of null in the Uint8 columns. */
const NONE = 255;

function codeOf(list: readonly string[], value: string | null): number {
  if (value === null) return NONE;
  const i = list.indexOf(value);
  return i < 0 ? NONE : i;
}

/** One symbol's results, read by index (0 = oldest once {@link SymbolSeries.sortByTs} ran). */
export class SymbolSeries {
  private n = 0;
  private tsCol: Float64Array = new Float64Array(256);
  private closeTsCol: Float64Array = new Float64Array(256);
  private closeCol: Float64Array = new Float64Array(256);
  /** target_position; NaN for null. */
  private positionCol: Float64Array = new Float64Array(256);
  /** regime_probabilities[regime]; NaN when either is null. */
  private regimePCol: Float64Array = new Float64Array(256);
  private regimeCol: Uint8Array = new Uint8Array(256);
  private confidenceCol: Uint8Array = new Uint8Array(256);
  private actionCol: Uint8Array = new Uint8Array(256);

  /** A series of `results` (already one per ts), sorted by ts. */
  static of(results: readonly IntegratedResult[]): SymbolSeries {
    const s = new SymbolSeries();
    for (const r of results) s.push(r);
    s.sortByTs();
    return s;
  }

  get length(): number {
    return this.n;
  }

  push(r: IntegratedResult): void {
    if (this.n === this.tsCol.length) this.grow(Math.ceil(this.n * 1.5));
    const i = this.n++;
    this.tsCol[i] = r.ts;
    this.closeTsCol[i] = r.close_ts;
    this.closeCol[i] = r.close;
    this.positionCol[i] = r.target_position ?? Number.NaN;
    const s = r.strategic;
    this.regimeCol[i] = codeOf(REGIMES, s.regime);
    this.regimePCol[i] =
      s.regime !== null && s.regime_probabilities !== null
        ? s.regime_probabilities[s.regime]
        : Number.NaN;
    this.confidenceCol[i] = codeOf(CONFIDENCES, s.confidence);
    this.actionCol[i] = codeOf(ACTIONS, r.actions.tactical);
  }

  private grow(capacity: number): void {
    const f64 = (a: Float64Array): Float64Array => {
      const b = new Float64Array(capacity);
      b.set(a.subarray(0, Math.min(a.length, capacity)));
      return b;
    };
    const u8 = (a: Uint8Array): Uint8Array => {
      const b = new Uint8Array(capacity);
      b.set(a.subarray(0, Math.min(a.length, capacity)));
      return b;
    };
    this.mapColumns(f64, u8);
  }

  /** Replaces every column by its image under `f64` (number columns) or `u8` (code columns). */
  private mapColumns(f64: (a: Float64Array) => Float64Array, u8: (a: Uint8Array) => Uint8Array): void {
    this.tsCol = f64(this.tsCol);
    this.closeTsCol = f64(this.closeTsCol);
    this.closeCol = f64(this.closeCol);
    this.positionCol = f64(this.positionCol);
    this.regimePCol = f64(this.regimePCol);
    this.regimeCol = u8(this.regimeCol);
    this.confidenceCol = u8(this.confidenceCol);
    this.actionCol = u8(this.actionCol);
  }

  /** Puts the results in ts order (they arrive nearly in order) and frees the spare capacity. */
  sortByTs(): void {
    let sorted = true;
    for (let i = 1; i < this.n && sorted; i++)
      if ((this.tsCol[i] as number) < (this.tsCol[i - 1] as number)) sorted = false;
    if (!sorted) {
      const order = Array.from({ length: this.n }, (_, i) => i).sort(
        (a, b) => (this.tsCol[a] as number) - (this.tsCol[b] as number),
      );
      const f64 = (a: Float64Array): Float64Array => Float64Array.from(order, (i) => a[i] as number);
      const u8 = (a: Uint8Array): Uint8Array => Uint8Array.from(order, (i) => a[i] as number);
      this.mapColumns(f64, u8);
    } else if (this.tsCol.length > this.n) this.grow(this.n);
  }

  ts(i: number): number {
    return this.tsCol[i] as number;
  }

  closeTs(i: number): number {
    return this.closeTsCol[i] as number;
  }

  close(i: number): number {
    return this.closeCol[i] as number;
  }

  /** `target_position`, null when the result had none. */
  position(i: number): number | null {
    const p = this.positionCol[i] as number;
    return Number.isNaN(p) ? null : p;
  }

  regime(i: number): Regime | null {
    return REGIMES[this.regimeCol[i] as number] ?? null;
  }

  /** The probability of the called regime, null without a regime or probabilities. */
  regimeP(i: number): number | null {
    const p = this.regimePCol[i] as number;
    return Number.isNaN(p) ? null : p;
  }

  confidence(i: number): string | null {
    return CONFIDENCES[this.confidenceCol[i] as number] ?? null;
  }

  /** `actions.tactical`. */
  action(i: number): string | null {
    return ACTIONS[this.actionCol[i] as number] ?? null;
  }
}
