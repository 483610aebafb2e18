/**
 * `npm start` (`node dist/src/supervisor/main.js`): the supervisor and every worker, in the
 * foreground until SIGINT/SIGTERM; then it drains and exits 0.
 *
 * Exit codes: 0 after a clean stop; 2 when it cannot start as configured (a bad or misspelt setting,
 * an unknown vhost, refused credentials, an unreachable RabbitMQ or Redis, a missing broker plugin, a
 * taken health port), with one line on stderr naming the setting and the fix, and never retried;
 * 1 when a worker crash-loops or the supervisor fails otherwise.
 */
import { describeBrokerTarget } from '../broker/preflight';
import { ignoredServiceLinks, inheritedEnv, loadConfigOrExit } from '../config/config';
import { EXIT_STARTUP } from '../errors';
import { componentLogger, rootLogger } from '../observability/logger';
import { describeRedisTarget } from '../state/redis-preflight';
import { rolesFor } from './ipc';
import { exitOnStartError, preflight } from './startup';
import { Supervisor } from './supervisor';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  rootLogger(config.logLevel);
  const log = componentLogger('main');
  log.info({ broker: describeBrokerTarget(config.amqpUrl), redis: describeRedisTarget(config.redisUrl) }, 'starting');
  const env = inheritedEnv();
  const links = ignoredServiceLinks(env);
  if (links.length > 0) {
    log.warn(
      { ignored: links },
      `ignoring Kubernetes service-link variables (${links.join(', ')}): the kubelet sets them for Services of this namespace; set enableServiceLinks: false in the pod spec to drop them`,
    );
  }
  // PIPELINE_SHARD_INDEX set: this process serves that shard only (one pod or container per shard);
  // unset: it runs a worker for every shard.
  const shard = env.PIPELINE_SHARD_INDEX === undefined || env.PIPELINE_SHARD_INDEX === '' ? undefined : config.shardIndex;
  let exitCode = 0;
  let supervisor: Supervisor | null = null;
  let stopping: Promise<void> | null = null;
  const shutdown = (signal: string): void => {
    if (stopping !== null) return;
    log.info({ signal }, 'shutting down');
    stopping = (supervisor?.stop() ?? Promise.resolve()).then(
      () => {
        rootLogger().flush();
        process.exit(exitCode);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // Handlers first: a SIGTERM during the pre-flight must still end the process with 0.
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await preflight(config, 'pipeline-supervisor-preflight');
  if (stopping !== null) return;
  supervisor = new Supervisor({ config, roles: rolesFor(config), shard });
  supervisor.onGiveUp = (role) => {
    log.fatal({ role }, 'a worker crash-loops; stopping the pipeline');
    exitCode = 1;
    shutdown('give-up');
  };
  supervisor.onStartupError = (role) => {
    log.fatal({ role }, 'a worker cannot run as configured; stopping the pipeline');
    exitCode = EXIT_STARTUP;
    shutdown('startup-error');
  };
  await supervisor.start();
}

if (require.main === module) {
  main().catch((err: unknown) => exitOnStartError(err, 'main'));
}
