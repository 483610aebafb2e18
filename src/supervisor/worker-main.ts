/**
 * Entry point of one worker process: `worker-main <role>`. Run by the supervisor (fork, IPC) or on
 * its own. Exits 0 after a graceful stop on SIGTERM/SIGINT, non-zero on a fatal error, leaving the
 * restart to the supervisor.
 */
import { loadConfigOrExit } from '../config/config';
import { setBreakerWindow } from '../flows/breakers';
import { installMetrics, registry } from '../observability/metrics';
import { componentLogger, rootLogger } from '../observability/logger';
import { WORKER_ROLES, type SupervisorToWorker, type WorkerRole, type WorkerToSupervisor } from './ipc';
import { Worker } from './worker';

async function main(): Promise<void> {
  const role = process.argv[2] as WorkerRole;
  if (!WORKER_ROLES.includes(role)) {
    process.stderr.write(`usage: worker-main <${WORKER_ROLES.join('|')}>\n`);
    process.exit(64);
  }
  const config = loadConfigOrExit();
  rootLogger(config.logLevel);
  const log = componentLogger(`worker.${role}`);
  installMetrics(role);
  setBreakerWindow(config.breakerWindowMs);
  const worker = new Worker(role, config);
  const send = (message: WorkerToSupervisor): void => {
    if (process.send !== undefined && process.connected) process.send(message);
  };
  const exit = (code: number): void => {
    rootLogger().flush();
    process.exit(code);
  };
  worker.onFatal = (err) => {
    log.fatal({ err }, 'fatal broker error; exiting');
    exit(2);
  };
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; exiting');
    exit(1);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection; exiting');
    exit(1);
  });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    send({ type: 'status', consuming: false, reason: `${role} is stopping` });
    worker.stop().then(
      async () => {
        if (profile !== null) await profile();
        exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('message', (message: SupervisorToWorker) => {
    if (message.type === 'shutdown') shutdown('supervisor');
    if (message.type === 'metrics') {
      void registry.getMetricsAsJSON().then((metrics) => send({ type: 'metrics', requestId: message.requestId, metrics }));
    }
  });
  process.on('disconnect', () => shutdown('supervisor gone'));

  const profile = await startCpuProfile(role);
  await worker.start();
  let last = '';
  const report = (): void => {
    if (stopping) return;
    const consuming = worker.consuming;
    const status: WorkerToSupervisor = {
      type: 'status',
      consuming,
      reason: consuming ? null : `${role} is not consuming (broker or Redis unavailable, or recovering)`,
      details: { inFlight: worker.inFlight },
    };
    const key = JSON.stringify([consuming]);
    if (key !== last) log.info({ consuming }, 'status');
    last = key;
    send(status);
  };
  report();
  setInterval(report, 500).unref();
  log.info('worker started');
}

main().catch((err: unknown) => {
  componentLogger('worker').fatal({ err }, 'worker failed to start');
  rootLogger().flush();
  process.exit(1);
});

/**
 * Diagnostics: with CPU_PROFILE_DIR set, the worker records a V8 CPU profile from start to a
 * graceful stop and writes `<dir>/<role>-<pid>.cpuprofile` (open it in Chrome DevTools).
 */
async function startCpuProfile(role: string): Promise<(() => Promise<void>) | null> {
  const dir = process.env.CPU_PROFILE_DIR;
  if (dir === undefined || dir === '') return null;
  const { Session } = await import('node:inspector');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return async () => {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    writeFileSync(`${dir}/${role}-${process.pid}.cpuprofile`, JSON.stringify(profile));
  };
}
