/**
 * Measures what one quorum queue costs on a broker: persistent 5m-bar-sized messages published with
 * confirms (in windows of 256) and consumed with acks, through the pipeline's queue arguments.
 * Run it against a single node and a cluster in the same run to compare:
 *
 *   npx tsx scripts/broker-rate.ts <label>=<AMQP_URL> [<label>=<AMQP_URL> ...] [--messages N] [--queues Q]
 *
 * Each URL's vhost must exist. With --queues Q, Q queues are loaded in parallel (Q shards), one
 * connection each. Prints one JSON line per URL: messages/s published and consumed end to end.
 */
import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { workQueueOptions } from '../src/broker/topology';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const n = Number(args[i + 1]);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`--${name} must be a positive integer\n`);
    process.exit(2);
  }
  args.splice(i, 2);
  return n;
};
const messages = flag('messages', 20_000);
const queues = flag('queues', 1);
const targets = args.map((a) => {
  const eq = a.indexOf('=');
  if (eq <= 0) {
    process.stderr.write(`expected <label>=<AMQP_URL>, got ${a}\n`);
    process.exit(2);
  }
  return { label: a.slice(0, eq), url: a.slice(eq + 1) };
});
if (targets.length === 0) {
  process.stderr.write('usage: npx tsx scripts/broker-rate.ts <label>=<AMQP_URL> ... [--messages N] [--queues Q]\n');
  process.exit(2);
}

const body = Buffer.from(
  JSON.stringify({ symbol: 'BTCUSD', timeframe: '5m', ts: 1700000100000, open: 37000.5, high: 37100.25, low: 36950.75, close: 37050, volume: 123.456 }),
);

async function oneQueue(url: string, count: number): Promise<void> {
  const connection = await amqp.connect(url);
  try {
    const queue = `broker-rate.${randomUUID().slice(0, 8)}`;
    const pub = await connection.createConfirmChannel();
    const options = workQueueOptions({ queueType: 'quorum', maxAttempts: 10 }, true);
    const queueArgs: Record<string, unknown> = { ...(options.arguments as Record<string, unknown>) };
    delete queueArgs['x-dead-letter-exchange']; // no DLX exchange in this vhost; nothing is rejected here
    await pub.assertQueue(queue, { ...options, arguments: queueArgs });
    const sub = await connection.createChannel();
    await sub.prefetch(256);
    let received = 0;
    const done = new Promise<void>((resolve) => {
      void sub.consume(queue, (msg) => {
        if (msg === null) return;
        sub.ack(msg);
        if (++received === count) resolve();
      });
    });
    for (let sent = 0; sent < count; ) {
      const n = Math.min(256, count - sent);
      for (let i = 0; i < n; i++) pub.sendToQueue(queue, body, { persistent: true, contentType: 'application/json' });
      await pub.waitForConfirms();
      sent += n;
    }
    await done;
    await pub.deleteQueue(queue);
  } finally {
    await connection.close();
  }
}

async function main(): Promise<void> {
  for (const { label, url } of targets) {
    const per = Math.ceil(messages / queues);
    const started = performance.now();
    await Promise.all(Array.from({ length: queues }, () => oneQueue(url, per)));
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(`${JSON.stringify({ label, queues, messages: per * queues, seconds: Number(seconds.toFixed(2)), perSecond: Math.round((per * queues) / seconds) })}\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
