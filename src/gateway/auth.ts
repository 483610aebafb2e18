import { randomBytes } from 'node:crypto';
import { GATEWAY_ROLES, hashApiKey, type GatewayKey, type GatewayRole } from '../config/config';

/** Who made a request: the key's id (a prefix of its hash, safe to log) and its role. */
export interface Caller {
  keyId: string;
  role: GatewayRole;
}

/**
 * The configured API keys, as SHA-256 hashes only (GATEWAY_API_KEYS or GATEWAY_API_KEYS_FILE): a
 * presented key is hashed and looked up. The key id shown in logs and the audit file is the first
 * 12 hex digits of the hash, never the key.
 */
export class KeyStore {
  private readonly byHash = new Map<string, Caller>();

  constructor(keys: readonly GatewayKey[]) {
    for (const k of keys) this.byHash.set(k.hash, { keyId: k.hash.slice(0, 12), role: k.role });
  }

  get size(): number {
    return this.byHash.size;
  }

  /** The caller a presented key belongs to, or null for an unknown key. */
  resolve(key: string): Caller | null {
    // Hashes are compared, never keys: what a lookup's timing could reveal is a hash prefix of a
    // key the caller already holds.
    return this.byHash.get(hashApiKey(key)) ?? null;
  }
}

/** True when `role` may do what `needed` may. */
export function roleAtLeast(role: GatewayRole, needed: GatewayRole): boolean {
  return GATEWAY_ROLES.indexOf(role) >= GATEWAY_ROLES.indexOf(needed);
}

/** A ticket's holder, and until when it may open a socket. */
interface Ticket {
  caller: Caller;
  expiresAtMs: number;
}

/**
 * Single-use WebSocket tickets (`POST /api/ws-ticket`): a browser cannot set `Authorization` on a
 * WebSocket, and a key in the URL ends up in proxy logs, so it trades its key for a random ticket
 * bound to the key's id and role, valid `ttlSeconds`, which opens one socket once. Only a hash of
 * each ticket is kept. Memory is bounded by the ticket rate the per-key limit allows times the
 * lifetime; expired tickets are dropped on every issue.
 */
export class TicketStore {
  private readonly byHash = new Map<string, Ticket>();

  constructor(
    readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
  }

  get size(): number {
    return this.byHash.size;
  }

  /** A new ticket for `caller`. */
  issue(caller: Caller): string {
    const now = this.now();
    for (const [hash, t] of this.byHash) if (t.expiresAtMs <= now) this.byHash.delete(hash);
    const ticket = randomBytes(24).toString('base64url');
    this.byHash.set(hashApiKey(ticket), { caller, expiresAtMs: now + this.ttlSeconds * 1000 });
    return ticket;
  }

  /** The caller of a valid ticket, without using it (for the rate limit's key). */
  peek(ticket: string): Caller | null {
    const t = this.byHash.get(hashApiKey(ticket));
    return t === undefined || t.expiresAtMs <= this.now() ? null : t.caller;
  }

  /** Uses a ticket: its caller once, then null (and null for an expired or unknown one). */
  take(ticket: string): Caller | null {
    const hash = hashApiKey(ticket);
    const t = this.byHash.get(hash);
    if (t === undefined) return null;
    this.byHash.delete(hash);
    return t.expiresAtMs <= this.now() ? null : t.caller;
  }
}
