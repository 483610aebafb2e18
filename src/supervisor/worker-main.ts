/**
 * Entry point of one worker process: `worker-main <role>`. Run by the supervisor (fork, IPC) or on
 * its own. Exits 0 after a graceful stop on SIGTERM/SIGINT; 2 when it cannot run as configured (bad
 * setting, unknown vhost, refused credentials, unreachable RabbitMQ or Redis, a broker error no retry
 * can fix: one line on stderr names the setting; the supervisor does not restart it); 1 on any other
 * fatal error, leaving the restart to the supervisor. A worker whose supervisor is gone (IPC channel
 * closed, or re-parented) exits within a second: nothing would stop it otherwise.
 */
import { loadConfigOrExit } from '../config/config';
import { setBreakerWindow } from '../flows/breakers';
import { installMetrics, registry } from '../observability/metrics';
import { componentLogger, rootLogger } from '../observability/logger';
import { isFatalBrokerError } from '../broker/broker-connection';
import { describeFatalBrokerError } from '../broker/preflight';
import { EXIT_STARTUP } from '../errors';
import { exitOnStartError, preflight } from './startup';
import { WORKER_ROLES, isShardedRole, workerName, type SupervisorToWorker, type WorkerRole, type WorkerToSupervisor } from './ipc';
import { Worker } from './worker';
import { buildGateway, type RoleProcess } from './stages';
import { EXIT_STATE_RECOVERED, StateGuard, type StateLostDetails } from './state-guard';

async function main(): Promise<void> {
  const role = process.argv[2] as WorkerRole;
  if (!WORKER_ROLES.includes(role)) {
    process.stderr.write(`usage: worker-main <${WORKER_ROLES.join('|')}>\n`);
    process.exit(64);
  }
  const config = loadConfigOrExit();
  rootLogger(config.logLevel);
  const log = componentLogger(`worker.${role}`);
  installMetrics(workerName(role, isShardedRole(role) ? config.shardIndex : 0)); // one series per shard: summed series would hide a worker's RSS
  setBreakerWindow(config.breakerWindowMs);
  const worker: RoleProcess = role === 'gateway' ? await buildGateway(config) : new Worker(role, config);
  const send = (message: WorkerToSupervisor): void => {
    if (process.send !== undefined && process.connected) process.send(message);
  };
  const exit = (code: number): void => {
    rootLogger().flush();
    process.exit(code);
  };
  worker.onFatal = (err) => {
    // Access refused, not found, precondition failed, an unknown exchange type: the configuration or
    // the broker's setup is wrong and a restart would fail the same way (exit 2: the supervisor stops
    // the pipeline). Anything else (initial reconnects exhausted) may pass: exit 1 and let the
    // supervisor retry.
    const permanent = isFatalBrokerError(err);
    log.fatal({ err, permanent }, 'fatal broker error; exiting');
    if (permanent) process.stderr.write(`${describeFatalBrokerError(err)}\n`);
    exit(permanent ? EXIT_STARTUP : 1);
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
  let profile: (() => Promise<void>) | null = null;
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
  // A worker whose supervisor is gone (SIGKILLed, crashed) must not live on as an orphan: start the
  // graceful stop and exit within a second whatever it has not finished (unacknowledged messages go
  // back to their queues). The IPC channel closing says so at once; the parent pid changing (we were
  // re-parented) is the fallback. A worker run on its own (no IPC: its own container) watches neither.
  let orphan = false;
  const orphaned = (why: string): void => {
    if (orphan) return;
    orphan = true;
    setTimeout(() => {
      log.warn({ why }, 'supervisor gone; exiting without finishing the stop');
      exit(0);
    }, 500).unref();
    shutdown(why);
  };
  if (process.send !== undefined) {
    process.on('disconnect', () => orphaned('supervisor gone (IPC closed)'));
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) orphaned('supervisor gone (re-parented)');
    }, 200).unref();
  }

  await preflight(config, `pipeline-${role}-preflight`);
  // Redis loss (docs/redis-loss.md): consume nothing while the state epoch is lost; stop at once if it
  // is lost while running, and restart (exit for the supervisor) once it is intact again.
  let lost: StateLostDetails | null = null;
  const onLost = (d: StateLostDetails): void => {
    lost = d;
    send({ type: 'status', consuming: false, reason: `${role}: redis state lost (${d.affected}): ${d.message}; fix: ${d.fix}`, details: { ...d } });
  };
  // The gateway keeps no state in Redis: nothing to guard.
  const guard = role === 'trainer' || role === 'gateway' ? null : new StateGuard({ redisUrl: config.redisUrl, prefix: config.redisPrefix, dataDir: config.dataDir, name: workerName(role, isShardedRole(role) ? config.shardIndex : 0) });
  if (guard !== null && !(await guard.waitUntilIntact(onLost))) return;
  lost = null;
  profile = await startCpuProfile(role, config.cpuProfileDir);
  await worker.start();
  guard?.watch((d) => {
    onLost(d);
    void worker.stop().then(async () => (await guard.waitUntilIntact(onLost)) && exit(EXIT_STATE_RECOVERED));
  });
  let last = '';
  const report = (): void => {
    if (lost !== null) return onLost(lost);
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

main().catch((err: unknown) => exitOnStartError(err, `worker.${process.argv[2] ?? '?'}`));

/**
 * Diagnostics: with CPU_PROFILE_DIR set, the worker records a V8 CPU profile from start to a
 * graceful stop and writes `<dir>/<role>-<pid>.cpuprofile` (open it in Chrome DevTools).
 */
async function startCpuProfile(role: string, dir: string | null): Promise<(() => Promise<void>) | null> {
  if (dir === null) return null;
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
