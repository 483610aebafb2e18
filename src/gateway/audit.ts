import { appendFileSync, mkdirSync } from 'node:fs';
import { appendFile, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../observability/logger';

/** One audit record of a changing call: `started` before the change, then its outcome. */
export interface AuditRecord {
  time: string;
  /** Client address (from X-Forwarded-For only behind a trusted proxy, GATEWAY_TRUST_PROXY). */
  ip: string;
  /** The request's id, also sent back as the `x-request-id` response header. */
  request_id: string;
  /** Id of the key used (a hash prefix). */
  key_id: string | null;
  role: string | null;
  method: string;
  route: string;
  /** `started` (written before anything changes), then the HTTP status and what it means: `202 ok`, `400 rejected`, ... */
  outcome: string;
  status?: number;
  /** What changed or was asked to change: `{bars: n}`, `{version}`, `{replayed: ...}`. */
  change?: Record<string, unknown>;
}

/** The summary of the denied calls (401, 403, 429) of one client address over at most one minute. */
export interface DeniedRecord {
  time: string;
  ip: string;
  outcome: 'denied';
  /** Denied calls since `since`. */
  count: number;
  since: string;
  /** Count per status (`401`, `403`, `429`). */
  statuses: Record<string, number>;
  /** The first request id denied in the window (to find it in the logs). */
  request_id: string;
}

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  path: string;
  /** Size at which the file is rotated (GATEWAY_AUDIT_MAX_BYTES). */
  maxBytes: number;
  /** Rotated files kept, `<path>.1` (newest) … `<path>.<keepFiles>` (GATEWAY_AUDIT_KEEP_FILES). */
  keepFiles: number;
  /** How often denied calls are summarised, per address. @defaultValue 60000 */
  deniedWindowMs?: number;
  /** Most addresses tracked in one window; the calls of further ones are summed under `ip: "*"`. @defaultValue 10000 */
  maxDeniedAddresses?: number;
  log: Logger;
}

interface Pending {
  text: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The JSON-lines audit file (GATEWAY_AUDIT_FILE). Lines are queued and written asynchronously in
 * batches (one `appendFile` per batch, by path, so a file replaced or restored under it is picked
 * up); {@link write} resolves once its line is in the file and rejects when it could not be
 * written, so that a changing route can refuse to change anything (503) without its record. When
 * the file would pass `maxBytes` it is rotated first, keeping `keepFiles` older files.
 *
 * Denied calls never write a line each: {@link denied} counts them per client address, and one
 * summary line per address is written per window (a minute), and at {@link close}. The number of
 * addresses tracked is bounded, so neither memory nor the file grows with a flood.
 */
export class AuditLog {
  private readonly queue: Pending[] = [];
  private writing: Promise<void> | null = null;
  private size = 0;
  private readonly denials = new Map<string, { count: number; since: number; statuses: Record<string, number>; requestId: string }>();
  private deniedTimer: NodeJS.Timeout | null = null;
  /** Lines that could not be written. */
  failures = 0;

  constructor(private readonly options: AuditLogOptions) {
    if (!Number.isInteger(options.maxBytes) || options.maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${options.maxBytes}`);
    if (!Number.isInteger(options.keepFiles) || options.keepFiles < 1) throw new RangeError(`keepFiles must be a positive integer, got ${options.keepFiles}`);
  }

  /** Creates the directory and checks that the file can be appended to (throws otherwise); starts the denied-calls window. */
  open(): void {
    mkdirSync(dirname(this.options.path), { recursive: true });
    appendFileSync(this.options.path, '');
    this.deniedTimer = setInterval(() => void this.flushDenied(), this.options.deniedWindowMs ?? 60_000);
    this.deniedTimer.unref();
  }

  /** Queues one record; resolves once it is in the file, rejects when it could not be written. */
  write(record: AuditRecord | DeniedRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ text: `${JSON.stringify(record)}\n`, resolve, reject });
      this.writing ??= this.drain();
    });
  }

  /** Counts one denied call (401, 403, 429) of `ip`; see the class comment. */
  denied(ip: string, status: number, requestId: string): void {
    let key = ip;
    if (!this.denials.has(key) && this.denials.size >= (this.options.maxDeniedAddresses ?? 10_000)) key = '*';
    let d = this.denials.get(key);
    if (d === undefined) this.denials.set(key, (d = { count: 0, since: Date.now(), statuses: {}, requestId }));
    d.count++;
    d.statuses[String(status)] = (d.statuses[String(status)] ?? 0) + 1;
  }

  /** Writes the denied-calls summaries of the window now ending. */
  async flushDenied(): Promise<void> {
    const entries = [...this.denials];
    this.denials.clear();
    const time = new Date().toISOString();
    await Promise.all(
      entries.map(([ip, d]) =>
        this.write({ time, ip, outcome: 'denied', count: d.count, since: new Date(d.since).toISOString(), statuses: d.statuses, request_id: d.requestId }).catch(() => undefined),
      ),
    );
  }

  /** Writes the pending summaries and every queued line. */
  async close(): Promise<void> {
    if (this.deniedTimer !== null) clearInterval(this.deniedTimer);
    this.deniedTimer = null;
    await this.flushDenied();
    await this.writing;
  }

  private async drain(): Promise<void> {
    try {
      // The size is read once; from then on this process is the file's only writer.
      this.size = await stat(this.options.path).then((s) => s.size, () => 0);
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.queue.length);
        const text = batch.map((p) => p.text).join('');
        const bytes = Buffer.byteLength(text);
        try {
          if (this.size > 0 && this.size + bytes > this.options.maxBytes) await this.rotate();
          await appendFile(this.options.path, text);
          this.size += bytes;
          for (const p of batch) p.resolve();
        } catch (err) {
          this.failures += batch.length;
          // The message names no path: it may reach a client through a 503.
          this.options.log.error({ err: (err as NodeJS.ErrnoException).code ?? (err as Error).message, lines: batch.length }, 'audit lines could not be written');
          this.size = await stat(this.options.path).then((s) => s.size, () => 0);
          for (const p of batch) p.reject(new Error(`audit file not writable (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
        }
      }
    } finally {
      this.writing = null;
    }
  }

  private async rotate(): Promise<void> {
    const { path, keepFiles } = this.options;
    await rm(`${path}.${keepFiles}`, { force: true });
    for (let i = keepFiles - 1; i >= 1; i--) {
      await rename(`${path}.${i}`, `${path}.${i + 1}`).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    await rename(path, `${path}.1`);
    this.size = 0;
  }
}
