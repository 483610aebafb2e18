/**
 * The results of one symbol as the report needs them, in columns of typed arrays instead of one
 * object per result: 43 bytes a result (a year of 5m bars of one symbol is about 4.5 MB) where the
 * parsed objects would need kilobytes. Only the fields the charts and tables read are kept; the
 * counts are taken as results arrive (see {@link ReportAccumulator}), which also moves full blocks
 * of rows to a scratch file ({@link encode}, {@link appendEncoded}) so that only one symbol's
 * series is in memory at a time.
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

  /** Bytes a row takes in memory and in {@link encode}: five 8-byte numbers and three 1-byte codes. */
  static readonly BYTES_PER_ROW = 43;

  /** The rows as bytes: each number column (8 bytes a row), then each code column (1 byte a row). */
  encode(): Uint8Array {
    const n = this.n;
    const out = new Uint8Array(n * SymbolSeries.BYTES_PER_ROW);
    const f64 = new Float64Array(out.buffer, 0, n * 5);
    [this.tsCol, this.closeTsCol, this.closeCol, this.positionCol, this.regimePCol].forEach((c, k) =>
      f64.set(c.subarray(0, n), k * n),
    );
    [this.regimeCol, this.confidenceCol, this.actionCol].forEach((c, k) => out.set(c.subarray(0, n), n * 40 + k * n));
    return out;
  }

  /** Appends `count` rows that {@link encode} wrote (`bytes` starting at offset 0 of its buffer). */
  appendEncoded(bytes: Uint8Array, count: number): void {
    if (bytes.byteLength !== count * SymbolSeries.BYTES_PER_ROW || bytes.byteOffset % 8 !== 0)
      throw new RangeError(`appendEncoded: ${bytes.byteLength} bytes at offset ${bytes.byteOffset} are not ${count} rows`);
    if (this.n + count > this.tsCol.length) this.grow(this.n + count);
    const f64 = new Float64Array(bytes.buffer, bytes.byteOffset, count * 5);
    const at = this.n;
    [this.tsCol, this.closeTsCol, this.closeCol, this.positionCol, this.regimePCol].forEach((c, k) =>
      c.set(f64.subarray(k * count, (k + 1) * count), at),
    );
    [this.regimeCol, this.confidenceCol, this.actionCol].forEach((c, k) =>
      c.set(bytes.subarray(count * 40 + k * count, count * 40 + (k + 1) * count), at),
    );
    this.n += count;
  }

  /** Makes room for `rows` rows in all, so that appending up to there allocates nothing. */
  reserve(rows: number): void {
    if (rows > this.tsCol.length) this.grow(rows);
  }

  /** Forgets every row, keeping the capacity (for the next block). */
  clear(): void {
    this.n = 0;
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
