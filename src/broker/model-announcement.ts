import type { ModelUpdate } from '../../schemas/model-update.schema';
import type { ModelRegistry } from '../learning/registry';
import { connectFirstLive } from './broker-connection';
import { EXCHANGE_INTERNAL, messageIds, routingKeys } from './topology';

/**
 * Publishes the model-update announcement of `version` (exchange {@link EXCHANGE_INTERNAL},
 * `models.promoted`) with publisher confirms, as the trainer does, so that running tactical workers
 * swap to it between bars. `url` may list the nodes of a cluster: the first that answers takes it.
 */
export async function announcePromotion(url: string, registry: ModelRegistry, version: string, source = 'cli'): Promise<void> {
  const meta = await registry.meta(version);
  const sharpe = typeof meta.metrics?.sharpe === 'number' && Number.isFinite(meta.metrics.sharpe) ? meta.metrics.sharpe : 0;
  const update: ModelUpdate = {
    v: 1,
    version,
    parent: meta.parent,
    metrics: meta.metrics === null ? null : { sharpe, ...(typeof meta.metrics.window === 'string' ? { window: meta.metrics.window } : {}), source },
    promoted_at: new Date().toISOString(),
  };
  const connection = await connectFirstLive(url, {});
  try {
    const channel = await connection.createConfirmChannel();
    channel.publish(EXCHANGE_INTERNAL, routingKeys.model(), Buffer.from(JSON.stringify(update)), {
      contentType: 'application/json',
      messageId: messageIds.model(version),
    });
    await channel.waitForConfirms();
  } finally {
    await connection.close().catch(() => undefined);
  }
}
