import type { Logger } from '../observability/logger';
import type { StoredResult } from './recent-results';

/** What the hub needs of a WebSocket (the `ws` socket @fastify/websocket hands over). */
export interface HubSocket {
  readonly readyState: number;
  readonly OPEN: number;
  readonly bufferedAmount: number;
  send(data: string | Buffer, options?: { binary?: boolean }): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}

/** Close code for a client too slow to keep up (RFC 6455 "try again later"). */
export const WS_CLOSE_TOO_SLOW = 1013;

/** Options of {@link WsHub}. */
export interface WsHubOptions {
  /** Bytes a client may have unsent (`bufferedAmount`) before it is closed with 1013. */
  maxBufferedBytes: number;
  /** How long a closed slow client gets to take its close frame before it is terminated. @defaultValue 5000 */
  terminateAfterMs?: number;
  log: Logger;
}

interface Client {
  socket: HubSocket;
  symbols: ReadonlySet<string>;
  stats: boolean;
}

/**
 * Fans results out to WebSocket clients by symbol. Sending never waits for a client: each result is
 * handed to every subscribed socket at once (`socket.send`, which only queues); a socket whose queue
 * (`bufferedAmount`) would pass the bound is closed with 1013 and terminated shortly after, so a
 * stalled client costs at most its bound in memory and never delays anyone else or the pipeline.
 * Results reach this hub in `ts` order per symbol ({@link RecentResults}), so each client gets them
 * in that order. Emits nothing; counts what it does.
 */
export class WsHub {
  private readonly bySymbol = new Map<string, Set<Client>>();
  private readonly clients = new Set<Client>();
  /** Results frames sent. */
  sent = 0;
  /** Clients closed for being too slow. */
  closedSlow = 0;

  constructor(private readonly options: WsHubOptions) {}

  get clientCount(): number {
    return this.clients.size;
  }

  /** Subscribes a socket to `symbols`; it is removed when it closes. */
  add(socket: HubSocket, symbols: readonly string[], stats = false): void {
    const client: Client = { socket, symbols: new Set(symbols), stats };
    this.clients.add(client);
    for (const s of client.symbols) {
      let set = this.bySymbol.get(s);
      if (set === undefined) this.bySymbol.set(s, (set = new Set()));
      set.add(client);
    }
    const remove = (): void => {
      this.clients.delete(client);
      for (const s of client.symbols) {
        const set = this.bySymbol.get(s);
        set?.delete(client);
        if (set?.size === 0) this.bySymbol.delete(s);
      }
    };
    socket.on('close', remove);
    socket.on('error', (err) => {
      this.options.log.debug({ err: err.message }, 'websocket client error');
      remove();
    });
  }

  /** Sends one result to every client subscribed to its symbol. */
  publish(stored: StoredResult): void {
    const set = this.bySymbol.get(stored.result.symbol);
    if (set === undefined || set.size === 0) return;
    // Encoded once for every client (a text frame all the same).
    const bytes = Buffer.from(stored.text, 'utf8');
    for (const client of set) this.send(client, bytes);
  }

  /** Sends a stats frame to the clients that asked for them (`?stats=1`). */
  broadcastStats(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    for (const client of this.clients) if (client.stats) this.send(client, bytes);
  }

  private send(client: Client, bytes: Buffer): void {
    const { socket } = client;
    if (socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount + bytes.length > this.options.maxBufferedBytes) {
      this.closeSlow(client);
      return;
    }
    socket.send(bytes, { binary: false });
    this.sent++;
  }

  private closeSlow(client: Client): void {
    this.closedSlow++;
    this.options.log.warn({ bufferedBytes: client.socket.bufferedAmount }, 'websocket client too slow; closing with 1013');
    // Stop sending to it at once; the close frame follows what is already queued.
    this.clients.delete(client);
    for (const s of client.symbols) this.bySymbol.get(s)?.delete(client);
    client.socket.close(WS_CLOSE_TOO_SLOW, 'client too slow: results were not read fast enough');
    const timer = setTimeout(() => client.socket.terminate(), this.options.terminateAfterMs ?? 5000);
    timer.unref();
    client.socket.once('close', () => clearTimeout(timer));
  }

  /** Closes every client (gateway shutdown). */
  closeAll(): void {
    for (const client of this.clients) client.socket.close(1001, 'gateway stopping');
    this.clients.clear();
    this.bySymbol.clear();
  }
}
