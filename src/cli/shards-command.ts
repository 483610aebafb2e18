import type { Channel, ChannelModel } from 'amqplib';
import {
  contextShards,
  generationsOf,
  type ShardGeneration,
  type ShardLayout,
} from '../broker/shard-generation';
import { declareTopology, ringExchange, shardQueue, sourceBindings, type TopologyBinding } from '../broker/topology';
import { createRedis, type Redis } from '../state/redis-client';
import { recordLayout, restoredLayout } from '../supervisor/shard-layout';
import { CliUsageError, ExitCode, connectBroker, defineCommand, isNotFound, type CommandContext, type ParsedCommandLine } from './common';

const HELP = `Changes the number of shards (PIPELINE_SHARDS) with bars flowing: producers keep publishing, nothing
is lost, duplicated or reordered. The pipeline must be STOPPED (SIGTERM, a graceful stop) whenever
this command runs; it refuses while any worker consumes. A resize takes three runs of
"pipeline shards resize N", with the pipeline started and stopped again between them:

  1st run  5m bars go to the new shards' queues (held there); the old tactical queues only drain.
           Start the pipeline with PIPELINE_SHARDS=N; it runs the old shards until the resize ends.
           Stop it once "pipeline shards status" shows the old tactical queues empty.
  2nd run  checks the old tactical queues are empty (else: start, let it drain, stop, run again);
           30m bars and feedback go to the new strategic queues; the old strategic queues drain.
           Start the pipeline; it runs only the old strategic workers and the context consumers.
           Stop it once the old strategic queues and the context queues are empty.
  3rd run  checks they are empty, deletes the old queues and rings; the new shards are current.
           Start the pipeline: it works through the bars held in the new queues.

The first run records the layout in Redis (<prefix>shards:layout) and in PIPELINE_DATA_DIR
(shard-layout.json, written back to Redis when Redis lost it); run it with the PIPELINE_SHARDS the
pipeline has run with until now. See docs/scaling.md, "Changing the number of shards".

Environment: AMQP_URL, REDIS_URL, PIPELINE_REDIS_PREFIX, PIPELINE_SHARDS, PIPELINE_QUEUE_TYPE,
PIPELINE_MAX_ATTEMPTS (those of the pipeline).`;

/** A queue's ready messages and consumers; null when it does not exist. */
interface QueueCount {
  queue: string;
  messages: number | null;
  consumers: number | null;
}

async function countQueue(model: ChannelModel, queue: string): Promise<QueueCount> {
  // A passive declare of a missing queue closes the channel: one channel per queue.
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  try {
    const ok = await channel.checkQueue(queue);
    return { queue, messages: ok.messageCount, consumers: ok.consumerCount };
  } catch (err) {
    if (isNotFound(err)) return { queue, messages: null, consumers: null };
    throw err;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

function workQueues(generation: ShardGeneration, kind: 'tactical' | 'strategic'): string[] {
  return Array.from({ length: generation.shards }, (_, k) => shardQueue(kind, k, generation.generation));
}

function contextQueues(from: number, to: number): string[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => shardQueue('context', from + i));
}

/** Every queue of a layout. */
function layoutQueues(layout: ShardLayout): string[] {
  return [
    ...generationsOf(layout).flatMap((g) => [...workQueues(g, 'tactical'), ...workQueues(g, 'strategic')]),
    ...contextQueues(0, contextShards(layout)),
  ];
}

async function unbind(channel: Channel, bindings: TopologyBinding[]): Promise<void> {
  for (const b of bindings) {
    if (b.exchangeToExchange === true) await channel.unbindExchange(b.destination, b.source, b.pattern);
    else await channel.unbindQueue(b.destination, b.source, b.pattern);
  }
}

/** Deletes a generation's queues of one role and its ring. */
async function deleteRole(channel: Channel, generation: ShardGeneration, kind: 'tactical' | 'strategic'): Promise<void> {
  for (const queue of workQueues(generation, kind)) await channel.deleteQueue(queue);
  if (generation.shards > 1) await channel.deleteExchange(ringExchange(kind, generation.generation));
}

function describeLayout(layout: ShardLayout): string {
  const g = (x: ShardGeneration): string => `generation ${x.generation} with ${x.shards} shard(s)`;
  return layout.next === null ? `${g(layout.current)}` : `resizing from ${g(layout.current)} to ${g(layout.next)}, phase ${layout.phase}`;
}

interface Session {
  ctx: CommandContext;
  redis: Redis;
  model: ChannelModel;
}

async function status(s: Session, json: boolean): Promise<number> {
  const layout = await restoredLayout(s.redis, s.ctx.config);
  const counts: QueueCount[] = [];
  for (const queue of layoutQueues(layout)) counts.push(await countQueue(s.model, queue));
  if (json) {
    s.ctx.out.write(`${JSON.stringify({ layout, queues: counts })}\n`);
    return ExitCode.Ok;
  }
  s.ctx.out.write(`${describeLayout(layout)}\n`);
  for (const c of counts) s.ctx.out.write(`  ${c.queue}: ${c.messages === null ? 'absent' : `${c.messages} ready, ${c.consumers} consumer(s)`}\n`);
  return ExitCode.Ok;
}

/** Non-empty queues among `queues` (a missing queue is empty), as `name (n)`. */
async function nonEmpty(model: ChannelModel, queues: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const queue of queues) {
    const c = await countQueue(model, queue);
    if ((c.messages ?? 0) > 0) out.push(`${queue} (${c.messages})`);
  }
  return out;
}

async function resize(s: Session, shards: number): Promise<number> {
  const { ctx, redis, model } = s;
  const { config } = ctx;
  const layout = await restoredLayout(redis, config);
  if (layout.next !== null && layout.next.shards !== shards) {
    ctx.err.write(`pipeline shards: ${describeLayout(layout)}; finish it with "pipeline shards resize ${layout.next.shards}" first\n`);
    return ExitCode.Failure;
  }
  if (layout.next === null && layout.current.shards === shards) {
    ctx.out.write(`nothing to do: ${describeLayout(layout)}\n`);
    return ExitCode.Ok;
  }
  // Message counts are exact only with nothing unacknowledged, and a running worker of another
  // generation would bind its sources again on a reconnect: the pipeline must be stopped.
  for (const queue of layoutQueues(layout)) {
    const c = await countQueue(model, queue);
    if ((c.consumers ?? 0) > 0) {
      ctx.err.write(`pipeline shards: ${queue} has ${c.consumers} consumer(s); stop the pipeline (SIGTERM) and run this again\n`);
      return ExitCode.Failure;
    }
  }
  const channel = await model.createChannel();
  const topology = { queueType: config.queueType, maxAttempts: config.maxAttempts };
  const { current } = layout;
  try {
    if (layout.next === null) {
      const next: ShardLayout = { current, next: { generation: current.generation + 1, shards }, phase: 'tactical' };
      // Bind the new tactical ring first, then unbind the old one: a bar published in between reaches
      // both generations, and the new shard skips it later (re-sending a bar is harmless).
      await declareTopology(channel, { ...topology, layout: next });
      await unbind(channel, sourceBindings('tactical', current));
      await recordLayout(redis, config, next);
      ctx.out.write(
        `step 1 of 3 done: 5m bars now go to the ${shards} new tactical queues (${describeLayout(next)}).\n` +
          `Start the pipeline with PIPELINE_SHARDS=${shards}; stop it (SIGTERM) once "pipeline shards status" shows ` +
          `${workQueues(current, 'tactical').join(', ')} empty; then run "pipeline shards resize ${shards}" again.\n`,
      );
      return ExitCode.Ok;
    }
    if (layout.phase === 'tactical') {
      const left = await nonEmpty(model, workQueues(current, 'tactical'));
      if (left.length > 0) {
        ctx.err.write(`pipeline shards: not drained yet: ${left.join(', ')}; start the pipeline, stop it once they are empty, run this again\n`);
        return ExitCode.Failure;
      }
      const next: ShardLayout = { current, next: layout.next, phase: 'strategic' };
      await declareTopology(channel, { ...topology, layout: next });
      await unbind(channel, sourceBindings('strategic', current));
      await deleteRole(channel, current, 'tactical');
      await recordLayout(redis, config, next);
      ctx.out.write(
        `step 2 of 3 done: 30m bars and feedback now go to the new strategic queues.\n` +
          `Start the pipeline (only the old strategic workers and the context consumers run); stop it once ` +
          `${[...workQueues(current, 'strategic'), ...contextQueues(0, contextShards(layout))].join(', ')} are empty; ` +
          `then run "pipeline shards resize ${shards}" again.\n`,
      );
      return ExitCode.Ok;
    }
    // Every context queue must be empty too: a context stored in Redis after the new shard of its
    // symbol has loaded the symbol would never reach it.
    const left = await nonEmpty(model, [...workQueues(current, 'strategic'), ...contextQueues(0, contextShards(layout))]);
    if (left.length > 0) {
      ctx.err.write(`pipeline shards: not drained yet: ${left.join(', ')}; start the pipeline, stop it once they are empty, run this again\n`);
      return ExitCode.Failure;
    }
    const done: ShardLayout = { current: layout.next, next: null, phase: null };
    await declareTopology(channel, { ...topology, layout: done });
    await deleteRole(channel, current, 'strategic');
    for (const queue of contextQueues(layout.next.shards, contextShards(layout))) await channel.deleteQueue(queue);
    await recordLayout(redis, config, done);
    ctx.out.write(`step 3 of 3 done: ${describeLayout(done)}. Start the pipeline with PIPELINE_SHARDS=${shards}.\n`);
    return ExitCode.Ok;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

const OPTIONS = { json: { type: 'boolean', description: 'one JSON object instead of text' } } as const;

async function run({ positionals: [sub, ...rest], values }: ParsedCommandLine<typeof OPTIONS>, ctx: CommandContext): Promise<number> {
  const shards = sub === 'resize' ? Number(rest[0]) : 0;
  if (sub === 'resize' && !(Number.isInteger(shards) && shards >= 1 && shards <= 256)) throw new CliUsageError(`the number of shards must be 1 to 256, got ${rest[0]}`);
  const redis = createRedis({ url: ctx.config.redisUrl, connectionName: 'pipeline-cli-shards', log: ctx.log });
  let model: ChannelModel | null = null;
  try {
    await redis.connect();
    model = await connectBroker(ctx.config, 'pipeline-cli-shards');
    const session = { ctx, redis, model };
    return sub === 'status' ? await status(session, values.json === true) : await resize(session, shards);
  } finally {
    await model?.close().catch(() => undefined);
    redis.disconnect();
  }
}

export const shardsCommand = defineCommand({
  options: OPTIONS,
  subcommands: {
    status: { description: 'the recorded layout and the message and consumer counts of its queues' },
    resize: { description: 'one step of changing the number of shards to N (see below)', args: '<N>', options: [] },
  },
  help: HELP,
  run,
});
