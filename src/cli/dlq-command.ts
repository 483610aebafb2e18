import type { Channel, ConfirmChannel, GetMessage, Message } from 'amqplib';
import { EXCHANGE_DLX, headers as HEADERS, QUEUE_DEAD_LETTERS } from '../broker/topology';
import {
  CliUsageError,
  ExitCode,
  connectBroker,
  describeError,
  queueExists,
  defineCommand,
  integer,
  type CommandContext,
  type ParsedCommandLine,
} from './common';

const HELP = `Dead letters are the messages a stage rejected (headers x-rejection-reason, x-rejected-by,
x-original-exchange, x-original-routing-key) or the broker dead-lettered (header x-death, e.g. a
message that reached the delivery limit), collected from ${EXCHANGE_DLX} in ${QUEUE_DEAD_LETTERS}.

  list     shows them without removing them: at most the number of messages the queue held when
           the command started are fetched, then all are returned to the queue in order.
  replay   republishes each to the exchange and routing key it was first published to, with the
           dead-letter headers removed and x-replay-count incremented, waits for the broker's
           confirm, then removes it from ${QUEUE_DEAD_LETTERS}. Messages that do not match the
           filter, have no recorded origin, or are unroutable stay in the queue.
           Replaying a bar reaches every queue bound to its routing key; a stage that had already
           accepted the bar acknowledges and drops it (at-least-once delivery).
  purge    deletes every dead letter; needs --yes.

Environment: AMQP_URL (a vhost in the path is honoured).`;

/** Where a dead letter came from and why, read from its headers. */
export interface DeadLetterInfo {
  reason: string;
  stage: string;
  exchange: string | null;
  routingKey: string | null;
  queue: string | null;
  rejectedAt: string | null;
  messageId: string | null;
}

/** Headers the dead-lettering added; a replayed message goes out without them. */
const DEAD_LETTER_HEADERS = [
  HEADERS.rejectionReason,
  HEADERS.rejectedBy,
  HEADERS.rejectedAt,
  HEADERS.originalExchange,
  HEADERS.originalRoutingKey,
  HEADERS.originalQueue,
  HEADERS.death,
  HEADERS.firstDeathExchange,
  HEADERS.firstDeathQueue,
  HEADERS.firstDeathReason,
  HEADERS.lastDeathExchange,
  HEADERS.lastDeathQueue,
  HEADERS.lastDeathReason,
  HEADERS.deliveryCount,
];

interface XDeath {
  reason?: unknown;
  queue?: unknown;
  exchange?: unknown;
  'routing-keys'?: unknown;
  time?: unknown;
}

function str(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return null;
}

/**
 * Reads the origin and reason of a dead letter: the pipeline's `x-original-*` headers when present,
 * otherwise the broker's first `x-death` entry (the oldest dead-lettering is last in the array, so
 * the original publish is described by the last entry).
 */
export function deadLetterInfo(msg: Pick<Message, 'properties'>): DeadLetterInfo {
  const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
  const deaths = Array.isArray(headers[HEADERS.death]) ? (headers[HEADERS.death] as XDeath[]) : [];
  const origin = deaths[deaths.length - 1];
  const deathKeys = Array.isArray(origin?.['routing-keys']) ? (origin['routing-keys'] as unknown[]) : [];
  const pipelineExchange = str(headers[HEADERS.originalExchange]);
  const pipelineKey = str(headers[HEADERS.originalRoutingKey]);
  const hasPipelineOrigin = pipelineExchange !== null && pipelineKey !== null;
  const brokerReason = origin === undefined ? null : `broker dead-lettered: ${str(origin.reason) ?? 'unknown'}`;
  return {
    reason: str(headers[HEADERS.rejectionReason]) ?? brokerReason ?? 'no reason recorded',
    stage: str(headers[HEADERS.rejectedBy]) ?? (origin !== undefined ? 'broker' : 'unknown'),
    exchange: hasPipelineOrigin ? pipelineExchange : str(origin?.exchange),
    routingKey: hasPipelineOrigin ? pipelineKey : str(deathKeys[0]),
    queue: str(headers[HEADERS.originalQueue]) ?? str(origin?.queue),
    rejectedAt: str(headers[HEADERS.rejectedAt]),
    messageId: typeof msg.properties.messageId === 'string' ? msg.properties.messageId : null,
  };
}

/** The headers a replayed message carries: the original ones, plus a replay count. */
export function replayHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(headers ?? {}) };
  for (const name of DEAD_LETTER_HEADERS) delete out[name];
  const count = out[HEADERS.replayCount];
  const previous = typeof count === 'number' ? count : 0;
  out[HEADERS.replayCount] = previous + 1;
  out[HEADERS.replayedAt] = new Date().toISOString();
  return out;
}

/**
 * Fetches up to `limit` messages with basic.get, without acknowledging them. Never more than the
 * queue held at the start: a message we return to the queue is not fetched a second time.
 */
export async function fetchDeadLetters(channel: Channel, limit: number): Promise<GetMessage[]> {
  const { messageCount } = await channel.checkQueue(QUEUE_DEAD_LETTERS);
  const max = limit > 0 ? Math.min(limit, messageCount) : messageCount;
  const out: GetMessage[] = [];
  while (out.length < max) {
    const msg = await channel.get(QUEUE_DEAD_LETTERS, { noAck: false });
    if (msg === false) break;
    out.push(msg);
  }
  return out;
}

function preview(content: Buffer, max = 160): string {
  const text = content.toString('utf8').replace(/\s+/g, ' ');
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

async function withDlqChannel<T>(ctx: CommandContext, fn: (channel: Channel) => Promise<T>): Promise<T | null> {
  const model = await connectBroker(ctx.config, 'pipeline-cli-dlq');
  try {
    const channel = await model.createChannel();
    channel.on('error', (err: Error) => ctx.log.warn({ err: err.message }, 'dlq channel error'));
    if (!(await queueExists(channel, QUEUE_DEAD_LETTERS, ctx, 'has the pipeline run here?'))) return null;
    try {
      return await fn(channel);
    } finally {
      // Closing returns every message still unacknowledged to the queue.
      await channel.close().catch(() => undefined);
    }
  } finally {
    await model.close().catch(() => undefined);
  }
}

const OPTIONS = {
  count: { type: 'string', value: 'N', parse: integer(), description: 'list: show at most N (0 = all; default 20); replay: replay at most N (0 = all; default 0)' },
  json: { type: 'boolean', description: 'one JSON object per line instead of text' },
  'filter-reason': { type: 'string', value: 'text', description: 'only those whose reason contains text (case-insensitive)' },
  yes: { type: 'boolean', description: 'do it (purge deletes every dead letter)' },
} as const;

type Values = ParsedCommandLine<typeof OPTIONS>['values'];

async function list(values: Values, ctx: CommandContext): Promise<number> {
  const count = values.count ?? 20;
  const result = await withDlqChannel(ctx, async (channel) => {
    const { messageCount } = await channel.checkQueue(QUEUE_DEAD_LETTERS);
    const messages = await fetchDeadLetters(channel, count);
    for (const msg of messages) {
      const info = deadLetterInfo(msg);
      if (values.json === true) {
        ctx.out.write(
          `${JSON.stringify({
            ...info,
            redelivered: msg.fields.redelivered,
            headers: msg.properties.headers ?? {},
            body: msg.content.toString('utf8'),
          })}\n`,
        );
      } else {
        ctx.out.write(
          [
            `- ${info.messageId ?? '(no messageId)'}  rejected by ${info.stage}${info.rejectedAt !== null ? ` at ${info.rejectedAt}` : ''}`,
            `  reason: ${info.reason}`,
            `  origin: exchange ${info.exchange ?? '?'} routing key ${info.routingKey ?? '?'}${info.queue !== null ? ` (queue ${info.queue})` : ''}`,
            `  body:   ${preview(msg.content)}`,
          ].join('\n') + '\n',
        );
      }
    }
    // Return them in the order they were fetched, before the channel closes.
    for (const msg of messages) channel.nack(msg, false, true);
    if (values.json !== true) ctx.out.write(`${messages.length} of ${messageCount} dead letters shown; none removed\n`);
    return ExitCode.Ok;
  });
  return result ?? ExitCode.Failure;
}

async function replay(values: Values, ctx: CommandContext): Promise<number> {
  const count = values.count ?? 0;
  const filter = values['filter-reason']?.toLowerCase();
  const model = await connectBroker(ctx.config, 'pipeline-cli-dlq-replay');
  let publishChannel: ConfirmChannel | null = null;
  try {
    const confirm = await model.createConfirmChannel();
    publishChannel = confirm;
    const returned = new Set<string>();
    let channelFailure: Error | null = null;
    confirm.on('error', (err: Error) => {
      channelFailure = err;
    });
    confirm.on('return', (msg: Message) => {
      const id: unknown = msg.properties.headers?.[HEADERS.replayedAt];
      const key = `${String(msg.properties.messageId)}|${String(id)}|${msg.fields.routingKey}`;
      returned.add(key);
    });
    const result = await withDlqChannel(ctx, async (channel) => {
      const messages = await fetchDeadLetters(channel, 0);
      let replayed = 0;
      let skipped = 0;
      let failed = 0;
      const confirms: Promise<void>[] = [];
      const removed = new Set<GetMessage>();
      for (const msg of messages) {
        if (count > 0 && confirms.length >= count) {
          skipped++;
          continue;
        }
        const info = deadLetterInfo(msg);
        if (filter !== undefined && !info.reason.toLowerCase().includes(filter)) {
          skipped++;
          continue;
        }
        if (info.exchange === null || info.routingKey === null) {
          ctx.err.write(`${info.messageId ?? '(no messageId)'}: no recorded origin; left in the queue\n`);
          skipped++;
          continue;
        }
        const { exchange, routingKey } = info;
        const headers = replayHeaders(msg.properties.headers);
        const key = `${String(msg.properties.messageId)}|${String(headers[HEADERS.replayedAt])}|${routingKey}`;
        confirms.push(
          new Promise<void>((resolve) => {
            confirm.publish(
              exchange,
              routingKey,
              msg.content,
              { ...msg.properties, headers, mandatory: true },
              (err: unknown) => {
                if (err !== null && err !== undefined) {
                  failed++;
                  ctx.err.write(`${info.messageId ?? '(no messageId)'}: not confirmed (${describeError(channelFailure ?? err)}); left in the queue\n`);
                } else if (returned.has(key)) {
                  failed++;
                  ctx.err.write(`${info.messageId ?? '(no messageId)'}: unroutable (${exchange} ${routingKey}); left in the queue\n`);
                } else {
                  // Only now is the copy safe with the broker: remove the dead letter.
                  channel.ack(msg);
                  removed.add(msg);
                  replayed++;
                }
                resolve();
              },
            );
          }),
        );
      }
      await Promise.all(confirms);
      for (const msg of messages) {
        // Whatever was not acked above goes back, in order (closing the channel would too).
        if (!removed.has(msg)) channel.nack(msg, false, true);
      }
      ctx.out.write(`replayed ${replayed} dead letters; ${skipped} skipped, ${failed} failed (left in ${QUEUE_DEAD_LETTERS})\n`);
      return failed > 0 ? ExitCode.Failure : ExitCode.Ok;
    });
    return result ?? ExitCode.Failure;
  } finally {
    if (publishChannel !== null) await publishChannel.close().catch(() => undefined);
    await model.close().catch(() => undefined);
  }
}

async function purge(values: Values, ctx: CommandContext): Promise<number> {
  if (values.yes !== true) throw new CliUsageError(`dlq purge deletes every message in ${QUEUE_DEAD_LETTERS}: add --yes`);
  const result = await withDlqChannel(ctx, async (channel) => {
    const { messageCount } = await channel.purgeQueue(QUEUE_DEAD_LETTERS);
    ctx.out.write(`purged ${messageCount} dead letters\n`);
    return ExitCode.Ok;
  });
  return result ?? ExitCode.Failure;
}

/** `pipeline dlq replay --count <count>` (the gateway's admin API); returns the exit code. */
export function replayDeadLetters(count: number, ctx: CommandContext): Promise<number> {
  return replay({ count }, ctx);
}

/** `pipeline dlq list|replay|purge`. */
export const dlqCommand = defineCommand({
  options: OPTIONS,
  subcommands: {
    list: { description: 'show them without removing them', options: ['count', 'json'] },
    replay: { description: 'republish them where they were first published, then remove them', options: ['count', 'filter-reason'] },
    purge: { description: 'delete every dead letter (needs --yes)', options: ['yes'] },
  },
  help: HELP,
  async run({ values, positionals: [sub] }, ctx: CommandContext): Promise<number> {
    return sub === 'list' ? list(values, ctx) : sub === 'replay' ? replay(values, ctx) : purge(values, ctx);
  },
});
