/**
 * A private three-node RabbitMQ cluster for one test file, started by scripts/cluster.sh with its own
 * data directory, node names and ports (never the broker on 5672), and helpers to read where the
 * quorum queues' leaders are, to stop and start a node, and to collect and publish across node loss.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as amqp from 'amqplib';
import type { Bar } from '../../schemas/bar.schema';
import { EXCHANGE_BARS, routingKeys } from '../../src/broker/topology';

const run = promisify(execFile);
const SCRIPT = join(__dirname, '..', '..', 'scripts', 'cluster.sh');

export interface QueueInfo {
  name: string;
  type: string;
  leader: string;
  members: string[];
}

async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port p such that p..p+2 and p+20000..p+20002 are free. */
async function freeBase(): Promise<number> {
  for (let base = 5700 + (process.pid % 200) * 3; base < 6900; base += 3) {
    const ports = [0, 1, 2].flatMap((i) => [base + i, base + i + 20000]);
    let free = true;
    for (const p of ports) if (!(await portFree(p))) free = false;
    if (free) return base;
  }
  throw new Error('no free port range for the test cluster between 5700 and 6900');
}

export class TestCluster {
  private constructor(
    readonly dir: string,
    readonly basePort: number,
    readonly prefix: string,
  ) {}

  /** Starts the three nodes (about 40 s on a quiet machine). */
  static async up(): Promise<TestCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'cluster-test-'));
    const cluster = new TestCluster(dir, await freeBase(), `rabbit-t${randomBytes(3).toString('hex')}-`);
    await cluster.script(['up'], 300_000);
    return cluster;
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, CLUSTER_DIR: this.dir, CLUSTER_AMQP_PORT: String(this.basePort), CLUSTER_NODE_PREFIX: this.prefix };
  }

  async script(args: string[], timeout = 180_000): Promise<string> {
    const { stdout } = await run(SCRIPT, args, { env: this.env(), timeout, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  }

  nodeName(i: number): string {
    return `${this.prefix}${i}@localhost`;
  }

  port(i: number): number {
    return this.basePort + i - 1;
  }

  /** One node's URL for a vhost. */
  url(i: number, vhost: string): string {
    return `amqp://guest:guest@127.0.0.1:${this.port(i)}/${encodeURIComponent(vhost)}`;
  }

  /** AMQP_URL listing the given nodes (default all three, node 1 first). */
  urls(vhost: string, nodes = [1, 2, 3]): string {
    return nodes.map((i) => this.url(i, vhost)).join(',');
  }

  /** rabbitmqctl against a node of the cluster. */
  ctl(node: number, args: string[]): Promise<string> {
    return this.script(['ctl', String(node), ...args]);
  }

  async addVhost(label: string, node = 1): Promise<string> {
    const name = `cluster-${label}-${randomUUID().slice(0, 8)}`;
    await this.ctl(node, ['-q', 'add_vhost', name]);
    await this.ctl(node, ['-q', 'set_permissions', '-p', name, 'guest', '.*', '.*', '.*']);
    return name;
  }

  async queues(vhost: string, node: number): Promise<QueueInfo[]> {
    const out = await this.ctl(node, ['-q', 'list_queues', '-p', vhost, 'name', 'type', 'leader', 'members', '--formatter', 'json']);
    return JSON.parse(out) as QueueInfo[];
  }

  /** Node number (1..3) of a node name. */
  nodeNumber(name: string): number {
    const n = Number(name.slice(this.prefix.length).split('@')[0]);
    if (!Number.isInteger(n) || n < 1 || n > 3) throw new Error(`not a node of this cluster: ${name}`);
    return n;
  }

  stopNode(i: number): Promise<string> {
    return this.script(['stop-node', String(i)]);
  }

  /** SIGKILL of the node's VM: a crash, no orderly hand-over of its queue leaders. */
  killNode(i: number): Promise<string> {
    return this.script(['kill-node', String(i)]);
  }

  startNode(i: number): Promise<string> {
    return this.script(['start-node', String(i)], 300_000);
  }

  async down(): Promise<void> {
    await this.script(['down'], 180_000).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Received {
  messageId: string;
  body: string;
  receivedAt: number;
}

/**
 * Consumes a queue through amqplib's recovery, moving to the next listed node when its node goes
 * away, and keeps every message (acked after it is stored, so a redelivery shows up as a second copy).
 */
export class RecoveringCollector {
  readonly messages: Received[] = [];
  private model: amqp.RecoveringChannelModel | null = null;

  constructor(
    private readonly urls: string[],
    private readonly queue: string,
  ) {}

  async start(): Promise<void> {
    let index = 0;
    const target = (): string => this.urls[index % this.urls.length]!;
    // amqplib reads the same target object on every attempt; point it at the next node before each.
    const setup = async (model: amqp.ChannelModel): Promise<void> => {
      const channel = await model.createChannel();
      await channel.prefetch(1000);
      await channel.consume(this.queue, (msg) => {
        if (msg === null) return;
        this.messages.push({ messageId: String(msg.properties.messageId), body: msg.content.toString('utf8'), receivedAt: Date.now() });
        channel.ack(msg);
      });
    };
    const { connectTarget } = await import('../../src/broker/broker-connection');
    const object = connectTarget(target(), 10);
    this.model = await amqp.connect(object, {
      recovery: {
        initialDelay: 100,
        maxDelay: 1000,
        maxRetries: Infinity,
        initialMaxRetries: 10,
        setup,
        calculateDelay: () => {
          index++;
          Object.assign(object, connectTarget(target(), 10));
          return 100;
        },
      },
    });
    this.model.on('error', () => undefined);
  }

  async stop(): Promise<void> {
    await this.model?.close().catch(() => undefined);
    this.model = null;
  }
}

/**
 * Publishes bars at a pace, with confirms, in batches; a batch whose confirms fail (its node went
 * away) is published again through the next node: at least once, as a producer should.
 */
export async function publishPaced(
  urls: string[],
  bars: Bar[],
  options: { batch: number; pauseMs: number; onBatch?: (sent: number) => Promise<void> | void },
): Promise<{ republishedBatches: number }> {
  let node = 0;
  let connection: amqp.ChannelModel | null = null;
  let channel: amqp.ConfirmChannel | null = null;
  let republishedBatches = 0;
  const open = async (): Promise<amqp.ConfirmChannel> => {
    for (;;) {
      try {
        connection = await amqp.connect(urls[node % urls.length]!, { timeout: 5000 });
        connection.on('error', () => undefined);
        channel = await connection.createConfirmChannel();
        channel.on('error', () => undefined);
        return channel;
      } catch {
        node++;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  try {
    for (let i = 0; i < bars.length; i += options.batch) {
      const batch = bars.slice(i, i + options.batch);
      for (let attempt = 0; ; attempt++) {
        try {
          const ch = channel ?? (await open());
          for (const bar of batch) {
            ch.publish(EXCHANGE_BARS, routingKeys.bar('5m', bar.symbol), Buffer.from(JSON.stringify(bar)), {
              persistent: true,
              contentType: 'application/json',
            });
          }
          await Promise.race([
            ch.waitForConfirms(),
            new Promise((_, reject) => setTimeout(() => reject(new Error('confirm timeout')), 15_000)),
          ]);
          break;
        } catch {
          republishedBatches++;
          await (connection as amqp.ChannelModel | null)?.close().catch(() => undefined);
          connection = null;
          channel = null;
          node++;
          if (attempt > 50) throw new Error('could not publish a batch through any node');
        }
      }
      await options.onBatch?.(i + batch.length);
      await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  } finally {
    await (connection as amqp.ChannelModel | null)?.close().catch(() => undefined);
  }
  return { republishedBatches };
}
