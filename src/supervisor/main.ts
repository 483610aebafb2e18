/**
 * `npm start`: the supervisor and every worker, in the foreground until SIGINT/SIGTERM; then it
 * drains and exits 0. Exits 78 on a configuration error, 1 when a worker crash-loops.
 */
import { loadConfigOrExit } from '../config/config';
import { componentLogger, rootLogger } from '../observability/logger';
import { rolesFor } from './ipc';
import { Supervisor } from './supervisor';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  rootLogger(config.logLevel);
  const log = componentLogger('main');
  const supervisor = new Supervisor({ config, roles: rolesFor(config) });
  let exitCode = 0;
  const shutdown = (signal: string): void => {
    log.info({ signal }, 'shutting down');
    supervisor.stop().then(
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
  supervisor.onGiveUp = (role) => {
    log.fatal({ role }, 'a worker crash-loops; stopping the pipeline');
    exitCode = 1;
    shutdown('give-up');
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await supervisor.start();
}

main().catch((err: unknown) => {
  componentLogger('main').fatal({ err }, 'supervisor failed to start');
  rootLogger().flush();
  process.exit(1);
});
