import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenError } from '../errors';

/** What the health server asks the supervisor. */
export interface HealthSource {
  health(): { ok: boolean; body: Record<string, unknown> };
  metrics(): Promise<{ contentType: string; text: string }>;
}

/**
 * Serves `GET /health` (200 `{"status":"ok",...}` once every worker consumes, 503 with the reasons
 * otherwise) and `GET /metrics` (Prometheus text, aggregated across workers) on `host` (HEALTH_HOST,
 * 127.0.0.1 by default). A port that cannot be bound rejects {@link start} with a
 * {@link StartupError} naming HEALTH_PORT or HEALTH_HOST.
 */
export class HealthServer {
  private server: Server | null = null;

  constructor(
    private readonly source: HealthSource,
    private readonly port: number,
    private readonly host = '127.0.0.1',
  ) {}

  /** The port actually bound (useful with port 0). */
  get boundPort(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? this.port;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/health') {
        const { ok, body } = this.source.health();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: ok ? 'ok' : 'unavailable', ...body }));
        return;
      }
      if (req.method === 'GET' && req.url === '/metrics') {
        this.source.metrics().then(
          ({ contentType, text }) => {
            res.writeHead(200, { 'content-type': contentType });
            res.end(text);
          },
          (err: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(String(err));
          },
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /health or /metrics\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, this.host, this.port, { host: 'HEALTH_HOST', port: 'HEALTH_PORT', inUse: ' (another pipeline or program); stop it' })));
      server.listen(this.port, this.host, () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
