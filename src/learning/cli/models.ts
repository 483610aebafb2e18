/**
 * Model versions on disk.
 *   tsx src/learning/cli/models.ts --dir <registry> list
 *   tsx src/learning/cli/models.ts --dir <registry> promote <version> [--no-announce]
 *   tsx src/learning/cli/models.ts --dir <registry> rollback [<version>] [--no-announce]
 *
 * `promote` and `rollback` change the registry, then announce the now-current version on
 * `models.promoted` (exchange `pipeline.internal` of `AMQP_URL`), exactly as the trainer does, so
 * running tactical workers swap to it between bars. With `--no-announce`, or when the broker cannot
 * be reached, workers pick the version up when they restart (a warning says so). A rollback to the
 * seeded initial policy cannot be announced (the announcement names a saved version).
 */
import type { ModelUpdate } from '../../../schemas/model-update.schema';
import { connectFirstLive } from '../../broker/broker-connection';
import { EXCHANGE_INTERNAL, routingKeys } from '../../broker/topology';
import { ModelRegistry } from '../registry';

const USAGE = 'usage: models --dir <registry> list | promote <v> [--no-announce] | rollback [<v>] [--no-announce]';

/** Publishes the model-update announcement of `version` with publisher confirms. */
export async function announcePromotion(url: string, registry: ModelRegistry, version: string): Promise<void> {
  const meta = await registry.meta(version);
  const sharpe = typeof meta.metrics?.sharpe === 'number' && Number.isFinite(meta.metrics.sharpe) ? meta.metrics.sharpe : 0;
  const update: ModelUpdate = {
    v: 1,
    version,
    parent: meta.parent,
    metrics: meta.metrics === null ? null : { sharpe, ...(typeof meta.metrics.window === 'string' ? { window: meta.metrics.window } : {}), source: 'cli' },
    promoted_at: new Date().toISOString(),
  };
  // AMQP_URL may list the nodes of a cluster: the first that answers takes the announcement.
  const connection = await connectFirstLive(url, {});
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(EXCHANGE_INTERNAL, routingKeys.model(), Buffer.from(JSON.stringify(update)), {
      contentType: 'application/json',
      messageId: `model:${version}`,
    });
    await channel.waitForConfirms();
  } finally {
    await connection.close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const d = args.indexOf('--dir');
  if (d < 0 || !args[d + 1]) throw new RangeError(USAGE);
  const registry = new ModelRegistry(args[d + 1] as string);
  const announce = !args.includes('--no-announce');
  const [command, version] = args.filter((a, i) => i !== d && i !== d + 1 && a !== '--no-announce');
  let current: string | null;
  if (command === 'list') {
    const promoted = await registry.latestPromoted();
    for (const v of await registry.list()) {
      const m = await registry.meta(v);
      const verdict = (m.metrics?.verdict as { reason?: string } | undefined)?.reason;
      process.stdout.write(
        `${v === promoted ? '*' : ' '} ${v} parent=${m.parent ?? '-'} created=${m.created} sharpe=${m.metrics?.sharpe ?? '-'}${verdict ? ` (${verdict})` : ''}\n`,
      );
    }
    return;
  } else if (command === 'promote' && version) {
    await registry.promote(version);
    current = version;
    process.stdout.write(`promoted ${version}\n`);
  } else if (command === 'rollback') {
    current = await registry.rollback(version);
    process.stdout.write(`current ${current ?? 'none (seeded initial policy)'}\n`);
  } else {
    throw new RangeError(USAGE);
  }
  if (!announce) return;
  if (current === null) {
    process.stderr.write('not announced: running workers keep their version until they restart (the seeded initial policy has no saved version)\n');
    return;
  }
  const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  try {
    await announcePromotion(url, registry, current);
    process.stdout.write(`announced ${current} on ${EXCHANGE_INTERNAL} ${routingKeys.model()}\n`);
  } catch (err) {
    process.stderr.write(
      `warning: ${current} is current in the registry but the announcement failed (${(err as Error).message}); running workers swap when they restart, or run this again with AMQP_URL set\n`,
    );
    process.exitCode = 3;
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof RangeError ? 2 : 1);
  });
}
