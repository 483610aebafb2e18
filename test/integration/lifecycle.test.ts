/**
 * The real entry points as an operator runs them (`npm start`, `node dist/...`, `bin/pipeline.js`),
 * compiled, as child processes, against the local RabbitMQ and Redis, each pipeline in a vhost of its
 * own: one SIGTERM stops everything with exit 0; workers do not outlive their supervisor; what cannot
 * work as configured stops at once with exit 2 and one line naming the setting.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { QUEUE_RESULTS } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { clearRedis } from '../fixtures/pipeline';
import {
  createVhost,
  publishBars,
  QueueCollector,
  waitFor,
  type TestVhost,
} from '../fixtures/broker';
import {
  CLI_BIN,
  descendants,
  ensureBuilt,
  freePort,
  isRunning,
  lines,
  ROOT,
  spawnProcess,
  SUPERVISOR_JS,
  WORKER_JS,
  type Spawned,
} from '../fixtures/processes';

jest.setTimeout(120_000);

let vhost: TestVhost;
const prefix = `test:lifecycle:${randomUUID().slice(0, 8)}:`;
const running: Spawned[] = [];
const servers: Server[] = [];

/** The environment of a pipeline process: the test's vhost, prefix and data dir, a free health port. */
function pipelineEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Whatever the developer's shell sets for the pipeline must not leak in.
  for (const key of Object.keys(env))
    if (/^(AMQP|REDIS|PIPELINE|HEALTH|GATEWAY)_/.test(key)) delete env[key];
  return {
    ...env,
    AMQP_URL: vhost.url,
    REDIS_URL: 'redis://127.0.0.1:6379',
    PIPELINE_REDIS_PREFIX: prefix,
    PIPELINE_TRAINING: 'off',
    PIPELINE_DATA_DIR: `/tmp/pipeline-test-data/${prefix.replace(/:/g, '_')}`,
    PIPELINE_CLOSE_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'info',
    GATEWAY_PORT: '0', // the gateway role runs too (PIPELINE_ROLES defaults to all)
    ...overrides,
  };
}

function start(command: string, args: string[], env: NodeJS.ProcessEnv): Spawned {
  const spawned = spawnProcess(command, args, env);
  running.push(spawned);
  return spawned;
}

async function waitHealthy(port: number, process: Spawned): Promise<Record<string, unknown>> {
  let body: Record<string, unknown> = {};
  await waitFor(
    async () => {
      if (process.proc.exitCode !== null)
        throw new Error(`exited ${process.proc.exitCode}: ${process.stderr()}`);
      const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null);
      if (res === null) return false;
      body = (await res.json()) as Record<string, unknown>;
      return res.status === 200;
    },
    90_000,
    'pipeline healthy',
  );
  return body;
}

function workerPids(health: Record<string, unknown>): number[] {
  return Object.values(health.workers as Record<string, { pid: number }>).map((w) => w.pid);
}

beforeAll(async () => {
  ensureBuilt();
  vhost = await createVhost('lifecycle');
});

afterEach(async () => {
  for (const s of running.splice(0)) {
    for (const pid of [...descendants(s.pid), s.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const server of servers.splice(0)) await new Promise((r) => server.close(r));
});

afterAll(async () => {
  await clearRedis(prefix);
  await vhost?.dispose();
});

describe('production entry', () => {
  it('npm start: one SIGTERM to the npm process drains the supervisor and every worker, exits 0 and leaves no process', async () => {
    const port = await freePort();
    const npm = start('npm', ['start'], pipelineEnv({ HEALTH_PORT: String(port) }));
    const health = await waitHealthy(port, npm);
    const tree = descendants(npm.pid);
    // npm runs node directly (exec, no sh or tsx in between), and the workers run compiled JS.
    const commands = tree.map((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '),
    );
    expect(commands.some((c) => c.includes('dist/src/supervisor/main.js'))).toBe(true);
    // PIPELINE_TRAINING=off and one shard: one strategic, one tactical and the gateway worker.
    expect(commands.filter((c) => c.includes('dist/src/supervisor/worker-main.js'))).toHaveLength(
      3,
    );
    expect(commands.some((c) => /\btsx\b|^sh /.test(c))).toBe(false);
    for (const pid of workerPids(health)) expect(tree).toContain(pid);

    // It works: bars in, results out, from the compiled code.
    const results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    await results.start();
    try {
      const bars = generateSyntheticMarket({ seed: 7, symbol: 'LIFE', bars: 20 }).bars;
      await publishBars(vhost.url, bars);
      await waitFor(
        () => results.messages.length >= bars.length,
        60_000,
        'results of the compiled pipeline',
      );
    } finally {
      await results.stop();
    }

    process.kill(npm.pid, 'SIGTERM');
    const { code, afterMs } = await npm.exited;
    expect(code).toBe(0);
    await waitFor(() => tree.every((pid) => !isRunning(pid)), 10_000, 'no pipeline process left');
    const stopped = lines(npm.stdout()).filter((l) => l.includes('"msg":"worker stopped"'));
    expect(stopped).toHaveLength(3); // each worker (strategic, tactical, gateway) drained (graceful stop), none was killed
    expect(afterMs).toBeGreaterThan(0);
  });

  it('a worker whose supervisor is SIGKILLed exits within about a second', async () => {
    const port = await freePort();
    const supervisor = start('node', [SUPERVISOR_JS], pipelineEnv({ HEALTH_PORT: String(port) }));
    const pids = workerPids(await waitHealthy(port, supervisor));
    expect(pids).toHaveLength(3); // strategic, tactical, gateway
    process.kill(supervisor.pid, 'SIGKILL');
    const killedAt = Date.now();
    await waitFor(() => pids.every((pid) => !isRunning(pid)), 5_000, 'orphaned workers to exit');
    expect(Date.now() - killedAt).toBeLessThan(1_500);
  });

  it('the Dockerfile runs the compiled supervisor with node, as a non-root user, with a health check', () => {
    const dockerfile = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
    const cmd = /^CMD\s+(\[.*\])\s*$/m.exec(dockerfile);
    expect(cmd).not.toBeNull();
    const argv = JSON.parse(cmd![1]!) as string[];
    expect(argv[0]).toBe('node');
    expect(existsSync(join(ROOT, argv[1]!))).toBe(true);
    expect(join(ROOT, argv[1]!)).toBe(SUPERVISOR_JS);
    expect(dockerfile).toMatch(/^USER\s+(?!root\b)\S+/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK[\s\S]*\/health/m);
    // Every file the build context must provide exists and is not excluded by .dockerignore.
    const ignored = lines(readFileSync(join(ROOT, '.dockerignore'), 'utf8'))
      .map((l) => l.trim())
      .filter((l) => !l.startsWith('#'));
    const copied = [...dockerfile.matchAll(/^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+\s*$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(copied).toEqual(expect.arrayContaining(['package-lock.json', 'src', 'schemas', 'tsconfig.build.json']));
    for (const path of copied) {
      // The prebuilt stage copies what scripts/deploy-prebuilt.sh makes on the build host (ignored by git).
      const provided = path.startsWith('deploy/.prebuilt/') ? join('scripts', 'deploy-prebuilt.sh') : path;
      expect(existsSync(join(ROOT, provided))).toBe(true);
      expect(ignored).not.toContain(path);
    }
  });
});

describe('fail fast: exit 2 with one line naming the setting', () => {
  /** Runs an entry point that must fail; returns its one stderr line. */
  async function failsWith(spawned: Spawned): Promise<string> {
    const { code, afterMs } = await spawned.exited;
    const errLines = lines(spawned.stderr());
    expect({ code, errLines }).toEqual({ code: 2, errLines: [expect.any(String)] });
    expect(afterMs).toBeLessThan(10_000);
    expect(errLines[0]).not.toMatch(/^\{|\n\s+at /); // a sentence, not JSON or a stack trace
    return errLines[0]!;
  }

  const supervisor = (overrides: Record<string, string>): Spawned =>
    start('node', [SUPERVISOR_JS], pipelineEnv({ HEALTH_PORT: '0', ...overrides }));

  it('stops on an unknown vhost at once instead of reconnecting', async () => {
    const line = await failsWith(
      supervisor({ AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/no-such-vhost-lifecycle' }),
    );
    expect(line).toMatch(/^AMQP_URL: .*vhost "no-such-vhost-lifecycle".*rabbitmqctl add_vhost/);
  });

  it('stops on refused credentials', async () => {
    const url = vhost.url.replace('guest:guest@', 'guest:wrong-password@');
    const line = await failsWith(supervisor({ AMQP_URL: url }));
    expect(line).toMatch(/^AMQP_URL: .*refused the login of user guest/);
    expect(line).not.toContain('wrong-password');
  });

  it('stops on a malformed AMQP_URL or REDIS_URL', async () => {
    expect(await failsWith(supervisor({ AMQP_URL: 'amqp//127.0.0.1' }))).toMatch(
      /AMQP_URL.*amqp:\/\/user:password@host:5672\/vhost/,
    );
    expect(await failsWith(supervisor({ REDIS_URL: 'redis://127.0.0.1:6379/first' }))).toMatch(
      /^REDIS_URL: not a valid Redis URL/,
    );
  });

  it('stops when Redis is unreachable', async () => {
    const port = await freePort();
    const line = await failsWith(
      supervisor({ REDIS_URL: `redis://127.0.0.1:${port}`, PIPELINE_STARTUP_WAIT_MS: '500' }),
    );
    expect(line).toMatch(
      new RegExp(`^REDIS_URL: nothing accepts connections at redis 127.0.0.1:${port}`),
    );
  });

  it('stops on a misspelt setting, naming the one meant', async () => {
    const line = await failsWith(supervisor({ AMPQ_URL: vhost.url }));
    expect(line).toMatch(/AMPQ_URL is not a setting; did you mean AMQP_URL\?/);
  });

  it('stops when the health port is taken, without a stack trace', async () => {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as { port: number }).port;
    const spawned = supervisor({ HEALTH_PORT: String(port) });
    const line = await failsWith(spawned);
    expect(line).toMatch(new RegExp(`^HEALTH_PORT: port ${port} on 127.0.0.1 is already in use`));
  });

  it('stops the whole pipeline with exit 2, without restarts, when a worker meets a broker error no restart fixes', async () => {
    // Queues declared classic by an earlier configuration; the pipeline now declares quorum queues:
    // PRECONDITION_FAILED in every worker, after the supervisor's own checks passed.
    const own = await createVhost('lifecycle-precondition');
    try {
      const declare = start(
        'node',
        [CLI_BIN, 'publish', '--synthetic', '--symbols', 'AAA', '--count', '1'],
        pipelineEnv({ AMQP_URL: own.url, PIPELINE_QUEUE_TYPE: 'classic' }),
      );
      expect((await declare.exited).code).toBe(0);
      const spawned = supervisor({ AMQP_URL: own.url });
      const { code, afterMs } = await spawned.exited;
      expect(code).toBe(2);
      expect(afterMs).toBeLessThan(30_000);
      const errLines = lines(spawned.stderr());
      expect(errLines.length).toBeGreaterThanOrEqual(1);
      for (const line of errLines)
        expect(line).toMatch(/^PIPELINE_QUEUE_TYPE: a queue exists with other arguments/);
      expect(spawned.stdout()).not.toContain('"msg":"worker exited; restarting"');
    } finally {
      await own.dispose();
    }
  });

  it('stops a worker started on its own on an unknown vhost', async () => {
    const spawned = start(
      'node',
      [WORKER_JS, 'tactical'],
      pipelineEnv({ AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/no-such-vhost-lifecycle' }),
    );
    expect(await failsWith(spawned)).toMatch(/^AMQP_URL: .*vhost "no-such-vhost-lifecycle"/);
  });
});

describe('pipeline CLI', () => {
  const cli = (args: string[], overrides: Record<string, string>): Spawned =>
    start('node', [CLI_BIN, ...args], pipelineEnv(overrides));

  it('says which broker and vhost it uses, and stops with exit 2 on an unknown vhost', async () => {
    const spawned = cli(['dlq', 'list'], {
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672/no-such-vhost-lifecycle',
    });
    const { code } = await spawned.exited;
    expect(code).toBe(2);
    const errLines = lines(spawned.stderr());
    expect(errLines).toEqual([
      'pipeline dlq: broker 127.0.0.1:5672, vhost "no-such-vhost-lifecycle", user guest',
      expect.stringMatching(/^AMQP_URL: .*vhost "no-such-vhost-lifecycle"/),
    ]);
    expect(spawned.stderr()).not.toContain('guest:guest'); // never the password
  });

  it('stops with exit 2 on a misspelt AMPQ_URL instead of publishing into vhost "/"', async () => {
    const spawned = cli(['publish', '--synthetic', '--symbols', 'AAA', '--count', '2'], {
      AMPQ_URL: vhost.url,
      AMQP_URL: '',
    });
    const { code } = await spawned.exited;
    expect(code).toBe(2);
    expect(lines(spawned.stderr())).toEqual([
      expect.stringMatching(/AMPQ_URL is not a setting; did you mean AMQP_URL\?/),
    ]);
  });

  it('never prints the password, even of a refused login', async () => {
    const spawned = cli(['results', '--count', '1'], {
      AMQP_URL: vhost.url.replace('guest:guest@', 'guest:s3cret-pw@'),
    });
    expect((await spawned.exited).code).toBe(2);
    expect(spawned.stderr()).toMatch(/refused the login of user guest/);
    expect(spawned.stderr() + spawned.stdout()).not.toContain('s3cret-pw');
  });

  it('publish warns when no worker consumes the bars it publishes', async () => {
    const own = await createVhost('lifecycle-cli');
    try {
      const spawned = cli(
        ['publish', '--synthetic', '--symbols', 'AAA', '--count', '2', '--json'],
        { AMQP_URL: own.url },
      );
      const { code } = await spawned.exited;
      expect(code).toBe(0);
      expect(spawned.stderr()).toContain(
        `pipeline publish: broker 127.0.0.1:5672, vhost "${own.name}", user guest`,
      );
      expect(spawned.stderr()).toMatch(
        /warning: no pipeline worker consumes these bars .*tactical_processing\.0: 0 consumers/,
      );
      expect((JSON.parse(spawned.stdout()) as { confirmed: number }).confirmed).toBe(2);
    } finally {
      await own.dispose();
    }
  });
});
