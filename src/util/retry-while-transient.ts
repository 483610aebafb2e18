import { Backoff, retry } from './backoff';

/** Socket error codes of a peer that is still starting or briefly unreachable: worth another try. */
export const TRANSIENT_SOCKET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'EPIPE',
]);

/** True when `err` carries one of {@link TRANSIENT_SOCKET_CODES}. */
export function isTransientSocketError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_SOCKET_CODES.has(code);
}

/**
 * Runs `attempt` until it resolves. While it fails with an error `isTransient` accepts, it waits
 * (100 ms, doubling up to 1 s, with jitter) and tries again, as long as the next try would start
 * within `waitMs` of the first; any other error, or the last one, is thrown as it is.
 */
export function retryWhileTransient<T>(attempt: () => Promise<T>, isTransient: (err: unknown) => boolean, waitMs: number): Promise<T> {
  const deadline = Date.now() + waitMs;
  const backoff = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000 });
  return retry(attempt, {
    backoff,
    shouldRetry: (err, n) => isTransient(err) && Date.now() + backoff.nominalDelayMs(n) < deadline,
  });
}
