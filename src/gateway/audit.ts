import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** One audit record: a call that changes something, whatever its outcome. */
export interface AuditRecord {
  time: string;
  /** Id of the key used (a hash prefix), null when none or an unknown one was given. */
  key_id: string | null;
  role: string | null;
  method: string;
  route: string;
  /** HTTP status and what it means: `202 accepted`, `400 rejected`, `401 unauthorized`, ... */
  outcome: string;
  status: number;
}

/**
 * The append-only JSON-lines audit file (GATEWAY_AUDIT_FILE): one line per changing call. Lines
 * are appended synchronously (`O_APPEND`), one write each, so a line is whole and on disk before
 * the next request's; nothing is ever rewritten or truncated.
 */
export class AuditLog {
  constructor(readonly path: string) {}

  /** Creates the directory; throws when the file cannot be appended to. */
  open(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    appendFileSync(this.path, '');
  }

  write(record: AuditRecord): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }
}
