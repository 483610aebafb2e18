/**
 * The pods of deploy/k8s, started the way a kubelet would start them, on this machine: for every
 * workload that `kubectl kustomize deploy/k8s` renders, the container's command (the image's CMD,
 * `node dist/src/supervisor/main.js`, from the host's build) with the container's environment
 * (ConfigMap via envFrom, env, Secret keys) plus the Docker-link variables a kubelet injects for
 * every Service of the render (GATEWAY_PORT=tcp://…, PIPELINE_STRATEGIC_0_SERVICE_HOST, …), against
 * the local RabbitMQ (own vhost) and Redis (own prefix). Each answers /health 200, names the link
 * variables in one warning, and consumes exactly its own queues (rabbitmqctl list_consumers).
 *
 * What differs from a cluster, because six pods share one host here: HEALTH_PORT and the gateway's
 * GATEWAY_PORT are free ports, HEALTH_HOST is 127.0.0.1, PIPELINE_DATA_DIR and the API-key file are
 * temporary paths. Everything else is the rendered manifests' own.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { QUEUE_EXPERIENCE, shardQueue } from '../../src/broker/topology';
import { waitFor } from '../fixtures/broker';
import { clearRedis } from '../fixtures/pipeline';
import { ensureBuilt, freePort, ROOT, spawnProcess, type Spawned } from '../fixtures/processes';

jest.setTimeout(600_000);

const run = promisify(execFile);

/**
 * The broker: the local RabbitMQ (127.0.0.1:5672, guest, `rabbitmqctl`) as every integration test
 * uses it, with the plugin rabbitmq_consistent_hash_exchange (.ci/run enables it; the manifests run
 * two shards). K8S_TEST_RABBITMQCTL, K8S_TEST_AMQP_HOST and K8S_TEST_AMQP_USER (user:password) point
 * it at another broker, e.g. a container: `podman exec NAME rabbitmqctl`, 127.0.0.1:PORT.
 */
const RABBITMQCTL = (process.env.K8S_TEST_RABBITMQCTL ?? 'rabbitmqctl').split(' ');
const AMQP_HOST = process.env.K8S_TEST_AMQP_HOST ?? '127.0.0.1:5672';
const AMQP_USER = process.env.K8S_TEST_AMQP_USER ?? 'guest:guest';

function rabbitmqctl(args: string[]): Promise<{ stdout: string }> {
  return run(RABBITMQCTL[0]!, [...RABBITMQCTL.slice(1), ...args]);
}

/** A private vhost on the broker, deleted by `dispose`. */
async function createVhost(label: string): Promise<{ name: string; url: string; dispose(): Promise<void> }> {
  const name = `test-${label}-${randomUUID().slice(0, 8)}`;
  await rabbitmqctl(['add_vhost', name]);
  await rabbitmqctl(['set_permissions', '-p', name, AMQP_USER.split(':')[0]!, '.*', '.*', '.*']);
  return {
    name,
    url: `amqp://${AMQP_USER}@${AMQP_HOST}/${encodeURIComponent(name)}`,
    dispose: async () => {
      await rabbitmqctl(['delete_vhost', name]).catch(() => undefined);
    },
  };
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
}
interface Obj {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: {
    clusterIP?: string;
    ports?: { name?: string; port: number; protocol?: string }[];
    template?: { spec: { enableServiceLinks?: boolean; containers: Container[] } };
  };
}

/** `kubectl kustomize deploy/k8s`, with stand-in files for the Secret the kustomization generates. */
function render(dir: string): Obj[] {
  cpSync(join(ROOT, 'deploy', 'k8s'), join(dir, 'k8s'), { recursive: true });
  mkdirSync(join(dir, 'k8s', 'secrets'), { recursive: true });
  for (const f of ['amqp_url', 'redis_url', 'gateway_api_keys']) writeFileSync(join(dir, 'k8s', 'secrets', f), 'stand-in\n');
  const r = spawnSync('kubectl', ['kustomize', join(dir, 'k8s')], { encoding: 'utf8' });
  if (r.error !== undefined) throw new Error('kubectl is not installed: apt-get install -y kubectl');
  if (r.status !== 0) throw new Error(`kubectl kustomize failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
}

/** What a kubelet injects for one Service (name upper-cased, `-` → `_`), with a made-up cluster IP. */
function linkVariables(service: Obj, ip: string): Record<string, string> {
  const n = service.metadata.name.toUpperCase().replace(/-/g, '_');
  const out: Record<string, string> = {};
  const ports = service.spec?.ports ?? [];
  ports.forEach((p, i) => {
    const proto = (p.protocol ?? 'TCP').toUpperCase();
    if (i === 0) {
      out[`${n}_SERVICE_HOST`] = ip;
      out[`${n}_SERVICE_PORT`] = String(p.port);
      out[`${n}_PORT`] = `${proto.toLowerCase()}://${ip}:${p.port}`;
    }
    if (p.name !== undefined) out[`${n}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.port);
    const base = `${n}_PORT_${p.port}_${proto}`;
    out[base] = `${proto.toLowerCase()}://${ip}:${p.port}`;
    out[`${base}_PROTO`] = proto.toLowerCase();
    out[`${base}_PORT`] = String(p.port);
    out[`${base}_ADDR`] = ip;
  });
  return out;
}

/** The image's CMD (deploy/Dockerfile's last CMD): what a container without `command` runs. */
function imageCmd(): string[] {
  const cmds = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('CMD ['));
  return JSON.parse(cmds[cmds.length - 1]!.slice(4)) as string[];
}

/** Consumers of the vhost as (queue, channel) pairs. */
async function consumers(vhost: string): Promise<Set<string>> {
  const { stdout } = await rabbitmqctl(['list_consumers', '-p', vhost, '--formatter', 'json', 'queue_name', 'channel_pid']);
  const rows = JSON.parse(stdout) as { queue_name: string; channel_pid: string }[];
  return new Set(rows.map((r) => `${r.queue_name}\t${r.channel_pid}`));
}

interface Pod {
  workload: string;
  proc: Spawned;
  healthPort: number;
  queues: string[];
}

describe('deploy/k8s pods under kubelet service-link variables', () => {
  let vhost: Awaited<ReturnType<typeof createVhost>> | null = null;
  const prefix = `test:k8s:${randomUUID().slice(0, 8)}:`;
  const dir = mkdtempSync(join(tmpdir(), 'k8s-pods-'));
  const pods: Pod[] = [];

  beforeAll(() => ensureBuilt());

  afterAll(async () => {
    await Promise.all(
      pods.map(async (p) => {
        if (p.proc.proc.exitCode === null) {
          p.proc.proc.kill('SIGTERM');
          const killer = setTimeout(() => p.proc.proc.kill('SIGKILL'), 30_000);
          await p.proc.exited;
          clearTimeout(killer);
        }
      }),
    );
    await clearRedis(prefix);
    await vhost?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every workload starts, answers /health 200 and consumes exactly its own shard\'s queues', async () => {
    const objs = render(dir);
    const services = objs.filter((o) => o.kind === 'Service');
    const configMaps = new Map(objs.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data ?? {}]));
    const workloads = objs.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual(
      ['gateway', 'pipeline-strategic-0', 'pipeline-strategic-1', 'pipeline-tactical-0', 'pipeline-tactical-1', 'pipeline-trainer'],
    );
    // Every Service gets link variables, headless ones too (a kubelet skips those: this is stricter).
    const links: Record<string, string> = {};
    services.forEach((s, i) => Object.assign(links, linkVariables(s, `10.96.0.${10 + i}`)));
    expect(links.GATEWAY_PORT).toBe('tcp://10.96.0.' + String(10 + services.findIndex((s) => s.metadata.name === 'gateway')) + ':8080');
    expect(Object.keys(links)).toContain('PIPELINE_STRATEGIC_0_SERVICE_HOST');

    vhost = await createVhost('k8s');
    const keys = `viewer:${randomBytes(24).toString('hex')}\noperator:${randomBytes(24).toString('hex')}\n`;
    const secretValues: Record<string, string> = { amqp_url: vhost.url, redis_url: 'redis://127.0.0.1:6379', gateway_api_keys: keys };
    const cmd = imageCmd();
    expect(cmd).toEqual(['node', 'dist/src/supervisor/main.js']);

    let before = await consumers(vhost.name);
    // One at a time, so that the consumers that appear are the new pod's.
    for (const w of workloads) {
      const pod = w.spec!.template!.spec;
      expect(pod.enableServiceLinks).toBe(false);
      const c = pod.containers[0]!;
      const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...links };
      for (const from of c.envFrom ?? []) {
        if (from.configMapRef !== undefined) Object.assign(env, configMaps.get(from.configMapRef.name));
      }
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        env[e.name] = ref !== undefined ? secretValues[ref.key]! : e.value!;
      }
      // Six pods on one host: their own ports and directories (see the file's comment).
      const healthPort = await freePort();
      env.HEALTH_PORT = String(healthPort);
      env.HEALTH_HOST = '127.0.0.1';
      env.PIPELINE_DATA_DIR = join(dir, w.metadata.name);
      env.PIPELINE_REDIS_PREFIX = prefix;
      env.LOG_LEVEL = 'info';
      if (env.GATEWAY_PORT !== undefined && !env.GATEWAY_PORT.startsWith('tcp://')) env.GATEWAY_PORT = String(await freePort());
      if (env.GATEWAY_API_KEYS_FILE !== undefined) {
        env.GATEWAY_API_KEYS_FILE = join(dir, 'gateway_api_keys');
        writeFileSync(env.GATEWAY_API_KEYS_FILE, keys);
      }
      const proc = spawnProcess(c.command?.[0] ?? cmd[0]!, [...(c.command ?? cmd).slice(1), ...(c.args ?? [])], env);
      const p: Pod = { workload: w.metadata.name, proc, healthPort, queues: [] };
      pods.push(p);
      await waitFor(async () => {
        if (proc.proc.exitCode !== null) throw new Error(`${w.metadata.name} exited ${proc.proc.exitCode}: ${proc.stderr()}${proc.stdout().slice(-2000)}`);
        return (await fetch(`http://127.0.0.1:${healthPort}/health`).catch(() => null))?.status === 200;
      }, 240_000, `${w.metadata.name} /health 200`);
      const now = await consumers(vhost.name);
      p.queues = [...now].filter((x) => !before.has(x)).map((x) => x.split('\t')[0]!).sort();
      before = now;
    }

    // The queues each pod consumes; `exclusive` stands for its own server-named queue (amq.gen-…:
    // the tactical worker's model-update subscription, the gateway's results queue), which no
    // other pod can consume.
    const consumed = Object.fromEntries(
      pods.map((p) => [p.workload, p.queues.map((q) => (q.startsWith('amq.gen-') ? 'exclusive' : q))]),
    );
    expect(consumed).toEqual({
      'pipeline-strategic-0': [shardQueue('strategic', 0)],
      'pipeline-strategic-1': [shardQueue('strategic', 1)],
      'pipeline-tactical-0': ['exclusive', shardQueue('context', 0), shardQueue('tactical', 0)].sort(),
      'pipeline-tactical-1': ['exclusive', shardQueue('context', 1), shardQueue('tactical', 1)].sort(),
      'pipeline-trainer': [QUEUE_EXPERIENCE],
      gateway: ['exclusive'],
    });

    for (const p of pods) {
      // /health names one worker per sharded pod: its shard's.
      const health = (await (await fetch(`http://127.0.0.1:${p.healthPort}/health`)).json()) as { workers: Record<string, unknown> };
      const shard = /-(\d)$/.exec(p.workload)?.[1];
      const role = p.workload.replace(/^pipeline-/, '').replace(/-\d$/, '');
      expect(Object.keys(health.workers)).toEqual([shard === undefined || shard === '0' ? role : `${role}.${shard}`]);
      // One warning naming the link variables the configuration ignored (GATEWAY_PORT, unless
      // the pod sets its own, and the PIPELINE_* ones).
      const warnings = p.proc.stdout().split('\n').filter((l) => l.includes('ignoring Kubernetes service-link variables'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('PIPELINE_STRATEGIC_0_SERVICE_HOST');
      expect(warnings[0]!.includes('GATEWAY_PORT,') || warnings[0]!.includes('GATEWAY_PORT)')).toBe(p.workload !== 'gateway');
    }
  });
});
