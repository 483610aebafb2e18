/**
 * `npm run test:deploy`: the image built and the whole system of deploy/compose.yml run in
 * containers, with podman and podman-compose, on this machine (not part of `npm test`; needs root).
 *
 *  1. base images, offline (scripts/deploy-base-images.sh; kept between runs);
 *  2. deploy/Dockerfile built with podman from the host's build (scripts/deploy-prebuilt.sh,
 *     APP_FROM=prebuilt); runs as non-root, holds no TypeScript sources and no dev dependency;
 *  3. the reference: the same bars through a local `npm start` pipeline (dist/, training off,
 *     its own vhost, Redis prefix and data directory);
 *  4. `podman-compose up` of every service but Grafana (no image here), every healthcheck healthy;
 *  5. real bars of 3 symbols POSTed to the gateway container, every result received over /ws, the
 *     tactical container killed (SIGKILL) mid-stream and brought back by its restart policy; the
 *     results equal the reference's apart from latency_ms;
 *  6. Prometheus has every pipeline target up, the tactical container is stopped, and the shipped
 *     rule PipelineTargetDown reaches Alertmanager within its `for` plus two scrape intervals;
 *  7. every pipeline container exits 0 within 30 s of SIGTERM;
 * and everything it created (containers, networks, volumes, vhost, Redis keys) is removed, pass or
 * fail. Prints each step's figure. Exit 0 when every check holds, 1 otherwise.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { Bar } from '../../schemas/bar.schema';
import { readCsvBars } from '../../src/producers/csv-bars';
import { createVhost, interleave, waitFor, type TestVhost } from '../fixtures/broker';
import { freePort, openWs, type WsClient } from '../fixtures/gateway';
import { clearRedis } from '../fixtures/pipeline';
import { ROOT, SUPERVISOR_JS, spawnProcess, type Spawned } from '../fixtures/processes';

const run = promisify(execFile);

const PROJECT = `barpipe-deploytest-${randomUUID().slice(0, 6)}`;
const IMAGE = 'localhost/bar-pipeline:deploy-test';
const NODE_IMAGE = 'localhost/bar-pipeline-node:20';
const COMPOSE_FILE = join(ROOT, 'deploy', 'compose.yml');
const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
const BARS_PER_SYMBOL = Number(process.env.DEPLOY_TEST_BARS ?? 300);
/** Services started here: all but Grafana (no image can be made here, docs/deploy.md). */
const SERVICES = ['rabbitmq', 'redis', 'alertmanager', 'prometheus', 'pipeline-strategic', 'pipeline-tactical', 'pipeline-trainer', 'gateway'];
const PIPELINE_SERVICES = ['pipeline-strategic', 'pipeline-tactical', 'pipeline-trainer', 'gateway'];
/** Scrape and evaluation intervals of the test's copy of prometheus.yml (the rules are the shipped ones). */
const SCRAPE_S = 2;
const EVAL_S = 1;

const figures: [string, string][] = [];
const failures: string[] = [];
const started = Date.now();

function say(text: string): void {
  process.stdout.write(`[test:deploy ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${text}\n`);
}
function figure(name: string, value: string): void {
  figures.push([name, value]);
  say(`FIGURE ${name}: ${value}`);
}
function check(ok: boolean, what: string): void {
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}
function must(ok: boolean, what: string): void {
  check(ok, what);
  if (!ok) throw new Error(what);
}

async function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeout = 600_000): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { env, timeout, maxBuffer: 64 * 1024 * 1024, cwd: ROOT });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** Runs a command with its output on ours (long steps: base images, the build). */
function shown(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

const container = (service: string): string => `${PROJECT}_${service}_1`;

async function inspect(name: string, format: string): Promise<string> {
  return (await sh('podman', ['inspect', name, '--format', format])).trim();
}

/** `podman healthcheck run`: the container's own healthcheck, executed now (no systemd timers here). */
async function healthy(name: string): Promise<boolean> {
  try {
    await run('podman', ['healthcheck', 'run', name], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

async function readBars(): Promise<Bar[]> {
  const markets: Bar[][] = [];
  for (const symbol of SYMBOLS) {
    const bars: Bar[] = [];
    for await (const bar of readCsvBars(join(ROOT, 'data', 'market', '5m', `${symbol}_5m.csv`), { timeframe: '5m' })) {
      bars.push(bar);
      if (bars.length >= BARS_PER_SYMBOL) break;
    }
    markets.push(bars);
  }
  return interleave(markets);
}

/** Results received over /ws, keyed by symbol and ts, without latency_ms. */
class WsResults {
  readonly byKey = new Map<string, string>();
  readonly mismatchedCopies: string[] = [];
  frames = 0;
  private ws: WsClient | null = null;

  async open(url: string, key: string): Promise<void> {
    const ws = openWs(url, { Authorization: `Bearer ${key}` });
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', reject);
      ws.on('unexpected-response', (_req, res) => reject(new Error(`/ws upgrade answered ${res.statusCode}`)));
    });
    ws.on('message', (data) => {
      this.frames++;
      const parsed = JSON.parse(data.toString()) as Record<string, unknown>;
      if (typeof parsed.symbol !== 'string' || typeof parsed.ts !== 'number') return; // not a result (stats)
      delete parsed.latency_ms;
      const k = `${parsed.symbol}|${parsed.ts}`;
      const body = JSON.stringify(parsed);
      const seen = this.byKey.get(k);
      if (seen !== undefined && seen !== body) this.mismatchedCopies.push(k);
      if (seen === undefined) this.byKey.set(k, body);
    });
  }

  close(): void {
    this.ws?.terminate();
  }
}

async function postBars(base: string, key: string, bars: Bar[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${base}/api/bars`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(bars),
    });
    const text = await res.text();
    if (res.status === 202) return;
    // 503: not confirmed by the broker; sending again is safe (the pipeline drops duplicates).
    if (res.status !== 503 || attempt >= 20) throw new Error(`POST /api/bars answered ${res.status}: ${text}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Publishes `bars` in chunks through the gateway at `base`; `between` runs after each chunk. */
async function publish(base: string, key: string, bars: Bar[], between: (published: number) => Promise<void> = () => Promise.resolve()): Promise<void> {
  const chunk = 50;
  for (let i = 0; i < bars.length; i += chunk) {
    await postBars(base, key, bars.slice(i, i + chunk));
    await between(Math.min(bars.length, i + chunk));
  }
}

function gatewayKeys(): { viewer: string; operator: string; lines: string } {
  const viewer = randomBytes(24).toString('hex');
  const operator = randomBytes(24).toString('hex');
  return { viewer, operator, lines: `viewer:${viewer}\noperator:${operator}\n` };
}

// ---------------------------------------------------------------------------------------------

interface Cleanup {
  vhost: TestVhost | null;
  prefix: string | null;
  local: Spawned | null;
  tmp: string | null;
  composeUp: boolean;
  sockets: WsResults[];
}
const cleanup: Cleanup = { vhost: null, prefix: null, local: null, tmp: null, composeUp: false, sockets: [] };

async function teardown(): Promise<void> {
  for (const s of cleanup.sockets) s.close();
  if (cleanup.local !== null && cleanup.local.proc.exitCode === null) {
    cleanup.local.proc.kill('SIGTERM');
    await Promise.race([cleanup.local.exited, new Promise((r) => setTimeout(r, 30_000))]);
    cleanup.local.proc.kill('SIGKILL');
  }
  if (cleanup.prefix !== null) await clearRedis(cleanup.prefix).catch(() => undefined);
  if (cleanup.vhost !== null) await cleanup.vhost.dispose().catch(() => undefined);
  if (cleanup.composeUp) {
    // Everything labelled with this run's project: containers, then networks and volumes.
    const label = `label=io.podman.compose.project=${PROJECT}`;
    const ids = (await sh('podman', ['ps', '-a', '-q', '--filter', label]).catch(() => '')).split('\n').filter(Boolean);
    if (ids.length > 0) await sh('podman', ['rm', '-f', '-t', '0', ...ids]).catch((e: Error) => say(`teardown: ${e.message}`));
    const nets = (await sh('podman', ['network', 'ls', '-q', '--filter', label]).catch(() => '')).split('\n').filter(Boolean);
    if (nets.length > 0) await sh('podman', ['network', 'rm', '-f', ...nets]).catch((e: Error) => say(`teardown: ${e.message}`));
    const vols = (await sh('podman', ['volume', 'ls', '-q', '--filter', label]).catch(() => '')).split('\n').filter(Boolean);
    if (vols.length > 0) await sh('podman', ['volume', 'rm', '-f', ...vols]).catch((e: Error) => say(`teardown: ${e.message}`));
    const left = (await sh('podman', ['ps', '-a', '-q', '--filter', label]).catch(() => '')).trim();
    check(left === '', `teardown removed every container of ${PROJECT}`);
  }
  if (cleanup.tmp !== null) rmSync(cleanup.tmp, { recursive: true, force: true });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('npm run test:deploy needs root (podman as root, debootstrap, apt-get)');
  const tmp = mkdtempSync(join(tmpdir(), 'bar-pipeline-deploy-'));
  cleanup.tmp = tmp;

  // 1. Base images (made once, then kept).
  let t = Date.now();
  say('base images: scripts/deploy-base-images.sh');
  await shown('bash', [join(ROOT, 'scripts', 'deploy-base-images.sh')]);
  figure('base images ready', `${((Date.now() - t) / 1000).toFixed(0)} s`);

  // 2. The image, from the host's build.
  t = Date.now();
  say('host build + production node_modules: scripts/deploy-prebuilt.sh');
  await shown('bash', [join(ROOT, 'scripts', 'deploy-prebuilt.sh')]);
  say(`podman build -f deploy/Dockerfile --build-arg APP_FROM=prebuilt -t ${IMAGE}`);
  const previous = (await sh('podman', ['image', 'inspect', '-f', '{{.Id}}', IMAGE]).catch(() => '')).trim();
  await shown('podman', [
    'build', '--format', 'docker', '--network', 'none', '-q', '-f', 'deploy/Dockerfile',
    '--build-arg', 'APP_FROM=prebuilt', '--build-arg', `NODE_IMAGE=${NODE_IMAGE}`, '--build-arg', `NODE_RUNTIME_IMAGE=${NODE_IMAGE}`,
    '-t', IMAGE, '.',
  ]);
  figure('image build (prebuilt + podman build)', `${((Date.now() - t) / 1000).toFixed(0)} s`);
  // The previous run's image, if this build replaced it (no dangling 900 MB copies piling up).
  if (previous !== '' && previous !== (await inspect(IMAGE, '{{.Id}}'))) await sh('podman', ['rmi', previous]).catch(() => '');
  // And the untagged image of the Dockerfile's prebuilt stage (its 650 MB are in the image now).
  await sh('podman', ['image', 'prune', '-f', '--filter', 'label=org.bar-pipeline.stage=prebuilt']).catch(() => '');
  const size = Number(await inspect(IMAGE, '{{.Size}}'));
  figure('image size', `${(size / 1e6).toFixed(0)} MB (${IMAGE}, on the ${NODE_IMAGE} base of ${(Number(await inspect(NODE_IMAGE, '{{.Size}}')) / 1e6).toFixed(0)} MB)`);
  check((await inspect(IMAGE, '{{.Config.User}}')) === 'node', 'the image runs as user node');
  const uid = (await sh('podman', ['run', '--rm', '--network', 'none', '--entrypoint', 'id', IMAGE, '-u'])).trim();
  check(uid !== '0' && uid !== '', `the image's process is not root (uid ${uid})`);
  const tsFiles = (await sh('podman', ['run', '--rm', '--network', 'none', '--entrypoint', 'sh', IMAGE, '-c', "find /app -path /app/node_modules -prune -o -name '*.ts' ! -name '*.d.ts' -print; ls -d /app/src /app/test 2>/dev/null; true"])).trim();
  check(tsFiles === '', `no TypeScript sources in the image${tsFiles === '' ? '' : `: ${tsFiles.split('\n').slice(0, 5).join(' ')}`}`);
  // Dev-only packages: those package-lock.json marks `dev` (a dev dependency that a production
  // package also needs, @types/node say, is a production package and belongs in the image).
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const devNames = Object.entries(lock.packages)
    .filter(([path, p]) => p.dev === true && /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path))
    .map(([path]) => path.slice('node_modules/'.length));
  const present = (await sh('podman', ['run', '--rm', '--network', 'none', '--entrypoint', 'sh', IMAGE, '-c', `cd /app/node_modules && for d in ${devNames.join(' ')}; do [ -e "$d" ] && echo "$d"; done; true`])).trim();
  check(present === '', `no dev-only package in the image (checked the ${devNames.length} that package-lock.json marks dev: ${devNames.filter((n) => ['typescript', 'jest', 'eslint'].includes(n)).join(', ')}, ...)${present === '' ? '' : `; found ${present.replace(/\n/g, ' ')}`}`);

  // 3. The reference: the same bars through a local pipeline (npm start from dist/).
  const bars = await readBars();
  say(`bars: ${bars.length} (${SYMBOLS.join(', ')}, ${BARS_PER_SYMBOL} each, data/market/5m)`);
  const keys = gatewayKeys();
  t = Date.now();
  cleanup.vhost = await createVhost('deploy');
  cleanup.prefix = `deploytest:${randomUUID().slice(0, 8)}:`;
  const localGatewayPort = await freePort();
  const localHealthPort = await freePort();
  cleanup.local = spawnProcess('node', [SUPERVISOR_JS], {
    ...process.env,
    AMQP_URL: cleanup.vhost.url,
    REDIS_URL: 'redis://127.0.0.1:6379',
    PIPELINE_REDIS_PREFIX: cleanup.prefix,
    PIPELINE_DATA_DIR: join(tmp, 'local-data'),
    PIPELINE_TRAINING: 'off',
    HEALTH_PORT: String(localHealthPort),
    GATEWAY_PORT: String(localGatewayPort),
    GATEWAY_API_KEYS: `viewer:${keys.viewer},operator:${keys.operator}`,
    LOG_LEVEL: 'warn',
  });
  const local = cleanup.local;
  await waitFor(async () => {
    if (local.proc.exitCode !== null) throw new Error(`the local pipeline exited ${local.proc.exitCode}: ${local.stderr()}`);
    return (await fetch(`http://127.0.0.1:${localHealthPort}/health`).catch(() => null))?.status === 200;
  }, 120_000, 'the local pipeline healthy');
  const reference = new WsResults();
  cleanup.sockets.push(reference);
  await reference.open(`ws://127.0.0.1:${localGatewayPort}/ws?symbols=${SYMBOLS.join(',')}`, keys.viewer);
  await publish(`http://127.0.0.1:${localGatewayPort}`, keys.operator, bars);
  await waitFor(() => reference.byKey.size >= bars.length, 300_000, `${bars.length} reference results`).catch((err: Error) => {
    throw new Error(`${err.message} (got ${reference.byKey.size})`);
  });
  reference.close();
  figure('reference run (local npm start)', `${reference.byKey.size} results in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  local.proc.kill('SIGTERM');
  const localExit = await local.exited;
  check(localExit.code === 0, `the local pipeline exited ${localExit.code} on SIGTERM`);
  cleanup.local = null;

  // 4. The whole system in containers.
  const secrets = join(tmp, 'secrets');
  mkdirSync(secrets);
  writeFileSync(join(secrets, 'gateway_api_keys'), keys.lines);
  for (const name of ['smtp_password', 'slack_webhook_url', 'pagerduty_routing_key', 'grafana_admin_password']) {
    writeFileSync(join(secrets, name), name === 'slack_webhook_url' ? 'https://hooks.slack.invalid/test\n' : 'not-a-real-secret\n');
  }
  // Prometheus: the shipped rules unchanged, the shipped config with shorter intervals.
  const promDir = join(tmp, 'prometheus');
  mkdirSync(join(promDir, 'rules'), { recursive: true });
  for (const f of readdirSync(join(ROOT, 'deploy', 'prometheus', 'rules'))) copyFileSync(join(ROOT, 'deploy', 'prometheus', 'rules', f), join(promDir, 'rules', f));
  const promConfig = parseYaml(readFileSync(join(ROOT, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8')) as { global: Record<string, unknown> };
  promConfig.global.scrape_interval = `${SCRAPE_S}s`;
  promConfig.global.evaluation_interval = `${EVAL_S}s`;
  writeFileSync(join(promDir, 'prometheus.yml'), stringifyYaml(promConfig));
  const ports = { gateway: await freePort(), prometheus: await freePort(), alertmanager: await freePort(), rabbitmq: await freePort(), management: await freePort(), grafana: await freePort() };
  // A password that only works percent-encoded in a URL.
  const password = `p@ss/w#rd:%${randomBytes(4).toString('hex')}`;
  const composeEnv: NodeJS.ProcessEnv = {
    ...process.env,
    RABBITMQ_PIPELINE_PASSWORD: password,
    PIPELINE_IMAGE: IMAGE,
    RABBITMQ_IMAGE: 'localhost/bar-pipeline-rabbitmq:deb',
    REDIS_IMAGE: 'localhost/bar-pipeline-redis:deb',
    PROMETHEUS_IMAGE: 'localhost/bar-pipeline-prometheus:deb',
    ALERTMANAGER_IMAGE: 'localhost/bar-pipeline-alertmanager:deb',
    PIPELINE_SECRETS_DIR: secrets,
    PROMETHEUS_CONFIG_DIR: promDir,
    GATEWAY_HOST_PORT: String(ports.gateway),
    PROMETHEUS_HOST_PORT: String(ports.prometheus),
    ALERTMANAGER_HOST_PORT: String(ports.alertmanager),
    RABBITMQ_HOST_PORT: String(ports.rabbitmq),
    RABBITMQ_MANAGEMENT_HOST_PORT: String(ports.management),
    GRAFANA_HOST_PORT: String(ports.grafana),
  };
  const compose = (args: string[]): Promise<string> => sh('podman-compose', ['-p', PROJECT, '-f', COMPOSE_FILE, ...args], composeEnv);
  t = Date.now();
  say(`podman-compose -p ${PROJECT} up -d (${SERVICES.join(' ')}; not grafana)`);
  cleanup.composeUp = true;
  // RabbitMQ and Redis first (podman-compose 1.0 ignores depends_on conditions), then the rest.
  await compose(['up', '-d', '--no-build', 'rabbitmq', 'redis']);
  await waitFor(async () => (await healthy(container('rabbitmq'))) && (await healthy(container('redis'))), 300_000, 'rabbitmq and redis healthy');
  await compose(['up', '-d', '--no-build', ...SERVICES]);
  const withHealthcheck = ['rabbitmq', 'redis', ...PIPELINE_SERVICES];
  await waitFor(async () => {
    for (const s of withHealthcheck) if (!(await healthy(container(s)))) return false;
    return true;
  }, 300_000, `every healthcheck healthy (${withHealthcheck.join(', ')})`).catch(async (err: Error) => {
    for (const s of PIPELINE_SERVICES) say(`${s} log:\n${(await sh('podman', ['logs', '--tail', '20', container(s)]).catch((e: Error) => e.message))}`);
    throw err;
  });
  figure('time to healthy (compose up to every healthcheck passing)', `${((Date.now() - t) / 1000).toFixed(0)} s`);
  for (const s of ['prometheus', 'alertmanager']) check((await inspect(container(s), '{{.State.Status}}')) === 'running', `${s} running`);
  const published = (await sh('podman', ['port', container('gateway')])).trim();
  check(/^8080\/tcp -> 127\.0\.0\.1:\d+$/.test(published), `the gateway is published on 127.0.0.1 only (${published})`);

  // 5. Bars through the gateway container; the tactical container killed mid-stream.
  t = Date.now();
  const gatewayBase = `http://127.0.0.1:${ports.gateway}`;
  const live = new WsResults();
  cleanup.sockets.push(live);
  await live.open(`ws://127.0.0.1:${ports.gateway}/ws?symbols=${SYMBOLS.join(',')}`, keys.viewer);
  let killedAt = -1;
  let killedSent = -1;
  const tactical = container('pipeline-tactical');
  await publish(gatewayBase, keys.operator, bars, async (sent) => {
    // Right after the POST that passes half the bars: those bars are in flight.
    if (killedAt >= 0 || sent < bars.length / 2) return;
    // What a crash or the OOM killer does: SIGKILL to the container's main process. (`podman
    // kill` marks the container as stopped by the user, and podman then never restarts it.)
    const pid = await inspect(tactical, '{{.State.Pid}}');
    killedAt = live.byKey.size;
    await sh('kill', ['-KILL', pid]);
    say(`SIGKILL to the tactical container's node (pid ${pid}): ${sent} of ${bars.length} bars published, ${killedAt} results received`);
    killedSent = sent;
  });
  await waitFor(async () => Number(await inspect(tactical, '{{.RestartCount}}')) >= 1 && (await inspect(tactical, '{{.State.Status}}')) === 'running', 120_000, 'the tactical container restarted by its restart policy');
  check(true, `the restart policy brought the tactical container back (restarts: ${await inspect(tactical, '{{.RestartCount}}')})`);
  await waitFor(() => live.byKey.size >= bars.length, 300_000, `${bars.length} results over /ws`).catch((err: Error) => {
    failures.push(`${err.message} (got ${live.byKey.size})`);
  });
  await waitFor(() => healthy(tactical), 120_000, 'the restarted tactical container healthy');
  figure('bars through the containers (kill and restart included)', `${live.byKey.size} results in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  const missing = [...reference.byKey.keys()].filter((k) => !live.byKey.has(k));
  const differing = [...reference.byKey.keys()].filter((k) => live.byKey.has(k) && live.byKey.get(k) !== reference.byKey.get(k));
  check(killedSent > 0 && killedSent < bars.length, `the kill happened mid-stream (${killedSent} of ${bars.length} bars published, ${killedAt} results received)`);
  check(missing.length === 0, `no result missing (${missing.length} missing${missing.length > 0 ? `, first ${missing[0]}` : ''})`);
  check(differing.length === 0, `every result equals the local pipeline's apart from latency_ms (${differing.length} differ${differing.length > 0 ? `, first ${differing[0]}:\n  local ${reference.byKey.get(differing[0]!)}\n  image ${live.byKey.get(differing[0]!)}` : ''})`);
  check(live.mismatchedCopies.length === 0, `no two copies of a result differ (${live.mismatchedCopies.length})`);
  check(live.byKey.size === reference.byKey.size, `as many results as the reference (${live.byKey.size} vs ${reference.byKey.size})`);
  live.close();

  // 6. Prometheus and Alertmanager.
  const prom = `http://127.0.0.1:${ports.prometheus}`;
  const am = `http://127.0.0.1:${ports.alertmanager}`;
  type Sample = { metric: Record<string, string>; value: [number, string] };
  const up = async (): Promise<Sample[]> => {
    const res = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent('up{job="pipeline"}')}`).catch(() => null);
    if (res === null || res.status !== 200) return [];
    return ((await res.json()) as { data: { result: Sample[] } }).data.result;
  };
  await waitFor(async () => {
    const samples = await up();
    return samples.length === PIPELINE_SERVICES.length && samples.every((s) => s.value[1] === '1');
  }, 120_000, 'up{job="pipeline"} == 1 for every pipeline target').catch((err: Error) => failures.push(err.message));
  check(true, `Prometheus scrapes every pipeline target: ${(await up()).map((s) => `${s.metric.instance}=${s.value[1]}`).join(', ')}`);
  const rules = parseYaml(readFileSync(join(ROOT, 'deploy', 'prometheus', 'rules', 'pipeline.rules.yml'), 'utf8')) as { groups: { rules: { alert?: string; for?: string }[] }[] };
  const rule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === 'PipelineTargetDown');
  must(rule?.for !== undefined, 'the shipped rules have PipelineTargetDown with a `for`');
  const forS = durationSeconds(rule!.for!);
  t = Date.now();
  await sh('podman', ['stop', '-t', '30', tactical]);
  const tacticalDrainS = (Date.now() - t) / 1000;
  const tacticalExit = await inspect(tactical, '{{.State.ExitCode}}');
  t = Date.now();
  const boundS = forS + 2 * SCRAPE_S;
  let alertAfterS = -1;
  await waitFor(async () => {
    const res = await fetch(`${am}/api/v2/alerts?filter=${encodeURIComponent('alertname="PipelineTargetDown"')}`).catch(() => null);
    if (res === null || res.status !== 200) return false;
    const alerts = (await res.json()) as { labels: Record<string, string> }[];
    if (!alerts.some((a) => a.labels.instance === 'pipeline-tactical:9464')) return false;
    alertAfterS = (Date.now() - t) / 1000;
    return true;
  }, (boundS + 120) * 1000, 'PipelineTargetDown for pipeline-tactical:9464 in Alertmanager').catch((err: Error) => failures.push(err.message));
  figure('time to the alert (tactical stopped -> PipelineTargetDown listed by Alertmanager)', `${alertAfterS.toFixed(1)} s (rule for: ${forS} s, scrape interval ${SCRAPE_S} s, bound ${boundS} s)`);
  check(alertAfterS >= 0 && alertAfterS <= boundS, `the alert reached Alertmanager within for + two scrape intervals (${alertAfterS.toFixed(1)} s <= ${boundS} s)`);

  // 7. Drain: SIGTERM (podman stop, SIGKILL only after 30 s) to every pipeline container.
  const drains: string[] = [`pipeline-tactical ${tacticalDrainS.toFixed(1)} s exit ${tacticalExit}`];
  check(tacticalExit === '0' && tacticalDrainS < 30, `pipeline-tactical exited ${tacticalExit} ${tacticalDrainS.toFixed(1)} s after SIGTERM`);
  for (const s of PIPELINE_SERVICES.filter((x) => x !== 'pipeline-tactical')) {
    t = Date.now();
    await sh('podman', ['stop', '-t', '30', container(s)]);
    const secs = (Date.now() - t) / 1000;
    const code = await inspect(container(s), '{{.State.ExitCode}}');
    drains.push(`${s} ${secs.toFixed(1)} s exit ${code}`);
    check(code === '0' && secs < 30, `${s} exited ${code} ${secs.toFixed(1)} s after SIGTERM`);
  }
  figure('time to drain (SIGTERM -> exit, each pipeline container)', drains.join('; '));
}

function durationSeconds(text: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text.trim());
  if (m === null) throw new Error(`cannot read the duration ${text}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 's' ? n : m[2] === 'm' ? n * 60 : n * 3600;
}

let ending = false;
async function finish(err: unknown): Promise<never> {
  if (ending) process.exit(1);
  ending = true;
  if (err !== null) {
    const e = err instanceof Error ? err : new Error(JSON.stringify(err));
    failures.push(e.message);
    say(`ERROR ${e.stack ?? e.message}`);
  }
  say('teardown');
  await teardown().catch((e: Error) => say(`teardown failed: ${e.message}`));
  say(`figures:\n${figures.map(([k, v]) => `  ${k}: ${v}`).join('\n')}`);
  say(`total ${((Date.now() - started) / 1000).toFixed(0)} s; ${failures.length === 0 ? 'PASS' : `FAIL (${failures.length}):\n  ${failures.join('\n  ')}`}`);
  process.exit(failures.length === 0 ? 0 : 1);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void finish(new Error(`interrupted (${signal})`)));
main().then(() => finish(null), (err: unknown) => finish(err));
