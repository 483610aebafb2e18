/**
 * The addresses of a setting that may list several URLs separated by commas (the nodes of a
 * RabbitMQ cluster in AMQP_URL, the seed nodes of a Redis Cluster in REDIS_URL). Only a comma
 * followed by `<scheme>://` or `<scheme>s://` separates two addresses: a password may hold a comma.
 */
export function urlList(setting: string, scheme: 'amqp' | 'redis'): string[] {
  return setting
    .split(scheme === 'amqp' ? /,(?=\s*amqps?:\/\/)/ : /,(?=\s*rediss?:\/\/)/)
    .map((part) => part.trim())
    .filter((part) => part !== '');
}
