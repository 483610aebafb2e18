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

/**
 * Per-key token buckets: `perMinute` requests a minute, bursts up to the same number. Memory is
 * bounded by the number of configured keys (only known keys are limited).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private readonly perMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(perMinute) || perMinute < 1) throw new RangeError(`perMinute must be a positive integer, got ${perMinute}`);
    this.perMs = perMinute / 60_000;
  }

  /** Takes one token for `keyId`: 0 when allowed, else the seconds until one is available. */
  take(keyId: string): number {
    const now = this.now();
    const b = this.buckets.get(keyId) ?? { tokens: this.perMinute, atMs: now };
    b.tokens = Math.min(this.perMinute, b.tokens + (now - b.atMs) * this.perMs);
    b.atMs = now;
    this.buckets.set(keyId, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }
}
