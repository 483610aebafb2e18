import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { DEPLOY, run } from './tools';
import { checkSettings } from './settings';

/*
 * No Kubernetes API server is available here (kubectl's validation asks the server), so the manifests
 * are rendered by `kubectl kustomize` (the real kustomize), validated against the Kubernetes OpenAPI
 * schemas that the kubernetes-models package ships (k8s-schema.mjs), and checked by the focused
 * structural check below (what the schemas cannot say: probes, resources, one workload per shard).
 */

/** Problems the Kubernetes schemas find in `objs` (empty: every object is valid). */
function schemaProblems(objs: unknown[]): string[] {
  const r = spawnSync(process.execPath, [join(__dirname, 'k8s-schema.mjs')], { input: JSON.stringify(objs), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`k8s-schema.mjs failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

type Labels = Record<string, string>;
interface Probe {
  httpGet?: { path?: string; port?: string | number };
}
interface Container {
  name: string;
  ports?: { name?: string; containerPort: number | string }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
  securityContext?: { runAsNonRoot?: boolean };
  volumeMounts?: { name: string }[];
  envFrom?: { configMapRef?: { name: string } }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
}
interface Volume {
  name: string;
  persistentVolumeClaim?: { claimName: string };
  secret?: { secretName?: string; items?: { key: string }[] };
  configMap?: { name: string };
}
/** The fields of a Deployment's or StatefulSet's spec that the structural check reads. */
interface WorkloadSpec {
  replicas?: number;
  serviceName?: string;
  selector?: { matchLabels?: Labels };
  template: { metadata?: { labels?: Labels }; spec: { containers: Container[]; volumes?: Volume[]; enableServiceLinks?: boolean } };
  volumeClaimTemplates?: { metadata: { name: string } }[];
}
interface ServiceSpec {
  clusterIP?: string;
  selector: Labels;
}
interface PdbSpec {
  selector: { matchLabels: Labels };
  maxUnavailable?: number | string;
  minAvailable?: number | string;
}

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Labels };
  /** Depends on the kind: read through workloadSpec, serviceSpec or pdbSpec. */
  spec?: unknown;
  data?: Labels;
};
const workloadSpec = (o: Obj) => o.spec as WorkloadSpec;
const serviceSpec = (o: Obj) => o.spec as ServiceSpec;
const pdbSpec = (o: Obj) => o.spec as PdbSpec;

function render(mutate?: (dir: string) => void): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-'));
  cpSync(join(DEPLOY, 'k8s'), join(dir, 'k8s'), { recursive: true });
  mkdirSync(join(dir, 'k8s/secrets'), { recursive: true });
  const kustomization = parse(readFileSync(join(dir, 'k8s/kustomization.yaml'), 'utf8')) as {
    secretGenerator: { files: string[] }[];
  };
  for (const f of kustomization.secretGenerator.flatMap((g) => g.files))
    writeFileSync(join(dir, 'k8s', f), 'test');
  mutate?.(join(dir, 'k8s'));
  const r = spawnSync('kubectl', ['kustomize', join(dir, 'k8s')], { encoding: 'utf8' });
  if (r.error !== undefined)
    throw new Error('kubectl is not installed: apt-get install -y kubectl (.ci/run does this)');
  expect(r.status).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJSON() as Obj);
}

const NAMESPACED = new Set([
  'ConfigMap',
  'Secret',
  'Service',
  'StatefulSet',
  'Deployment',
  'PersistentVolumeClaim',
  'PodDisruptionBudget',
]);
const API: Record<string, string> = {
  Namespace: 'v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  Service: 'v1',
  PersistentVolumeClaim: 'v1',
  StatefulSet: 'apps/v1',
  Deployment: 'apps/v1',
  PodDisruptionBudget: 'policy/v1',
};
const CPU = /^(\d+m|\d+(\.\d+)?)$/;
const MEMORY = /^\d+(Ki|Mi|Gi)$/;

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Problems of the rendered manifests (empty: none). */
function check(objs: Obj[]): string[] {
  const p: string[] = [];
  const byKind = (kind: string) => objs.filter((o) => o.kind === kind);
  const names = (kind: string) => new Set(byKind(kind).map((o) => o.metadata.name));
  for (const o of objs) {
    if (API[o.kind] !== o.apiVersion)
      p.push(`${o.kind}/${o.metadata?.name}: apiVersion ${o.apiVersion}, expected ${API[o.kind]}`);
    if (
      !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(o.metadata?.name ?? '') ||
      o.metadata.name.length > 63
    )
      p.push(`${o.kind}: bad name ${o.metadata?.name}`);
    if (NAMESPACED.has(o.kind) && o.metadata.namespace !== 'bar-pipeline')
      p.push(`${o.kind}/${o.metadata.name}: not in namespace bar-pipeline`);
  }
  const config = byKind('ConfigMap').find((c) => c.metadata.name === 'pipeline-config')?.data ?? {};
  const secret = byKind('Secret').find((s) => s.metadata.name === 'pipeline-secrets');
  const secretKeys = new Set(Object.keys(secret?.data ?? {}));
  const pvcs = names('PersistentVolumeClaim');
  const workloads = objs.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
  const slots: string[] = [];
  const podLabels: Record<string, string>[] = [];
  for (const w of workloads) {
    const id = `${w.kind}/${w.metadata.name}`;
    const spec = workloadSpec(w);
    if (spec.replicas !== 1)
      p.push(
        `${id}: replicas ${spec.replicas}; one pod per role and shard (single active consumer)`,
      );
    const labels = spec.template?.metadata?.labels ?? {};
    podLabels.push(labels);
    if (!matches(spec.selector?.matchLabels ?? { none: 'x' }, labels))
      p.push(`${id}: selector does not match the pod labels`);
    if (
      w.kind === 'StatefulSet' &&
      !byKind('Service').some(
        (s) => s.metadata.name === spec.serviceName && serviceSpec(s).clusterIP === 'None',
      )
    )
      p.push(`${id}: serviceName ${spec.serviceName} is not a headless Service`);
    const pod = spec.template.spec;
    const volumes = new Set<string>([
      ...(pod.volumes ?? []).map((v) => v.name),
      ...(spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name),
    ]);
    for (const v of pod.volumes ?? []) {
      if (v.persistentVolumeClaim !== undefined && !pvcs.has(v.persistentVolumeClaim.claimName))
        p.push(`${id}: PVC ${v.persistentVolumeClaim.claimName} missing`);
      if (v.secret !== undefined)
        for (const item of v.secret.items ?? [])
          if (!secretKeys.has(item.key)) p.push(`${id}: secret key ${item.key} missing`);
    }
    for (const c of pod.containers) {
      const cid = `${id} container ${c.name}`;
      const ports = new Map<string | number | undefined, number | string>(
        (c.ports ?? []).map((x) => [x.name, x.containerPort]),
      );
      if (ports.get('health') !== Number(config.HEALTH_PORT ?? 9464))
        p.push(`${cid}: port health is not HEALTH_PORT`);
      for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
        const probe = c[kind];
        if (probe?.httpGet?.path !== '/health' || !ports.has(probe.httpGet.port))
          p.push(`${cid}: ${kind} must GET /health on a declared port`);
      }
      const r = c.resources ?? {};
      if (
        !CPU.test(r.requests?.cpu ?? '') ||
        !MEMORY.test(r.requests?.memory ?? '') ||
        !MEMORY.test(r.limits?.memory ?? '')
      )
        p.push(`${cid}: needs cpu and memory requests and a memory limit`);
      if (c.securityContext?.runAsNonRoot !== true) p.push(`${cid}: must run as non-root`);
      for (const m of c.volumeMounts ?? [])
        if (!volumes.has(m.name)) p.push(`${cid}: mounts unknown volume ${m.name}`);
      if (
        !(c.envFrom ?? []).some((e) => e.configMapRef?.name === 'pipeline-config')
      )
        p.push(`${cid}: settings must come from the ConfigMap pipeline-config`);
      const env: Record<string, string> = { ...config };
      for (const e of c.env ?? []) {
        if (e.valueFrom?.secretKeyRef !== undefined) {
          if (
            e.valueFrom.secretKeyRef.name !== 'pipeline-secrets' ||
            !secretKeys.has(e.valueFrom.secretKeyRef.key)
          )
            p.push(`${cid}: ${e.name} from a missing secret key`);
          env[e.name] =
            e.name === 'AMQP_URL' ? 'amqp://u:p@rabbitmq:5672/pipeline' : 'redis://redis:6379/0';
        } else if (e.value !== undefined) env[e.name] = e.value;
      }
      const settings = checkSettings(cid, env);
      p.push(...settings.problems);
      for (const role of settings.roles)
        slots.push(
          role === 'strategic' || role === 'tactical'
            ? `${role}.${env.PIPELINE_SHARD_INDEX ?? 0}`
            : role,
        );
    }
  }
  // One workload per role and shard: strategic.k and tactical.k for every k below PIPELINE_SHARDS.
  const shards = Number(config.PIPELINE_SHARDS ?? 1);
  const expected = [
    'gateway',
    'trainer',
    ...Array.from({ length: shards }, (_, k) => [`strategic.${k}`, `tactical.${k}`]).flat(),
  ].sort();
  if (JSON.stringify(slots.sort()) !== JSON.stringify(expected))
    p.push(`workloads run ${slots.join(', ')}; expected ${expected.join(', ')}`);
  for (const s of byKind('Service'))
    if (!podLabels.some((l) => matches(serviceSpec(s).selector, l)))
      p.push(`Service/${s.metadata.name}: selects no pod`);
  const pdbs = byKind('PodDisruptionBudget');
  if (pdbs.length === 0) p.push('no PodDisruptionBudget');
  for (const pdb of pdbs) {
    const budget = pdbSpec(pdb);
    const covered = podLabels.filter((l) => matches(budget.selector.matchLabels, l)).length;
    if (covered !== workloads.length)
      p.push(
        `PodDisruptionBudget/${pdb.metadata.name}: covers ${covered} of ${workloads.length} workloads`,
      );
    if (budget.maxUnavailable === undefined && budget.minAvailable === undefined)
      p.push(`PodDisruptionBudget/${pdb.metadata.name}: no budget`);
  }
  return p;
}

describe('deploy/k8s (kustomize)', () => {
  it('renders with kubectl kustomize into the expected objects', () => {
    const kinds = render()
      .map((o) => o.kind)
      .sort();
    expect(new Set(kinds)).toEqual(
      new Set([
        'Namespace',
        'ConfigMap',
        'Secret',
        'PersistentVolumeClaim',
        'PodDisruptionBudget',
        'Service',
        'StatefulSet',
        'Deployment',
      ]),
    );
  });

  it('every rendered object is valid against the Kubernetes schemas', () => {
    expect(schemaProblems(render())).toEqual([]);
  });

  it('the schema check rejects a malformed object', () => {
    const objs = render();
    const sts = objs.find((o) => o.kind === 'StatefulSet')!;
    workloadSpec(sts).template.spec.containers[0]!.ports = [{ containerPort: 'http' }];
    const problems = schemaProblems(objs);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/containerPort must be integer/);
  });

  it('passes the structural check: one workload per role and shard, probes on /health, resources, PDB, ConfigMap and Secret', () => {
    expect(check(render())).toEqual([]);
  });

  it('the structural check fails on broken manifests', () => {
    const objs = render();
    const tactical = objs.find(
      (o) => o.kind === 'StatefulSet' && o.metadata.name === 'pipeline-tactical-1',
    )!;
    const container = workloadSpec(tactical).template.spec.containers[0]!;
    delete container.readinessProbe;
    container.env!.find((e) => e.name === 'PIPELINE_SHARD_INDEX')!.value = '5';
    const problems = check(objs);
    expect(problems.join('\n')).toMatch(/readinessProbe must GET \/health/);
    expect(problems.join('\n')).toMatch(/PIPELINE_SHARD_INDEX=5: must be below PIPELINE_SHARDS/);
    expect(problems.join('\n')).toMatch(/expected gateway, strategic\.0/);
  });

  it('every pod turns service links off, and every Secret, ConfigMap and claim it names is rendered or created by a command in docs/deploy.md', () => {
    const objs = render();
    const workloads = objs.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
    const rendered = new Set(objs.map((o) => `${o.kind}/${o.metadata.name}`));
    const named: string[] = [];
    for (const w of workloads) {
      const spec = workloadSpec(w);
      expect([w.metadata.name, spec.template.spec.enableServiceLinks]).toEqual([w.metadata.name, false]);
      const claims = new Set((spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name));
      for (const v of spec.template.spec.volumes ?? []) {
        if (v.persistentVolumeClaim !== undefined) named.push(`PersistentVolumeClaim/${v.persistentVolumeClaim.claimName}`);
        if (v.secret?.secretName !== undefined) named.push(`Secret/${v.secret.secretName}`);
        if (v.configMap !== undefined) named.push(`ConfigMap/${v.configMap.name}`);
      }
      for (const c of spec.template.spec.containers) {
        for (const f of c.envFrom ?? []) if (f.configMapRef !== undefined) named.push(`ConfigMap/${f.configMapRef.name}`);
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef !== undefined) named.push(`Secret/${e.valueFrom.secretKeyRef.name}`);
        // Every mount is a volume of the pod or a volumeClaimTemplate (the StatefulSet's own claim).
        const volumes = new Set([...(spec.template.spec.volumes ?? []).map((v) => v.name), ...claims]);
        expect((c.volumeMounts ?? []).filter((m) => !volumes.has(m.name))).toEqual([]);
      }
    }
    const docs = readFileSync(join(DEPLOY, '../docs/deploy.md'), 'utf8');
    const userMade = (ref: string): boolean => {
      const [kind, name] = ref.split('/') as [string, string];
      const verb = kind === 'Secret' ? 'create secret generic' : kind === 'ConfigMap' ? 'create configmap' : 'apply';
      return docs.includes(`kubectl -n bar-pipeline ${verb} ${name}`);
    };
    expect([...new Set(named)].filter((ref) => !rendered.has(ref) && !userMade(ref))).toEqual([]);
    // The Secret alertmanager.yml reads its files from (no manifest of deploy/k8s mounts it).
    expect(readFileSync(join(DEPLOY, 'alertmanager/alertmanager.yml'), 'utf8')).toContain('alertmanager-secrets');
    expect(docs).toContain('kubectl -n monitoring create secret generic alertmanager-secrets');
  });

  it('prometheus-k8s.yml passes promtool and scrapes every pipeline pod through its headless Service', () => {
    const r = run('promtool', ['check', 'config', 'prometheus-k8s.yml'], join(DEPLOY, 'prometheus'));
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
    const prom = parse(readFileSync(join(DEPLOY, 'prometheus/prometheus-k8s.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; port: number }[] }[];
    };
    const job = prom.scrape_configs.find((j) => j.job_name === 'pipeline')!;
    const names = job.dns_sd_configs!.flatMap((c) => c.names).sort();
    const objs = render();
    const headless = objs.filter(
      (o) => o.kind === 'Service' && serviceSpec(o).clusterIP === 'None' && (o.spec as { ports: { port: number }[] }).ports.some((p) => p.port === 9464),
    );
    expect(names).toEqual(headless.map((s) => `${s.metadata.name}.bar-pipeline.svc`).sort());
    // Each workload's pods are behind exactly one of them.
    for (const w of objs.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
      const labels = workloadSpec(w).template.metadata!.labels!;
      const selecting = headless.filter((s) => Object.entries(serviceSpec(s).selector).every(([k, v]) => labels[k] === v));
      expect([w.metadata.name, selecting.length]).toEqual([w.metadata.name, 1]);
    }
  });
});
