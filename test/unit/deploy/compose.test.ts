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

/** A pipeline container: the image `${PIPELINE_IMAGE:-bar-pipeline:latest}`. */
const isPipeline = (s: Service): boolean => s.image === '${PIPELINE_IMAGE:-bar-pipeline:latest}';

/** The environment as Compose gives it with no variable set: defaults taken, required ones a stand-in. */
function interpolated(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      v.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1').replace(/\$\{[^}]*\}/g, 'secret'),
    ]),
  );
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
    for (const [name, s] of Object.entries(services).filter(([, s]) => isPipeline(s))) {
      const env = interpolated(s.environment!);
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
      .filter(([, s]) => isPipeline(s))
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

  it('is safe by default: loopback-only ports, Redis as docs/redis-loss.md asks, training off', () => {
    const { services } = compose() as unknown as { services: Record<string, Service & { ports?: string[] }> };
    const published = Object.entries(services).flatMap(([n, s]) => (s.ports ?? []).map((p) => `${n} ${p}`));
    expect(published.length).toBeGreaterThanOrEqual(5);
    for (const p of published) expect(p).toMatch(/^\S+ '?127\.0\.0\.1:/);
    // One truth: the flags docs/redis-loss.md gives for the compose file's Redis are all in its command.
    const doc = readFileSync(join(DEPLOY, '../docs/redis-loss.md'), 'utf8');
    const line = /```sh\n(redis-server [^\n]*)\n```/.exec(doc)![1]!;
    const flags = line.split(/\s+/).slice(1);
    const command = services.redis!.command!;
    for (let i = 0; i < flags.length; i += 2) {
      const at = command.indexOf(flags[i]!);
      expect([flags[i], at >= 0 ? command[at + 1] : undefined]).toEqual([flags[i], flags[i + 1]]);
    }
    expect(command).not.toContain('everysec');
    for (const [, s] of Object.entries(services).filter(([, s]) => isPipeline(s)))
      expect(interpolated(s.environment!).PIPELINE_TRAINING).toBe('off');
  });

  it('the pipeline entrypoint builds AMQP_URL from parts, so any password works', () => {
    const password = 'p@ss/w#rd:%41 ?&=';
    const r = spawnSync(
      'sh',
      [join(DEPLOY, 'amqp-url-from-parts.sh'), 'node', '-e', 'process.stdout.write(process.env.AMQP_URL)'],
      {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH,
          RABBITMQ_USER: 'pipe line',
          RABBITMQ_PASSWORD: password,
          RABBITMQ_HOST: 'rabbitmq',
          RABBITMQ_VHOST: 'pipeline',
        },
      },
    );
    expect(r.stderr).toBe('');
    const url = new URL(r.stdout);
    expect([url.hostname, url.port, url.pathname]).toEqual(['rabbitmq', '5672', '/pipeline']);
    expect(decodeURIComponent(url.username)).toBe('pipe line');
    expect(decodeURIComponent(url.password)).toBe(password);
    expect(checkSettings('entrypoint', { AMQP_URL: r.stdout }).problems).toEqual([]);
    // A given AMQP_URL is left alone.
    const given = spawnSync('sh', [join(DEPLOY, 'amqp-url-from-parts.sh'), 'sh', '-c', 'printf %s "$AMQP_URL"'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, AMQP_URL: 'amqp://u:p@h:5672/v', RABBITMQ_HOST: 'rabbitmq' },
    });
    expect(given.stdout).toBe('amqp://u:p@h:5672/v');
  });
});
