/**
 * Node loss on a three-node RabbitMQ cluster (scripts/cluster.sh): with bars flowing, the node holding
 * the queue leaders is stopped and later started again. Every bar gets exactly its result (a second
 * copy only identical, dedupable by messageId), in order per symbol, identical to an undisturbed run,
 * with no dead letter; the time until results flow again is measured and printed.
 *
 * The node is killed (SIGKILL of its Erlang VM, as when its machine dies) unless NODE_LOSS=stop asks
 * for an orderly `rabbitmqctl stop`.
 *
 * Run: npm run test:cluster (starts and removes its own cluster).
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as amqp from 'amqplib';
import pino from 'pino';
import type { Bar } from '../../schemas/bar.schema';
import type { BrokerConnection } from '../../src/broker/broker-connection';
import { Publisher } from '../../src/broker/publisher';
import { QUEUE_DEAD_LETTERS, QUEUE_RESULTS, workQueueOptions } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { interleave, waitFor } from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';
import { publishPaced, RecoveringCollector, TestCluster, type Received } from './cluster-fixture';

jest.setTimeout(900_000);

const comparable = (body: string): string => {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  delete parsed.latency_ms;
  return JSON.stringify(parsed);
};

/** Distinct results by messageId in order of first arrival; a second copy must be identical. */
function distinct(messages: Received[]): { ids: string[]; byId: Map<string, string>; firstAt: Map<string, number>; resends: number } {
  const byId = new Map<string, string>();
  const firstAt = new Map<string, number>();
  const ids: string[] = [];
  let resends = 0;
  for (const m of messages) {
    const body = comparable(m.body);
    const seen = byId.get(m.messageId);
    if (seen !== undefined) {
      resends++;
      expect({ id: m.messageId, body }).toEqual({ id: m.messageId, body: seen });
    } else {
      byId.set(m.messageId, body);
      firstAt.set(m.messageId, m.receivedAt);
      ids.push(m.messageId);
    }
  }
  return { ids, byId, firstAt, resends };
}

const idOf = (b: Bar): string => `${b.symbol}:5m:${b.ts}`;

// Pipeline settings of both runs: two shards (rings on the cluster), unbounded context and feedback
// waits so that a slow failover cannot turn a context into a stale one (results must be identical).
const SETTINGS = { PIPELINE_SHARDS: '2', PIPELINE_CONTEXT_WAIT_MS: '0', PIPELINE_FEEDBACK_WAIT_MS: '0' };

// The workers' logs (LOG_LEVEL info unless TEST_LOG_LEVEL says otherwise), one file per pipeline run,
// kept after the test: reconnects, replaced channels and breaker changes show how recovery went.
const LOG_DIR = process.env.CLUSTER_TEST_LOG_DIR ?? join(tmpdir(), 'pipeline-cluster-logs', new Date().toISOString().replace(/[:.]/g, '-'));

let cluster: TestCluster | null = null;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  cluster = await TestCluster.up();
}, 600_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await cluster?.down();
}, 300_000);

describe('RabbitMQ cluster: node loss', () => {
  const symbols = ['N0', 'N1.X', 'N2', 'N3-Y', 'N4', 'N5'];
  const perSymbol = 300;
  const markets = symbols.map((symbol, i) => generateSyntheticMarket({ seed: 1700 + i, symbol, bars: perSymbol, gapProbability: 0.01 }).bars);
  const bars = interleave(markets);

  async function startRun(label: string): Promise<{ vhost: string; pipeline: TestPipeline }> {
    const c = cluster!;
    const vhost = await c.addVhost(label);
    mkdirSync(LOG_DIR, { recursive: true });
    const logFile = join(LOG_DIR, `${label}.log`);
    const fd = openSync(logFile, 'a');
    process.stdout.write(`node-loss: the workers of the ${label} run log to ${logFile}\n`);
    const pipeline = await startPipeline(c.urls(vhost), { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info', ...SETTINGS }, undefined, { workerOutputFd: fd });
    cleanups.push(async () => {
      await pipeline.stop();
      await clearRedis(pipeline.prefix);
      closeSync(fd);
    });
    await waitHealthy(pipeline, 120_000);
    return { vhost, pipeline };
  }

  async function deadLetters(url: string): Promise<number> {
    const connection = await amqp.connect(url);
    try {
      const channel = await connection.createChannel();
      return (await channel.checkQueue(QUEUE_DEAD_LETTERS)).messageCount;
    } finally {
      await connection.close();
    }
  }

  const mode = process.env.NODE_LOSS === 'stop' ? 'stop' : 'kill';

  it(`(${mode}) loses no bar and gives the undisturbed results when the node holding the queue leaders stops and comes back`, async () => {
    const c = cluster!;

    // 1. The undisturbed run.
    const reference = await startRun('reference');
    const refResults = new RecoveringCollector([c.url(2, reference.vhost)], QUEUE_RESULTS);
    cleanups.push(() => refResults.stop());
    await refResults.start();
    await publishPaced([c.url(2, reference.vhost)], bars, { batch: 60, pauseMs: 10 });
    await waitFor(() => distinct(refResults.messages).byId.size >= bars.length, 400_000, 'every result of the undisturbed run');
    const expected = distinct(refResults.messages).byId;
    await refResults.stop();
    await reference.pipeline.stop();

    // 2. The disturbed run: every queue is replicated on all three nodes; find the leaders' node.
    const disturbed = await startRun('nodeloss');
    const queues = (await c.queues(disturbed.vhost, 2)).filter((q) => q.type === 'quorum');
    expect(queues.length).toBeGreaterThanOrEqual(8);
    for (const q of queues) expect({ queue: q.name, members: [...q.members].sort() }).toEqual({ queue: q.name, members: [1, 2, 3].map((i) => c.nodeName(i)).sort() });
    const work = queues.filter((q) => /^(tactical_processing|strategic_processing|tactical_context)\.|^integrated_results$/.test(q.name));
    const counts = new Map<string, number>();
    for (const q of work) counts.set(q.leader, (counts.get(q.leader) ?? 0) + 1);
    const leaderName = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
    const victim = c.nodeNumber(leaderName);
    const survivors = [1, 2, 3].filter((i) => i !== victim);
    const results = new RecoveringCollector(survivors.map((i) => c.url(i, disturbed.vhost)), QUEUE_RESULTS);
    cleanups.push(() => results.stop());
    await results.start();

    let stopStartedAt = 0;
    let stoppedAt = 0;
    let startedAt = 0;
    // Assigned in the publisher's callback: typed by a cast so that the checker does not narrow them to null.
    let stop = null as Promise<void> | null;
    let restart = null as Promise<void> | null;
    const published = publishPaced(survivors.map((i) => c.url(i, disturbed.vhost)), bars, {
      batch: 6,
      pauseMs: 100,
      onBatch: (sent) => {
        if (stop === null && sent >= bars.length * 0.3) {
          stopStartedAt = Date.now();
          stop = (mode === 'stop' ? c.stopNode(victim) : c.killNode(victim)).then(() => {
            stoppedAt = Date.now();
          });
        }
        if (restart === null && stop !== null && stoppedAt > 0 && sent >= bars.length * 0.6) {
          restart = c.startNode(victim).then(() => {
            startedAt = Date.now();
          });
        }
      },
    });
    const { republishedBatches } = await published;
    await stop;
    if (restart === null) restart = c.startNode(victim).then(() => void (startedAt = Date.now()));
    await waitFor(() => distinct(results.messages).byId.size >= bars.length, 400_000, 'every result of the disturbed run');
    await restart;

    // The leaders moved off the stopped node while it was down.
    const { ids, byId, firstAt, resends } = distinct(results.messages);
    expect(byId.size).toBe(bars.length);
    for (const [i, symbol] of symbols.entries()) {
      expect(ids.filter((id) => id.startsWith(`${symbol}:5m:`))).toEqual(markets[i]!.map(idOf));
    }
    for (const [id, body] of expected) expect({ id, body: byId.get(id) }).toEqual({ id, body });
    expect(await deadLetters(c.url(survivors[0]!, disturbed.vhost))).toBe(0);
    // The restarted node is a member of every queue again.
    const after = (await c.queues(disturbed.vhost, victim)).filter((q) => q.type === 'quorum');
    for (const q of after) expect(q.members).toContain(leaderName);

    // How long results stopped: the longest pause between new results from the stop command on, and
    // the time from the node being down until the next new result.
    const times = ids.map((id) => firstAt.get(id)!).filter((t) => t >= stopStartedAt).sort((a, b) => a - b);
    let longestPauseMs = 0;
    for (let i = 1; i < times.length; i++) longestPauseMs = Math.max(longestPauseMs, times[i]! - times[i - 1]!);
    const firstAfterStop = times.find((t) => t >= stoppedAt);
    const report = {
      mode,
      victim: leaderName,
      leadersOnVictim: counts.get(leaderName),
      stopCommandMs: stoppedAt - stopStartedAt,
      resultsResumedAfterNodeDownMs: firstAfterStop === undefined ? null : firstAfterStop - stoppedAt,
      longestPauseBetweenResultsMs: longestPauseMs,
      nodeDownForMs: startedAt - stoppedAt,
      resentResults: resends,
      republishedBatches,
    };
    process.stdout.write(`node-loss measurement: ${JSON.stringify(report)}\n`);
    expect(firstAfterStop).toBeDefined();
  });

  it('a publisher that connects to a survivor just after the node of the leader died publishes again', async () => {
    // The fault behind the failed runs, on its own: a confirm channel opened on a surviving node within
    // ~100 ms of the SIGKILL of the node holding a quorum queue's leader can be nacked on every publish
    // to that queue for good (RabbitMQ 3.10.8). The publisher must replace it, not keep it.
    const c = cluster!;
    const vhost = await c.addVhost('fresh-channel');
    const queue = 'fresh_channel_probe';
    const declare = await amqp.connect(c.url(1, vhost)); // queue_leader_locator client-local: leader on node 1
    await (await declare.createChannel()).assertQueue(queue, workQueueOptions({ queueType: 'quorum', maxAttempts: 5 }));
    await declare.close();
    const [probe] = (await c.queues(vhost, 2)).filter((q) => q.name === queue);
    expect(probe?.leader).toBe(c.nodeName(1));

    const log = pino({ level: 'silent' });
    const connection = { attach: () => undefined, whenUnblocked: () => Promise.resolve() } as unknown as BrokerConnection;
    const publisher = new Publisher(connection, { maxInFlight: 256, publishTimeoutMs: 3000, log });
    await c.killNode(1);
    const killedAt = Date.now();
    const model = await amqp.connect(c.url(3, vhost));
    model.on('error', () => undefined);
    cleanups.push(async () => {
      await publisher.stop(100);
      await model.close().catch(() => undefined);
    });
    await publisher.attach(model);
    let failed = 0;
    let confirmedInARow = 0;
    let firstConfirmAt = 0;
    for (let i = 0; confirmedInARow < 100 && Date.now() - killedAt < 120_000; i++) {
      // Ten at a time, as a worker's lanes do.
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, k) => publisher.publish('', queue, Buffer.from('{}'), { messageId: `p${i}.${k}` })),
      );
      for (const o of outcomes) {
        if (o.status === 'fulfilled') {
          confirmedInARow++;
          if (firstConfirmAt === 0) firstConfirmAt = Date.now();
        } else {
          failed++;
          confirmedInARow = 0;
        }
      }
      if (confirmedInARow < 100) await new Promise((r) => setTimeout(r, 20));
    }
    process.stdout.write(
      `fresh-channel measurement: ${JSON.stringify({ firstConfirmAfterKillMs: firstConfirmAt === 0 ? null : firstConfirmAt - killedAt, failedPublishes: failed, channelsOpened: publisher.channelsOpenedCount })}\n`,
    );
    expect(confirmedInARow).toBeGreaterThanOrEqual(100);
    await c.startNode(1);
  });
});
