import type { Logger } from '../observability/logger';
import type { StoredResult } from './recent-results';

/** What the hub needs of a WebSocket (the `ws` socket @fastify/websocket hands over). */
export interface HubSocket {
  readonly readyState: number;
  readonly OPEN: number;
  /** Bytes queued and not yet written to the network (ws counts the stream's queue in it). */
  readonly bufferedAmount: number;
  send(data: string | Buffer, options?: { binary?: boolean }): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): void;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'pong', listener: () => void): unknown;
  on(event: 'message', listener: () => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}

/** The byte stream a `ws` socket wraps (a net.Socket, or a tls.TLSSocket under GATEWAY_TLS_*). */
export interface ByteStream {
  readonly destroyed: boolean;
  cork(): void;
  uncork(): void;
  write(chunk: Buffer): boolean;
}

/** Close code for a client too slow to keep up (RFC 6455 "try again later"). */
export const WS_CLOSE_TOO_SLOW = 1013;
/** Close code for a client that sent a data frame: the socket is push-only (RFC 6455 "policy violation"). */
export const WS_CLOSE_POLICY = 1008;

/** Options of {@link WsHub}. */
export interface WsHubOptions {
  /** Bytes a client may have unsent (its `bufferedAmount` plus frames waiting for the next flush) before it is closed with 1013. */
  maxBufferedBytes: number;
  /**
   * Shortest time between two flushes to the sockets. A result that arrives when the last flush is
   * older than this goes out in the same event-loop turn; under load, each client's frames of this
   * many milliseconds go out in one write. 0 flushes once per event-loop turn. @defaultValue 20
   */
  flushIntervalMs?: number;
  /** How long a closed slow client gets to take its close frame before it is terminated. @defaultValue 5000 */
  terminateAfterMs?: number;
  /** Sockets per key (GATEWAY_WS_MAX_PER_KEY). @defaultValue 16 */
  maxPerKey?: number;
  /** Sockets in all (GATEWAY_WS_MAX_TOTAL). @defaultValue 1000 */
  maxTotal?: number;
  /** Interval of the pings; a socket that has not answered one by the next is terminated (GATEWAY_WS_PING_MS). @defaultValue 30000 */
  pingMs?: number;
  log: Logger;
}

interface Client {
  socket: HubSocket;
  /** The stream under the socket, when frames can be written to it directly (see {@link byteStreamOf}). */
  stream: ByteStream | null;
  symbols: ReadonlySet<string>;
  stats: boolean;
  /** Frames waiting for the next flush, in order. */
  pending: Buffer[];
  pendingBytes: number;
  /** The key whose slot it holds. */
  keyId: string;
  /** A pong came since the last ping. */
  alive: boolean;
}

/**
 * One WebSocket text frame (RFC 6455 section 5.2: FIN, opcode 1, unmasked as every server frame
 * is) holding `payload`. The same bytes are valid on every connection, so a result is framed once
 * for all its subscribers.
 */
export function textFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x81;
  if (n < 126) {
    frame[1] = n;
  } else if (n < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  payload.copy(frame, head);
  return frame;
}

/** The payload of a frame made by {@link textFrame} (a view, no copy). */
function payloadOf(frame: Buffer): Buffer {
  const len = frame[1]! & 0x7f;
  return frame.subarray(len === 127 ? 10 : len === 126 ? 4 : 2);
}

/**
 * The stream under a `ws` socket, when the hub may write whole frames to it: ws has no call to send
 * a frame built in advance, and `send` would frame the same bytes again for every client and make
 * one write (one system call) per frame. Writing to the stream is what `send` itself does when no
 * extension is negotiated (the server does not offer permessage-deflate). This relies on two
 * private parts of ws, checked against the installed ws by test/integration/ws-internals.test.ts:
 * `_socket` (the stream) and `extensions` (`''` without an extension), and on `bufferedAmount`
 * counting what the stream holds. Falls back to `send` (one write a frame: slower, equally correct)
 * with an extension negotiated (`missing` null: expected) or when ws's internals differ (`missing`
 * says what is absent, and the hub logs it once).
 */
export function byteStreamOf(socket: HubSocket): { stream: ByteStream | null; missing: string | null } {
  const ws = socket as HubSocket & { extensions?: unknown; _socket?: Partial<ByteStream> | null };
  if (typeof ws.extensions === 'string' && ws.extensions !== '') return { stream: null, missing: null };
  if (ws.extensions !== '') return { stream: null, missing: 'no `extensions` string on the socket' };
  const stream = ws._socket;
  if (stream === null || typeof stream !== 'object') return { stream: null, missing: 'no `_socket` stream on the socket' };
  if (typeof stream.write !== 'function' || typeof stream.cork !== 'function' || typeof stream.uncork !== 'function') {
    return { stream: null, missing: '`_socket` has no write/cork/uncork' };
  }
  return { stream: stream as ByteStream, missing: null };
}

/**
 * Fans results out to WebSocket clients by symbol. Each result is encoded and framed once, and the
 * same frame is queued for every subscribed client; queued frames go out per client in one write at
 * the next flush (at most one flush per `flushIntervalMs`, so under load a client's frames are
 * batched, and when idle a result leaves in the turn it arrived). Sending never waits for a client: a
 * client whose unsent bytes (`bufferedAmount` plus its queued frames) would pass the bound is closed
 * with 1013 and terminated shortly after, so a stalled client costs at most its bound in memory and
 * never delays anyone else or the pipeline. Results reach this hub in `ts` order per symbol
 * ({@link RecentResults}) and each client's queue keeps that order. Emits nothing; counts what it does.
 */
export class WsHub {
  private readonly bySymbol = new Map<string, Set<Client>>();
  private readonly clients = new Set<Client>();
  private readonly dirty = new Set<Client>();
  private readonly flushIntervalMs: number;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushImmediate: NodeJS.Immediate | null = null;
  private lastFlushAt = -Infinity;
  /** Result frames sent. */
  sent = 0;
  /** Writes to the clients' streams (each carries one or more frames). */
  writes = 0;
  /** Clients closed for being too slow. */
  closedSlow = 0;
  /** Clients closed for not answering a ping, and for sending a data frame. */
  closedDead = 0;
  closedPolicy = 0;
  /** Upgrades refused by the caps. */
  refused = 0;
  /** Sockets per key id, reserved at the upgrade and released when the socket closes. */
  private readonly perKey = new Map<string, number>();
  private reserved = 0;
  private pingTimer: NodeJS.Timeout | null = null;
  /** A socket without the ws internals {@link byteStreamOf} expects has been logged. */
  private warnedInternals = false;

  constructor(private readonly options: WsHubOptions) {
    const ms = options.flushIntervalMs ?? 20;
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`flushIntervalMs must be a finite number >= 0, got ${String(ms)}`);
    this.flushIntervalMs = ms;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * Takes a slot for one more socket of `keyId` before its upgrade: false when the key or the
   * gateway is at its cap (the upgrade then gets 429). Every true must be matched by one
   * {@link release}, which {@link add} does when the socket closes.
   */
  reserve(keyId: string): boolean {
    const n = this.perKey.get(keyId) ?? 0;
    if (n >= (this.options.maxPerKey ?? 16) || this.reserved >= (this.options.maxTotal ?? 1000)) {
      this.refused++;
      return false;
    }
    this.perKey.set(keyId, n + 1);
    this.reserved++;
    return true;
  }

  /** Gives back a slot taken by {@link reserve}. */
  release(keyId: string): void {
    const n = this.perKey.get(keyId) ?? 0;
    if (n <= 0) return;
    if (n === 1) this.perKey.delete(keyId);
    else this.perKey.set(keyId, n - 1);
    this.reserved--;
  }

  /** Starts the pings (every `pingMs`; a socket that did not answer the previous one is terminated). */
  start(): void {
    if (this.pingTimer !== null) return;
    this.pingTimer = setInterval(() => this.pingAll(), this.options.pingMs ?? 30_000);
    this.pingTimer.unref();
  }

  private pingAll(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        this.closedDead++;
        this.options.log.debug({ keyId: client.keyId }, 'websocket client did not answer a ping; terminating');
        this.forget(client);
        client.socket.terminate();
        continue;
      }
      client.alive = false;
      try {
        client.socket.ping();
      } catch {
        // A socket closing under us: its close event removes it.
      }
    }
  }

  /**
   * Subscribes a socket to `symbols`, holding a slot of `keyId` taken by {@link reserve} (given
   * back when it closes). The socket is push-only: a data frame from the client closes it with 1008.
   */
  add(socket: HubSocket, symbols: readonly string[], stats = false, keyId = ''): void {
    const { stream, missing } = byteStreamOf(socket);
    if (missing !== null && !this.warnedInternals) {
      this.warnedInternals = true;
      this.options.log.warn({ missing }, 'ws internals differ from what direct frame writes expect: results go out through send, one write a frame (slower, still correct)');
    }
    const client: Client = { socket, stream, symbols: new Set(symbols), stats, pending: [], pendingBytes: 0, keyId, alive: true };
    let released = false;
    socket.once('close', () => {
      if (!released) this.release(keyId);
      released = true;
    });
    socket.on('pong', () => {
      client.alive = true;
    });
    socket.on('message', () => {
      if (!this.clients.has(client)) return;
      this.closedPolicy++;
      this.forget(client);
      socket.close(WS_CLOSE_POLICY, 'push-only: send nothing on this socket');
      const timer = setTimeout(() => socket.terminate(), this.options.terminateAfterMs ?? 5000);
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    });
    this.clients.add(client);
    for (const s of client.symbols) {
      let set = this.bySymbol.get(s);
      if (set === undefined) this.bySymbol.set(s, (set = new Set()));
      set.add(client);
    }
    const remove = (): void => this.forget(client);
    socket.on('close', remove);
    socket.on('error', (err) => {
      this.options.log.debug({ err: err.message }, 'websocket client error');
      remove();
    });
  }

  /** Queues one result for every client subscribed to its symbol. */
  publish(stored: StoredResult): void {
    const set = this.bySymbol.get(stored.result.symbol);
    if (set === undefined || set.size === 0) return;
    const frame = textFrame(Buffer.from(stored.text, 'utf8'));
    for (const client of set) this.enqueue(client, frame);
  }

  /** Queues a stats frame for the clients that asked for them (`?stats=1`). */
  broadcastStats(text: string): void {
    const frame = textFrame(Buffer.from(text, 'utf8'));
    for (const client of this.clients) if (client.stats) this.enqueue(client, frame);
  }

  /** Writes every queued frame now (called by the flush timer, and before closing). */
  flush(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    if (this.flushImmediate !== null) clearImmediate(this.flushImmediate);
    this.flushTimer = null;
    this.flushImmediate = null;
    this.lastFlushAt = performance.now();
    for (const client of this.dirty) this.write(client);
    this.dirty.clear();
  }

  private enqueue(client: Client, frame: Buffer): void {
    const { socket } = client;
    if (socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount + client.pendingBytes + frame.length > this.options.maxBufferedBytes) {
      this.closeSlow(client);
      return;
    }
    client.pending.push(frame);
    client.pendingBytes += frame.length;
    this.dirty.add(client);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== null || this.flushImmediate !== null) return;
    const waitMs = this.lastFlushAt + this.flushIntervalMs - performance.now();
    if (waitMs <= 0) this.flushImmediate = setImmediate(() => this.flush()).unref();
    else this.flushTimer = setTimeout(() => this.flush(), waitMs).unref();
  }

  private write(client: Client): void {
    const { socket, stream, pending } = client;
    client.pending = [];
    client.pendingBytes = 0;
    if (pending.length === 0 || socket.readyState !== socket.OPEN) return;
    if (stream !== null) {
      if (stream.destroyed) return;
      // Corked, the frames leave in one writev.
      stream.cork();
      for (const frame of pending) stream.write(frame);
      stream.uncork();
      this.writes++;
    } else {
      for (const frame of pending) socket.send(payloadOf(frame), { binary: false });
      this.writes += pending.length;
    }
    this.sent += pending.length;
  }

  private forget(client: Client): void {
    this.clients.delete(client);
    this.dirty.delete(client);
    client.pending = [];
    client.pendingBytes = 0;
    for (const s of client.symbols) {
      const set = this.bySymbol.get(s);
      set?.delete(client);
      if (set?.size === 0) this.bySymbol.delete(s);
    }
  }

  private closeSlow(client: Client): void {
    this.closedSlow++;
    this.options.log.warn({ bufferedBytes: client.socket.bufferedAmount + client.pendingBytes }, 'websocket client too slow; closing with 1013');
    // Stop sending to it at once (its queued frames are dropped); the close frame follows what the stream already holds.
    this.forget(client);
    client.socket.close(WS_CLOSE_TOO_SLOW, 'client too slow: results were not read fast enough');
    const timer = setTimeout(() => client.socket.terminate(), this.options.terminateAfterMs ?? 5000);
    timer.unref();
    client.socket.once('close', () => clearTimeout(timer));
  }

  /** Sends what is queued, then closes every client (gateway shutdown). */
  closeAll(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.flush();
    for (const client of this.clients) client.socket.close(1001, 'gateway stopping');
    this.clients.clear();
    this.bySymbol.clear();
  }
}
