import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import { parse } from 'yaml';
import { DEPLOY, packageFile } from './tools';
import { checkSettings } from './settings';

/** The compose specification's JSON schema, as Debian's docker-compose package ships it. */
const SPEC = packageFile('docker-compose', /\/compose_spec\.json$/);
const INSTALL = 'apt-get install -y --no-install-recommends docker-compose (.ci/run does this)';

type Service = {
  image?: string;
  environment?: Record<string, string>;
  volumes?: string[];
  secrets?: (string | { source: string; target: string })[];
  command?: string[];
};
type Compose = {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
};

const text = readFileSync(join(DEPLOY, 'compose.yml'), 'utf8');
/** The file as Compose reads it: `<<` merge keys resolved, `${VAR:?message}` left as text. */
const compose = (): Compose => parse(text, { merge: true }) as Compose;

/** A copy without the `id` annotations (a property *named* id, under `properties`, stays). */
function withoutIds(node: unknown, parentKey = ''): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutIds(n));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'id' && typeof v === 'string' && parentKey !== 'properties') continue;
    out[k] = withoutIds(v, k);
  }
  return out;
}

function validator(): (doc: unknown) => string[] {
  if (SPEC === null || !existsSync(SPEC))
    throw new Error(`the compose specification schema is missing (${SPEC}): ${INSTALL}`);
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
  // Its `$schema` names draft 2019-09 as http://json-schema.org/draft/2019-09/schema#, which ajv knows
  // under another URI, and it labels subschemas with draft-04 `id`s, which 2019-09 no longer has:
  // both are annotations, dropped; the schema is compiled as 2019-09 all the same.
  const { $schema: _, ...schema } = withoutIds(JSON.parse(readFileSync(SPEC, 'utf8'))) as Record<
    string,
    unknown
  >;
  const validate = ajv.compile(schema);
  return (doc) =>
    validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

describe('deploy/compose.yml', () => {
  it('validates against the compose specification JSON schema', () => {
    const validate = validator();
    expect(validate(compose())).toEqual([]);
    // The schema check can fail: an unknown service key and a wrong type are caught.
    const bad = compose() as unknown as { services: Record<string, Record<string, unknown>> };
    bad.services.redis!.restartt = 'always';
    bad.services.grafana!.ports = 'not-a-list';
    expect(validate(bad).length).toBeGreaterThanOrEqual(2);
  });

  it('docker-compose config accepts it (interpolation, merge keys, secrets files)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    cpSync(DEPLOY, join(dir, 'deploy'), { recursive: true });
    mkdirSync(join(dir, 'deploy/secrets'), { recursive: true });
    for (const name of Object.keys(compose().secrets))
      writeFileSync(join(dir, 'deploy/secrets', name), 'test\n');
    const run = (env: Record<string, string>) =>
      spawnSync('docker-compose', ['-f', 'compose.yml', 'config', '-q'], {
        cwd: join(dir, 'deploy'),
        encoding: 'utf8',
        env: { PATH: process.env.PATH, ...env },
      });
    const ok = run({ RABBITMQ_PIPELINE_PASSWORD: 'test' });
    if (ok.error !== undefined) throw new Error(`docker-compose is not installed: ${INSTALL}`);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    // Without the broker password it refuses to start, naming the setting.
    const missing = run({});
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('RABBITMQ_PIPELINE_PASSWORD');
  });

  it('runs the whole system: RabbitMQ with its plugins, Redis with persistence, every role, Prometheus, Alertmanager, Grafana', () => {
    const { services } = compose();
    expect(Object.keys(services).sort()).toEqual(
      [
        'alertmanager',
        'gateway',
        'grafana',
        'pipeline-strategic',
        'pipeline-tactical',
        'pipeline-trainer',
        'prometheus',
        'rabbitmq',
        'redis',
      ].sort(),
    );
    const plugins = readFileSync(join(DEPLOY, 'rabbitmq/enabled_plugins'), 'utf8');
    for (const p of ['rabbitmq_consistent_hash_exchange', 'rabbitmq_prometheus'])
      expect(plugins).toContain(p);
    expect(services.rabbitmq!.volumes).toContain(
      './rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro',
    );
    expect(services.redis!.command!.join(' ')).toContain('--appendonly yes');
    expect(services.redis!.volumes!.some((v) => v.endsWith(':/data'))).toBe(true);
  });

  it('every pipeline container has a valid configuration, and together they run every role once', () => {
    const { services } = compose();
    const roles: string[] = [];
    for (const [name, s] of Object.entries(services).filter(
      ([, s]) => s.image === 'bar-pipeline:latest',
    )) {
      const env = Object.fromEntries(
        Object.entries(s.environment!).map(([k, v]) => [k, v.replace(/\$\{[^}]*\}/g, 'secret')]),
      );
      const { problems, config, roles: r } = checkSettings(name, env);
      expect(problems).toEqual([]);
      expect(config!.healthHost).toBe('0.0.0.0');
      roles.push(...r);
    }
    expect(roles.sort()).toEqual(['gateway', 'strategic', 'tactical', 'trainer']);
  });

  it('Prometheus scrapes every pipeline container, and Alertmanager finds its secrets where its config reads them', () => {
    const { services } = compose();
    const prom = parse(readFileSync(join(DEPLOY, 'prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = prom.scrape_configs
      .find((j) => j.job_name === 'pipeline')!
      .static_configs.flatMap((c) => c.targets);
    const pipelineServices = Object.entries(services)
      .filter(([, s]) => s.image === 'bar-pipeline:latest')
      .map(([n]) => `${n}:9464`);
    expect(targets.sort()).toEqual(pipelineServices.sort());
    expect(
      prom.scrape_configs.find((j) => j.job_name === 'rabbitmq')!.static_configs[0]!.targets,
    ).toEqual(['rabbitmq:15692']);
    const am = readFileSync(join(DEPLOY, 'alertmanager/alertmanager.yml'), 'utf8');
    const read = [...am.matchAll(/_file:\s*(\S+)/g)].map((m) => m[1]!).sort();
    const mounted = services
      .alertmanager!.secrets!.map((s) => (typeof s === 'string' ? `/run/secrets/${s}` : s.target))
      .sort();
    expect(mounted).toEqual(read);
    expect(services.grafana!.volumes).toEqual(
      expect.arrayContaining([
        './grafana/provisioning:/etc/grafana/provisioning:ro',
        './grafana/dashboards:/var/lib/grafana/dashboards:ro',
      ]),
    );
  });
});
