import type { StageHealth } from '../../schemas/gateway.schema';
import type { Logger } from '../observability/logger';
import { binOfQuantile } from '../util/quantile';
import type { StoredResult } from './recent-results';

/** Shortest time between two requests to the supervisor's /health. */
const HEALTH_CACHE_MS = 1000;
/** Age up to which a supervisor /health answer is served without waiting for a newer one. */
const HEALTH_STALE_MS = 5000;

/** The supervisor's /health status and body, or null when it could not be reached. */
export type HealthAnswer = { status: number; body: Record<string, unknown> } | null;

/** Seconds over which figures are measured. */
export const STATS_WINDOW_SECONDS = 60;

// Log-scale latency histogram: bin i covers [MIN·R^i, MIN·R^(i+1)) ms, 5% wide, 0.01 ms to ~10 min.
const MIN_MS = 0.01;
const RATIO = 1.05;
const BINS = 370;
const LOG_RATIO = Math.log(RATIO);

function binOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.min(BINS - 1, Math.floor(Math.log(ms / MIN_MS) / LOG_RATIO));
}

/**
 * Per-second buckets of the results the gateway saw over the last minute: count, a latency
 * histogram of `latency_ms` (5% resolution), and the latest model version. Constant memory.
 */
export class ResultWindow {
  private readonly counts = new Float64Array(STATS_WINDOW_SECONDS + 1);
  private readonly hist = new Float64Array((STATS_WINDOW_SECONDS + 1) * BINS);
  private readonly seconds = new Float64Array(STATS_WINDOW_SECONDS + 1).fill(-1);
  private readonly startedSecond: number;
  modelVersion: string | null = null;

  constructor(private readonly now: () => number = Date.now) {
    this.startedSecond = Math.floor(now() / 1000);
  }

  add(stored: StoredResult): void {
    const second = Math.floor(this.now() / 1000);
    const slot = second % this.counts.length;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.counts[slot] = 0;
      this.hist.fill(0, slot * BINS, (slot + 1) * BINS);
    }
    this.counts[slot]!++;
    this.hist[slot * BINS + binOf(stored.result.latency_ms)]!++;
    this.modelVersion = stored.result.model_version;
  }

  /** Results per second, latency p50/p99 (ms) over the complete seconds of the last minute. */
  figures(): { windowSeconds: number; perSecond: number | null; p50: number | null; p99: number | null; count: number } {
    const current = Math.floor(this.now() / 1000);
    const span = Math.min(STATS_WINDOW_SECONDS, current - this.startedSecond);
    if (span <= 0) return { windowSeconds: 0, perSecond: null, p50: null, p99: null, count: 0 };
    const merged = new Float64Array(BINS);
    let count = 0;
    for (let s = current - span; s < current; s++) {
      const slot = s % this.counts.length;
      if (this.seconds[slot] !== s) continue;
      count += this.counts[slot]!;
      for (let b = 0; b < BINS; b++) merged[b]! += this.hist[slot * BINS + b]!;
    }
    const quantile = (q: number): number | null => {
      const b = binOfQuantile(merged, q);
      return b < 0 ? null : Math.round(MIN_MS * RATIO ** (b + 0.5) * 1000) / 1000;
    };
    return { windowSeconds: span, perSecond: Math.round((count / span) * 1000) / 1000, p50: quantile(0.5), p99: quantile(0.99), count };
  }
}

/** One scrape of the supervisor's /metrics, reduced to what the health figures need. */
interface Scrape {
  atMs: number;
  /** pipeline_messages_handled_total with outcome ok, summed per role (`strategic`, `tactical`). */
  handled: Record<string, number>;
  /** pipeline_message_handle_seconds buckets per role: le → cumulative count. */
  buckets: Record<string, Map<number, number>>;
  /** `<worker>/<stage>` → gauge value. */
  breakers: Record<string, number>;
}

/**
 * Parses the Prometheus text the supervisor serves at /metrics, aggregated over its workers. Why
 * text and not prom-client's `getMetricsAsJSON()`/`metric.get()`: the figures live in other
 * processes (the strategic workers' registries; the gateway is a worker of its own), and the only
 * place that holds them together is the supervisor, which serves them to this process over HTTP as
 * the exposition format. The gateway's own registry holds none of them. This is the one parser of
 * that format in src/; it reads the three series the health figures need and skips everything else.
 */
export function parseScrape(text: string, atMs: number): Scrape {
  const scrape: Scrape = { atMs, handled: {}, buckets: {}, breakers: {} };
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const m = /^([a-z_:]+)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (m === null) continue;
    const [, name, rawLabels, rawValue] = m;
    const labels: Record<string, string> = {};
    for (const l of rawLabels!.matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const value = Number(rawValue);
    if (!Number.isFinite(value)) continue;
    const role = roleOfQueue(labels.queue);
    if (name === 'pipeline_messages_handled_total' && role !== null && labels.outcome === 'ok') {
      scrape.handled[role] = (scrape.handled[role] ?? 0) + value;
    } else if (name === 'pipeline_message_handle_seconds_bucket' && role !== null && labels.le !== undefined) {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      const map = (scrape.buckets[role] ??= new Map());
      map.set(le, (map.get(le) ?? 0) + value);
    } else if (name === 'pipeline_breaker_state' && labels.stage !== undefined && labels.worker !== undefined) {
      scrape.breakers[`${labels.worker}/${labels.stage}`] = value;
    }
  }
  return scrape;
}

function roleOfQueue(queue: string | undefined): 'strategic' | 'tactical' | null {
  if (queue === undefined) return null;
  if (queue.startsWith('strategic_processing')) return 'strategic';
  if (queue.startsWith('tactical_processing')) return 'tactical';
  return null;
}

/** Options of {@link PipelineStats}. */
export interface PipelineStatsOptions {
  /** The supervisor's /health and /metrics base URL, e.g. `http://127.0.0.1:9464`. */
  supervisorUrl: string;
  /** How often /metrics is scraped. @defaultValue 5000 */
  scrapeEveryMs?: number;
  /** Messages waiting in pipeline.dead_letters. */
  deadLetters: () => number | null;
  log: Logger;
}

/**
 * What GET /api/strategic/health and /api/tactical/health answer: figures measured over the last
 * minute, never constants. Tactical figures come from the results the gateway receives (results/s
 * and their `latency_ms`, end to end through the tactical worker); strategic figures from the
 * supervisor's /metrics, scraped every few seconds (30m bars handled/s, handling time from the
 * `pipeline_message_handle_seconds` histogram, so p50/p99 are bucket bounds). Breaker states come
 * from the `pipeline_breaker_state` gauges of the workers. A figure that could not be measured is
 * null and says why in `degraded`.
 */
export class PipelineStats {
  readonly results = new ResultWindow();
  private readonly scrapes: Scrape[] = [];
  private timer: NodeJS.Timeout | null = null;
  private scrapeError: string | null = null;
  private healthFetch: Promise<HealthAnswer> | null = null;
  private healthFetchAtMs = -Infinity;
  private healthAnswer: { value: HealthAnswer; atMs: number } | null = null;

  constructor(private readonly options: PipelineStatsOptions) {}

  start(): void {
    const tick = (): void => void this.scrape();
    tick();
    this.timer = setInterval(tick, this.options.scrapeEveryMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * The supervisor's /health answer: `null` when it cannot be reached. The supervisor is asked at
   * most once a second whatever the request rate, and callers do not wait for it while an answer
   * younger than {@link HEALTH_STALE_MS} is at hand: they get that one and the next fetch runs in the
   * background (a loaded supervisor must not make the gateway's own health slow). Only without such
   * an answer (the first call, or a supervisor that stopped answering) do callers wait for the fetch.
   */
  supervisorHealth(): Promise<HealthAnswer> {
    const now = Date.now();
    if (this.healthFetch === null && now - this.healthFetchAtMs >= HEALTH_CACHE_MS) {
      this.healthFetchAtMs = now;
      this.healthFetch = this.fetchHealth().then((value) => {
        this.healthAnswer = { value, atMs: Date.now() };
        this.healthFetch = null;
        return value;
      });
    }
    if (this.healthAnswer !== null && now - this.healthAnswer.atMs < HEALTH_STALE_MS) return Promise.resolve(this.healthAnswer.value);
    return this.healthFetch ?? Promise.resolve(this.healthAnswer?.value ?? null);
  }

  private async fetchHealth(): Promise<HealthAnswer> {
    try {
      const res = await fetch(`${this.options.supervisorUrl}/health`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as Record<string, unknown>;
      return { status: res.status, body };
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'supervisor health unreachable');
      return null;
    }
  }

  private async scrape(): Promise<void> {
    try {
      const res = await fetch(`${this.options.supervisorUrl}/metrics`, { signal: AbortSignal.timeout(4000) });
      const text = await res.text();
      this.scrapes.push(parseScrape(text, Date.now()));
      while (this.scrapes.length > 2 && this.scrapes[1]!.atMs <= Date.now() - STATS_WINDOW_SECONDS * 1000) this.scrapes.shift();
      this.scrapeError = null;
    } catch (err) {
      this.scrapeError = `supervisor /metrics unreachable (${(err as Error).message})`;
    }
  }

  /** The health of one stage. */
  async stage(stage: 'strategic' | 'tactical'): Promise<StageHealth> {
    const health = await this.supervisorHealth();
    const degraded: string[] = [];
    const reasons: string[] = [];
    if (this.scrapeError !== null) degraded.push(`metrics: ${this.scrapeError}`);
    const newest = this.scrapes[this.scrapes.length - 1];
    const oldest = this.scrapes[0];
    const breakers: StageHealth['breakers'] = {};
    for (const [name, v] of Object.entries(newest?.breakers ?? {})) {
      if (!name.startsWith(`${stage}/`) && !name.startsWith(`${stage}.`)) continue;
      breakers[name] = v >= 2 ? 'open' : v >= 1 ? 'half_open' : 'closed';
    }
    let status: StageHealth['status'] = 'ok';
    if (health === null) {
      status = 'unavailable';
      reasons.push('supervisor /health unreachable');
    } else {
      const workers = (health.body.workers ?? {}) as Record<string, { consuming?: boolean }>;
      const mine = Object.entries(workers).filter(([name]) => name === stage || name.startsWith(`${stage}.`));
      if (mine.length === 0) {
        status = 'unavailable';
        reasons.push(`no ${stage} worker under this supervisor (PIPELINE_ROLES)`);
      }
      for (const [name, w] of mine) {
        if (w.consuming !== true) {
          status = 'unavailable';
          reasons.push(`${name} is not consuming`);
        }
      }
    }
    if (status === 'ok' && Object.values(breakers).some((b) => b !== 'closed')) {
      status = 'degraded';
      reasons.push('a circuit breaker is not closed');
    }
    let windowSeconds = 0;
    let perSecond: number | null = null;
    let p50: number | null = null;
    let p99: number | null = null;
    let latencySource: string;
    let modelVersion: string | null = null;
    if (stage === 'tactical') {
      const f = this.results.figures();
      windowSeconds = f.windowSeconds;
      perSecond = f.perSecond;
      p50 = f.p50;
      p99 = f.p99;
      modelVersion = this.results.modelVersion;
      latencySource = 'latency_ms of the integrated results received (delivery to publish in the tactical worker), 5% bins';
      if (f.count === 0) degraded.push('latency: no result in the window');
    } else {
      latencySource = 'pipeline_message_handle_seconds of strategic_processing queues (delivery to ack), bucket upper bounds';
      if (newest !== undefined && oldest !== undefined && newest !== oldest) {
        const dt = (newest.atMs - oldest.atMs) / 1000;
        windowSeconds = Math.round(dt * 10) / 10;
        perSecond = Math.round((((newest.handled.strategic ?? 0) - (oldest.handled.strategic ?? 0)) / dt) * 1000) / 1000;
        const q = bucketQuantiles(oldest.buckets.strategic, newest.buckets.strategic);
        p50 = q.p50;
        p99 = q.p99;
        if (q.p50 === null) degraded.push('latency: no 30m bar handled in the window');
      } else {
        degraded.push('metrics: fewer than two scrapes of /metrics so far');
      }
    }
    return {
      stage,
      status,
      reasons,
      window_seconds: windowSeconds,
      bars_per_second: perSecond,
      latency_ms_p50: p50,
      latency_ms_p99: p99,
      latency_source: latencySource,
      breakers,
      model_version: modelVersion,
      dead_letters: this.options.deadLetters(),
      degraded,
    };
  }
}

/** p50/p99 in ms (bucket upper bounds) of the observations between two cumulative histograms. */
function bucketQuantiles(before: Map<number, number> | undefined, after: Map<number, number> | undefined): { p50: number | null; p99: number | null } {
  if (after === undefined) return { p50: null, p99: null };
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const cumulative = bounds.map((le) => (after.get(le) ?? 0) - (before?.get(le) ?? 0));
  const perBucket = cumulative.map((c, i) => c - (i === 0 ? 0 : cumulative[i - 1]!));
  const at = (q: number): number | null => {
    const i = binOfQuantile(perBucket, q);
    return i >= 0 && Number.isFinite(bounds[i]!) ? bounds[i]! * 1000 : null;
  };
  return { p50: at(0.5), p99: at(0.99) };
}
