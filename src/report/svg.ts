/**
 * The one chart kit of the project's HTML pages (the replay report and the eval report): small
 * helpers that draw inline SVG (strings only; pure). Pages include {@link CHART_CSS} in their style.
 */

/** The style of what the kit draws: the chart box, grid lines, axis lines and tick labels. */
export const CHART_CSS =
  '.chart{display:block;max-width:100%;height:auto;background:#fff}\n.grid{stroke:#eee;stroke-width:1}.axis{stroke:#999;stroke-width:1}.tick{font-size:11px;fill:#555}\n';

export const REGIME_COLOURS: Record<string, string> = {
  BULL: '#cdebd0',
  BEAR: '#f6d0d0',
  SIDEWAYS: '#e6e6e6',
  VOLATILE: '#fbe0b5',
};

/** Escapes text for HTML and SVG. */
export function esc(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** A linear map from [d0, d1] to [r0, r1] (a flat domain maps to the middle). */
export function linear(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  if (!(d1 > d0)) return () => (r0 + r1) / 2;
  return (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
}

const f = (v: number): string => (Math.round(v * 10) / 10).toString();

/** `M x y L x y …` of the points. */
export function pathD(points: readonly (readonly [number, number])[]): string {
  return points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${f(x)} ${f(y)}`).join('');
}

/**
 * Keeps at most ~2 points per pixel column: for each column the first, min, max and last value in
 * their order, so a long series draws the same envelope with a bounded path.
 */
export function downsample(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  x: (v: number) => number,
): [number, number][] {
  const out: [number, number][] = [];
  let col = Number.NaN;
  let bucket: [number, number][] = [];
  const flush = (): void => {
    if (bucket.length <= 4) {
      out.push(...bucket);
    } else {
      let lo = bucket[0] as [number, number];
      let hi = lo;
      for (const p of bucket) {
        if (p[1] < lo[1]) lo = p;
        if (p[1] > hi[1]) hi = p;
      }
      const mid = lo[0] <= hi[0] ? [lo, hi] : [hi, lo];
      out.push(
        bucket[0] as [number, number],
        ...mid,
        bucket[bucket.length - 1] as [number, number],
      );
    }
    bucket = [];
  };
  for (let i = 0; i < xs.length; i++) {
    const px = x(xs[i] as number);
    const c = Math.floor(px);
    if (c !== col) {
      flush();
      col = c;
    }
    bucket.push([px, ys[i] as number]);
  }
  flush();
  return out;
}

/** About `count` round tick values covering [min, max]. */
export function ticks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/** A number for an axis label: no more digits than the tick step needs. */
export function fmtTick(v: number, step: number): string {
  const digits = Math.max(0, Math.min(8, -Math.floor(Math.log10(Math.abs(step) || 1)) + 1));
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** `2025-04-03 17:05` (UTC). */
export function fmtTime(ts: number): string {
  return new Date(ts).toISOString().slice(0, 16).replace('T', ' ');
}

/** Chart frame: plot area and the SVG open tag. */
export interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export function frame(
  width: number,
  height: number,
  margin = { left: 64, right: 12, top: 10, bottom: 26 },
): Frame {
  return {
    width,
    height,
    left: margin.left,
    right: width - margin.right,
    top: margin.top,
    bottom: height - margin.bottom,
  };
}

export function svgOpen(fr: Frame, label: string, cls: string): string {
  return `<svg class="chart ${cls}" role="img" aria-label="${esc(label)}" viewBox="0 0 ${fr.width} ${fr.height}" width="${fr.width}" height="${fr.height}" xmlns="http://www.w3.org/2000/svg">`;
}

/** Y axis with grid lines and labels. */
export function yAxis(
  fr: Frame,
  min: number,
  max: number,
  y: (v: number) => number,
  format?: (v: number) => string,
): string {
  const t = ticks(min, max, 5);
  const step = t.length > 1 ? (t[1] as number) - (t[0] as number) : Math.abs(max) || 1;
  return t
    .map((v) => {
      const py = f(y(v));
      return `<line class="grid" x1="${fr.left}" x2="${fr.right}" y1="${py}" y2="${py}"/><text class="tick" x="${fr.left - 4}" y="${py}" text-anchor="end" dominant-baseline="middle">${esc(format ? format(v) : fmtTick(v, step))}</text>`;
    })
    .join('');
}

/** X axis of times: a few labels along the bottom. */
export function timeAxis(
  fr: Frame,
  t0: number,
  t1: number,
  x: (v: number) => number,
  count = 5,
): string {
  if (!(t1 > t0)) return '';
  const out: string[] = [];
  for (let i = 0; i <= count; i++) {
    const t = t0 + ((t1 - t0) * i) / count;
    const anchor = i === 0 ? 'start' : i === count ? 'end' : 'middle';
    out.push(
      `<text class="tick" x="${f(x(t))}" y="${fr.bottom + 16}" text-anchor="${anchor}">${fmtTime(t)}</text>`,
    );
  }
  return `<line class="axis" x1="${fr.left}" x2="${fr.right}" y1="${fr.bottom}" y2="${fr.bottom}"/>${out.join('')}`;
}
