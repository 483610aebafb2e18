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
import * as amqp from 'amqplib';
import type { Bar } from '../../schemas/bar.schema';
import { QUEUE_DEAD_LETTERS, QUEUE_RESULTS } from '../../src/broker/topology';
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
    const pipeline = await startPipeline(c.urls(vhost), SETTINGS);
    cleanups.push(async () => {
      await pipeline.stop();
      await clearRedis(pipeline.prefix);
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
    let stop: Promise<void> | null = null;
    let restart: Promise<void> | null = null;
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
});
