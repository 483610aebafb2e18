import type { Channel, ConsumeMessage } from 'amqplib';
import { IntegratedResultSchema, type IntegratedResult } from '../../schemas/integrated-result.schema';
import { EXCHANGE_RESULTS, QUEUE_RESULTS, routingKeys } from '../broker/topology';
import {
  CliUsageError,
  ExitCode,
  connectBroker,
  describeError,
  queueExists,
  defineCommand,
  integer,
  type CommandContext,
} from './common';

const RESULTS_PATTERN = routingKeys.result('#');

const HELP = `Follows the integrated results and prints them: one JSON body per line (json, the default) or a
compact table (symbol, ts, close, regime, confidence, action, target_position, degraded, latency_ms).

By default this CONSUMES the durable queue ${QUEUE_RESULTS}: every result printed is acknowledged and
taken off the queue, so another reader will not see it. Use --peek to leave the queue untouched: a
temporary exclusive queue is bound to ${EXCHANGE_RESULTS} with ${RESULTS_PATTERN}, which shows results
published from now on (not those already waiting in ${QUEUE_RESULTS}).

With --count, up to 255 results beyond N may be delivered before the consumer is cancelled; they
are returned to the queue unprinted (a quorum queue counts that as a delivery attempt).
Exit status: 0 when --count results arrived (or following ended by Ctrl-C or --timeout-ms without
--count); 1 when --timeout-ms ran out before --count results.`;

/** Columns of the table format: header, width, cell. */
const COLUMNS: [string, number, (r: IntegratedResult) => string][] = [
  ['symbol', 10, (r) => r.symbol],
  ['ts', 24, (r) => new Date(r.ts).toISOString()],
  ['close', 12, (r) => String(r.close)],
  ['regime', 8, (r) => r.strategic.regime ?? '-'],
  ['conf', 6, (r) => r.strategic.confidence ?? '-'],
  ['action', 6, (r) => r.actions.tactical ?? '-'],
  ['target', 7, (r) => (r.target_position === null ? '-' : r.target_position.toFixed(3))],
  ['degraded', 18, (r) => (r.degraded.length === 0 ? '-' : r.degraded.join(','))],
  ['latency_ms', 10, (r) => r.latency_ms.toFixed(1)],
];

/** One table row (or the header when `result` is null). */
export function formatResultRow(result: IntegratedResult | null): string {
  return COLUMNS.map(([name, width, cell]) => (result === null ? name : cell(result)).padEnd(width))
    .join(' ')
    .trimEnd();
}

/** `pipeline results`. */
export const resultsCommand = defineCommand({
  options: {
    format: { type: 'string', value: 'json|table', choices: ['json', 'table'], default: 'json', description: 'output format' },
    count: { type: 'string', value: 'N', parse: integer(), default: 0, description: 'stop after N results (0 = follow until Ctrl-C)' },
    queue: { type: 'string', value: 'name', description: `queue to consume (not with --peek) (default: ${QUEUE_RESULTS})` },
    peek: { type: 'boolean', description: 'read through a temporary queue instead of consuming' },
    'timeout-ms': { type: 'string', value: 'MS', parse: integer(), default: 0, description: 'stop when no result arrived for MS milliseconds (0 = wait forever)' },
  },
  help: HELP,
  async run({ values }, ctx: CommandContext): Promise<number> {
    const format = values.format === 'table' ? 'table' : 'json';
    const { count, 'timeout-ms': idleTimeoutMs } = values;
    const peek = values.peek === true;
    if (peek && values.queue !== undefined) throw new CliUsageError('--queue and --peek exclude each other');

    const model = await connectBroker(ctx.config, 'pipeline-cli-results');
    let channel: Channel | null = null;
    try {
      channel = await model.createChannel();
      const ch = channel;
      ch.on('error', (err: Error) => ctx.log.warn({ err: err.message }, 'results channel error'));
      let queue: string;
      if (peek) {
        queue = (await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false })).queue;
        await ch.bindQueue(queue, EXCHANGE_RESULTS, RESULTS_PATTERN);
      } else {
        queue = values.queue ?? QUEUE_RESULTS;
        if (!(await queueExists(ch, queue, ctx, 'has the pipeline (or a publish) run here?'))) return ExitCode.Failure;
        await ch.prefetch(count > 0 ? Math.min(count, 256) : 256);
      }
      if (format === 'table') ctx.out.write(`${formatResultRow(null)}\n`);

      let received = 0;
      let consumerTag: string | null = null;
      const excess: ConsumeMessage[] = [];
      const outcome = await new Promise<'count' | 'timeout' | 'interrupted' | 'cancelled'>((resolve) => {
        let idleTimer: NodeJS.Timeout | null = null;
        const armIdle = (): void => {
          if (idleTimeoutMs <= 0) return;
          if (idleTimer !== null) clearTimeout(idleTimer);
          idleTimer = setTimeout(() => finish('timeout'), idleTimeoutMs);
        };
        const onSigint = (): void => finish('interrupted');
        let finished = false;
        function finish(why: 'count' | 'timeout' | 'interrupted' | 'cancelled'): void {
          if (finished) return;
          finished = true;
          if (idleTimer !== null) clearTimeout(idleTimer);
          process.removeListener('SIGINT', onSigint);
          resolve(why);
        }
        process.once('SIGINT', onSigint);
        armIdle();
        ch.consume(
          queue,
          (msg) => {
            if (msg === null) {
              ctx.err.write('the broker cancelled the consumer (queue deleted?)\n');
              finish('cancelled');
              return;
            }
            if (finished || (count > 0 && received >= count)) {
              if (!peek) excess.push(msg);
              return;
            }
            received++;
            printResult(msg, format, ctx);
            if (!peek) ch.ack(msg);
            armIdle();
            if (count > 0 && received >= count) finish('count');
          },
          { noAck: peek },
        ).then(
          (reply) => {
            consumerTag = reply.consumerTag;
          },
          (err: unknown) => {
            ctx.err.write(`cannot consume ${queue}: ${describeError(err)}\n`);
            finish('cancelled');
          },
        );
      });
      // Stop deliveries, then return those that came past --count, in delivery order.
      if (consumerTag !== null) await ch.cancel(consumerTag).catch(() => undefined);
      for (const msg of excess) ch.nack(msg, false, true);
      if (outcome === 'timeout') ctx.err.write(`no result for ${idleTimeoutMs} ms; ${received} received\n`);
      if (outcome === 'cancelled') return ExitCode.Failure;
      if (outcome === 'timeout' && count > 0 && received < count) return ExitCode.Failure;
      return ExitCode.Ok;
    } finally {
      if (channel !== null) await channel.close().catch(() => undefined);
      await model.close().catch(() => undefined);
    }
  },
});

function printResult(msg: ConsumeMessage, format: 'json' | 'table', ctx: CommandContext): void {
  const text = msg.content.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    ctx.err.write(`result ${String(msg.properties.messageId)} is not JSON: ${text.slice(0, 200)}\n`);
    return;
  }
  const parsed = IntegratedResultSchema.safeParse(body);
  if (!parsed.success) {
    ctx.err.write(
      `result ${String(msg.properties.messageId)} does not match the v1 schema: ${parsed.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}\n`,
    );
  }
  if (format === 'json') {
    ctx.out.write(`${text}\n`);
  } else if (parsed.success) {
    ctx.out.write(`${formatResultRow(parsed.data)}\n`);
  }
}
