import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { barId, type Bar } from '../../schemas/bar.schema';
import { BrokerConnection } from '../broker/broker-connection';
import { Publisher } from '../broker/publisher';
import { EXCHANGE_BARS, routingKeys } from '../broker/topology';
import type { PipelineConfig } from '../config/config';
import { listenError, StartupError } from '../errors';
import { createGuard } from '../flows/breakers';
import { componentLogger, type Logger } from '../observability/logger';
import { registry } from '../observability/metrics';
import { Counter, Gauge } from 'prom-client';
import { AuditLog } from './audit';
import { KeyStore, TicketStore } from './auth';
import { PipelineStats } from './pipeline-stats';
import { ProcessPool } from './process-pool';
import { RecentResults } from './recent-results';
import { loadShardLayout } from '../supervisor/shard-layout';
import { ResultsFeed } from './results-feed';
import { buildGatewayServer, type GatewayAdmin } from './server';
import { WsHub } from './ws-hub';

/** How often stats frames go to the live page (clients with `?stats=1`). */
const STATS_EVERY_MS = 2000;

/**
 * The `gateway` role: one process with its broker connection (its own results queue, a confirm
 * publisher for POST /api/bars), the bounded recent results, the WebSocket hub and the Fastify
 * server on GATEWAY_HOST:GATEWAY_PORT. start/stop like every worker; stop closes the server first
 * (no new requests, WebSockets closed with 1001), then the feed, publisher and connection.
 */
export class GatewayWorker {
  private readonly log: Logger = componentLogger('gateway');
  private connection: BrokerConnection | null = null;
  private publisher: Publisher | null = null;
  private feed: ResultsFeed | null = null;
  private server: FastifyInstance | null = null;
  private stats: PipelineStats | null = null;
  private hub: WsHub | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private stopPromise: Promise<void> | null = null;
  private audit: AuditLog | null = null;
  private pool: ProcessPool | null = null;
  /** Called when the worker cannot go on (fatal broker error). */
  onFatal: (err: Error) => void = () => undefined;

  constructor(private readonly config: PipelineConfig) {}

  /** True once the server listens and the results queue is consumed. */
  get consuming(): boolean {
    return this.server !== null && this.feed?.consuming === true;
  }

  /** Requests in progress are not counted; the results deliveries it holds unacknowledged (at most one batch, for at most 20 ms) belong to its own auto-deleted queue. */
  get inFlight(): number {
    return 0;
  }

  /** The port the server listens on (useful with GATEWAY_PORT=0). */
  get port(): number {
    return (this.server?.server.address() as AddressInfo | null)?.port ?? this.config.gateway.port;
  }

  async start(): Promise<void> {
    const { config } = this;
    const g = config.gateway;
    const keys = new KeyStore(g.keys);
    if (keys.size === 0) this.log.warn('no API keys configured (GATEWAY_API_KEYS or GATEWAY_API_KEYS_FILE): every authenticated route answers 401');
    const audit = new AuditLog({ path: g.auditFile, maxBytes: g.auditMaxBytes, keepFiles: g.auditKeepFiles, log: componentLogger('audit', 'gateway') });
    try {
      audit.open();
    } catch (err) {
      throw new StartupError('GATEWAY_AUDIT_FILE', `GATEWAY_AUDIT_FILE: cannot append to ${g.auditFile} (${(err as NodeJS.ErrnoException).code ?? 'error'}); set it to a writable path`, { cause: err });
    }
    this.audit = audit;
    const connection = new BrokerConnection({
      url: config.amqpUrl,
      connectionName: `pipeline-gateway-${process.pid}`,
      queueType: config.queueType,
      maxAttempts: config.maxAttempts,
      shards: config.shards,
      // The recorded shard layout, read on every (re)connect: no other generation's queues are bound (docs/scaling.md).
      layout: () => loadShardLayout(config, this.log),
      log: componentLogger('broker', 'gateway'),
    });
    connection.onFatal = (err) => this.onFatal(err);
    this.connection = connection;
    const publisher = new Publisher(connection, {
      maxInFlight: config.maxInFlight,
      publishTimeoutMs: config.publishTimeoutMs,
      guard: createGuard({ stage: 'publish', log: componentLogger('breaker', 'gateway') }),
      log: componentLogger('publisher', 'gateway'),
    });
    this.publisher = publisher;
    const results = new RecentResults({ perSymbol: g.resultsPerSymbol, maxSymbols: g.maxSymbols });
    const feed = new ResultsFeed(connection, results, { log: componentLogger('results-feed', 'gateway') });
    this.feed = feed;
    const hub = new WsHub({
      maxBufferedBytes: g.wsBufferBytes,
      flushIntervalMs: g.wsFlushMs,
      maxPerKey: g.wsMaxPerKey,
      maxTotal: g.wsMaxTotal,
      pingMs: g.wsPingMs,
      log: componentLogger('ws', 'gateway'),
    });
    this.hub = hub;
    const healthHost = config.healthHost === '0.0.0.0' || config.healthHost === '::' ? '127.0.0.1' : config.healthHost;
    const stats = new PipelineStats({
      supervisorUrl: `http://${healthHost.includes(':') ? `[${healthHost}]` : healthHost}:${config.healthPort}`,
      deadLetters: () => feed.deadLetterCount,
      log: componentLogger('stats', 'gateway'),
    });
    this.stats = stats;
    results.subscribe((stored) => {
      stats.results.add(stored);
      hub.publish(stored);
    });
    const pool = new ProcessPool({ config, log: componentLogger('process', 'gateway') });
    this.pool = pool;
    installGatewayMetrics(hub, results, pool, audit);
    const server = await buildGatewayServer({
      config,
      keys,
      tickets: new TicketStore(g.wsTicketSeconds),
      audit,
      results,
      hub,
      stats,
      process: pool,
      publishBars: (bars) => this.publishBars(bars),
      admin: this.admin(),
      log: this.log,
    });
    await connection.start();
    try {
      await server.listen({ host: g.host, port: g.port });
    } catch (err) {
      await connection.stop();
      throw listenError(err as NodeJS.ErrnoException, g.host, g.port, { host: 'GATEWAY_HOST', port: 'GATEWAY_PORT', inUse: '; stop the other program' });
    }
    this.server = server;
    stats.start();
    hub.start();
    this.statsTimer = setInterval(() => void this.sendStats(), STATS_EVERY_MS);
    this.statsTimer.unref();
    this.log.info({ host: g.host, port: this.port, tls: g.tls !== null, keys: keys.size }, 'gateway listening');
  }

  private async sendStats(): Promise<void> {
    const { hub, stats, feed } = this;
    if (hub === null || stats === null || feed === null) return;
    await feed.refreshDeadLetters();
    if (hub.clientCount === 0) return;
    const [tactical, strategic] = await Promise.all([stats.stage('tactical'), stats.stage('strategic')]);
    hub.broadcastStats(JSON.stringify({ type: 'stats', time: new Date().toISOString(), tactical, strategic }));
  }

  private async publishBars(bars: Bar[]): Promise<void> {
    const publisher = this.publisher;
    if (publisher === null) throw new Error('gateway is not started');
    await Promise.all(
      bars.map((bar) =>
        publisher.publish(EXCHANGE_BARS, routingKeys.bar(bar.timeframe, bar.symbol), Buffer.from(JSON.stringify(bar)), {
          messageId: barId(bar),
          contentType: 'application/json',
          persistent: true,
        }),
      ),
    );
  }

  private async announce(registry: import('../learning/registry').ModelRegistry, version: string): Promise<void> {
    try {
      const { announcePromotion } = await import('../broker/model-announcement');
      await announcePromotion(this.config.amqpUrl, registry, version);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, version }, 'model change not announced; tactical workers load it when they next start');
    }
  }

  private admin(): GatewayAdmin {
    const registry = async () => {
      const { openModelRegistry, BUNDLED_MODEL_DIR } = await import('../state/model-files');
      return openModelRegistry(join(this.config.dataDir, 'models'), { keepVersions: this.config.modelKeep, seedFrom: BUNDLED_MODEL_DIR });
    };
    return {
      versions: async () => {
        const r = await registry();
        // A registry nobody has opened yet holds the shipped model once seeded: seed it first.
        await r.latestPromoted().catch(() => null);
        return r.list();
      },
      // As the CLI does: change the registry, then announce the now-current version so that running
      // tactical workers swap to it between bars (an announcement that fails is logged; the workers
      // then load the version when they next start).
      promote: async (version) => {
        const r = await registry();
        await r.promote(version);
        const current = await r.latestPromoted();
        if (current !== null) await this.announce(r, current);
        return current;
      },
      rollback: async (version) => {
        const r = await registry();
        const current = await r.rollback(version);
        if (current !== null) await this.announce(r, current);
        return current;
      },
      replayDeadLetters: async (count) => {
        const { replayDeadLetters } = await import('../cli/dlq-command');
        const out = new PassThrough();
        const chunks: Buffer[] = [];
        out.on('data', (c: Buffer) => chunks.push(c));
        const code = await replayDeadLetters(count, { config: this.config, log: this.log, out, err: out });
        return { exit_code: code, summary: Buffer.concat(chunks).toString('utf8').trim() };
      },
    };
  }

  /** Graceful stop; idempotent. */
  stop(): Promise<void> {
    if (this.stopPromise === null) {
      this.stopPromise = (async () => {
        const step = async (name: string, fn: () => Promise<void> | void): Promise<void> => {
          try {
            await fn();
          } catch (err) {
            this.log.error({ err, step: name }, 'shutdown step failed');
          }
        };
        if (this.statsTimer !== null) clearInterval(this.statsTimer);
        await step('websockets', async () => {
          this.hub?.closeAll();
          await new Promise((resolve) => setTimeout(resolve, 200)); // let the close frames go out
        });
        await step('server', () => this.server?.close());
        await step('process pool', () => this.pool?.close());
        await step('audit', () => this.audit?.close());
        await step('stats', () => this.stats?.stop());
        await step('publisher', () => this.publisher?.stop(this.config.closeTimeoutMs));
        await step('connection', () => this.connection?.stop());
        this.log.info('worker stopped');
      })();
    }
    return this.stopPromise;
  }
}

let metricsInstalled = false;

/** Gateway metrics, read from the hub and the results memory when scraped. */
function installGatewayMetrics(hub: WsHub, results: RecentResults, pool: ProcessPool, audit: AuditLog): void {
  if (metricsInstalled) return;
  metricsInstalled = true;
  // Each counter mirrors a count the gateway keeps: `reads` gives its value per label value ('' when unlabelled).
  const mirror = (name: string, help: string, reads: Record<string, () => number>, label?: string): void =>
    void new Counter({ name, help, labelNames: label === undefined ? [] : [label], registers: [registry], collect() {
      this.reset();
      for (const [value, read] of Object.entries(reads)) this.inc(label === undefined ? {} : { [label]: value }, read());
    } });
  new Gauge({ name: 'pipeline_gateway_ws_clients', help: 'WebSocket clients connected', registers: [registry], collect() { this.set(hub.clientCount); } });
  mirror('pipeline_gateway_ws_frames_total', 'Frames sent to WebSocket clients (results, and stats for the live page)', { '': () => hub.sent });
  mirror('pipeline_gateway_ws_writes_total', 'Writes to WebSocket client sockets (each carries one or more frames)', { '': () => hub.writes });
  mirror('pipeline_gateway_ws_slow_closed_total', 'WebSocket clients closed with 1013 (too slow)', { '': () => hub.closedSlow });
  mirror('pipeline_gateway_ws_closed_total', 'WebSocket clients closed by the gateway, by reason (dead: no pong; policy: sent a data frame)', { dead: () => hub.closedDead, policy: () => hub.closedPolicy }, 'reason');
  mirror('pipeline_gateway_ws_refused_total', 'WebSocket upgrades refused by GATEWAY_WS_MAX_PER_KEY or GATEWAY_WS_MAX_TOTAL', { '': () => hub.refused });
  new Gauge({ name: 'pipeline_gateway_process_busy', help: 'Process calls running or waiting in the pool', registers: [registry], collect() { this.set(pool.busy); } });
  mirror('pipeline_gateway_process_refused_total', 'Process calls refused, by reason (busy: 503, timeout: 504)', { busy: () => pool.refused, timeout: () => pool.timedOut }, 'reason');
  mirror('pipeline_gateway_audit_failures_total', 'Audit lines that could not be written', { '': () => audit.failures });
  mirror('pipeline_gateway_results_total', 'Results received by the gateway, by outcome', { kept: () => results.accepted, duplicate: () => results.dropped }, 'outcome');
}
