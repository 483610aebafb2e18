/**
 * The gateway's WsHub writes pre-built frames straight to the stream under a `ws` socket (a private
 * part of ws, `_socket`, used only when `extensions` is '': see byteStreamOf in
 * src/gateway/ws-hub.ts) and bounds a slow client by `bufferedAmount`, which must count what that
 * stream holds. Unit tests check the hub against fakes; this one checks it against the installed
 * ws, a real server and a real client on a real TCP connection, the server configured as the
 * gateway configures it (@fastify/websocket with maxPayload 4096, no permessage-deflate), so that
 * an upgrade of ws that renames or drops what the hub relies on fails here instead of silently
 * switching the direct writes off.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { byteStreamOf, WsHub, type HubSocket } from '../../src/gateway/ws-hub';
import type { Logger } from '../../src/observability/logger';
import type { StoredResult } from '../../src/gateway/recent-results';
import { waitFor } from '../fixtures/broker';

jest.setTimeout(30_000);

let server: WebSocketServer;
const clients: WebSocket[] = [];

beforeEach(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 4096 });
  await once(server, 'listening');
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  for (const s of server.clients) s.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A connected pair: the server's socket (what the hub gets) and a client collecting text messages. */
async function connect(options: { perMessageDeflate?: boolean } = {}): Promise<{ socket: WebSocket; client: WebSocket; received: string[] }> {
  const accepted = once(server, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, options);
  clients.push(client);
  const received: string[] = [];
  client.on('message', (data, isBinary) => {
    if (!isBinary) received.push((data as Buffer).toString('utf8')); // binaryType nodebuffer: one Buffer a message
  });
  await once(client, 'open');
  const [socket] = await accepted;
  return { socket, client, received };
}

function stored(ts: number, pad = 0): StoredResult {
  const text = JSON.stringify({ symbol: 'A', ts, pad: 'x'.repeat(pad) });
  return { result: { symbol: 'A', ts } as unknown as StoredResult['result'], text };
}

/** A logger that records warnings (the hub's only use of it here). */
function recordingLog(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, msg: string) => void warnings.push(msg), debug: () => undefined, info: () => undefined } as unknown as Logger;
  return { log, warnings };
}

describe('WsHub on the installed ws', () => {
  it('finds the stream it writes to on a real server socket, and the client reads the frames', async () => {
    const { socket, received } = await connect();
    // What the hub relies on, named so that a ws upgrade that drops it fails on this line.
    expect(socket.extensions).toBe('');
    const internal = (socket as unknown as { _socket?: { write?: unknown; cork?: unknown; uncork?: unknown } })._socket;
    expect(typeof internal?.write).toBe('function');
    expect(typeof internal?.cork).toBe('function');
    expect(typeof internal?.uncork).toBe('function');
    const found = byteStreamOf(socket);
    expect(found.missing).toBeNull();
    expect(found.stream).toBe(internal);

    const { log, warnings } = recordingLog();
    const hub = new WsHub({ maxBufferedBytes: 1_000_000, log });
    hub.add(socket, ['A']);
    // Payloads of the three header forms (7-bit, 16-bit and 64-bit lengths).
    const sent = [stored(1), stored(2, 300), stored(3, 70_000)];
    for (const s of sent) hub.publish(s);
    hub.flush();
    expect(hub.writes).toBe(1); // one corked write to the stream, not one `send` a frame
    await waitFor(() => received.length === 3, 10_000, 'three messages');
    expect(received).toEqual(sent.map((s) => s.text));
    expect(warnings).toEqual([]);
    hub.closeAll();
  });

  it("counts bytes written to the stream in the socket's bufferedAmount (the slow-client bound)", async () => {
    const { socket } = await connect();
    const { log } = recordingLog();
    const hub = new WsHub({ maxBufferedBytes: 64_000_000, log });
    hub.add(socket, ['A']);
    expect(socket.bufferedAmount).toBe(0);
    for (let i = 0; i < 8; i++) hub.publish(stored(i, 1_000_000));
    hub.flush();
    // The stream has not had an event-loop turn to hand 8 MB to the kernel.
    expect(socket.bufferedAmount).toBeGreaterThan(1_000_000);
    hub.closeAll();
  });

  it('falls back to send, and says so once, when the socket lacks what it expects', async () => {
    const pairs = [await connect(), await connect()];
    const { log, warnings } = recordingLog();
    const hub = new WsHub({ maxBufferedBytes: 1_000_000, log });
    for (const { socket } of pairs) {
      // A ws that no longer exposes `_socket`: the real socket seen through a view that hides it.
      const view = new Proxy(socket, {
        get(target, prop) {
          if (prop === '_socket') return undefined;
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      expect(byteStreamOf(view as unknown as HubSocket)).toEqual({ stream: null, missing: 'no `_socket` stream on the socket' });
      hub.add(view, ['A']);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/ws internals differ/);
    const sent = [stored(1), stored(2, 300)];
    for (const s of sent) hub.publish(s);
    hub.flush();
    expect(hub.writes).toBe(4); // one `send` a frame and client
    for (const { received } of pairs) await waitFor(() => received.length === 2, 10_000, 'two messages');
    for (const { received } of pairs) expect(received).toEqual(sent.map((s) => s.text));
    hub.closeAll();
  });

  it('uses send without a warning when the client negotiated an extension', async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true });
    await once(server, 'listening');
    const { socket, received } = await connect({ perMessageDeflate: true });
    expect(socket.extensions).toMatch(/permessage-deflate/);
    const { log, warnings } = recordingLog();
    const hub = new WsHub({ maxBufferedBytes: 1_000_000, log });
    hub.add(socket, ['A']);
    hub.publish(stored(1));
    hub.flush();
    await waitFor(() => received.length === 1, 10_000, 'one message');
    expect(received).toEqual([stored(1).text]);
    expect(warnings).toEqual([]);
    hub.closeAll();
  });
});
