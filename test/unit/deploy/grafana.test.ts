import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { installMetrics, registry } from '../../../src/observability/metrics';
import { DEPLOY, packageFile } from './tools';
import { exportedNames, metricNames, rabbitmqPluginMetrics } from './metric-names';

const GRAFANA = join(DEPLOY, 'grafana');
const RABBIT_LIST = join(GRAFANA, 'rabbitmq-prometheus-metrics.txt');

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string; datasource: { uid: string } }[];
  panels?: Panel[];
}
const dashboard = JSON.parse(readFileSync(join(GRAFANA, 'dashboards/pipeline.json'), 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { query: { query: string } }[] };
  annotations: { list: { expr: string }[] };
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

/** Every metric the pipeline's code registers: the workers' registry and the supervisor's own counter. */
async function pipelineMetrics(): Promise<Set<string>> {
  installMetrics('test');
  const registered = (await registry.getMetricsAsJSON()).map((m) => ({
    name: m.name,
    type: String(m.type),
  }));
  // The supervisor registers its restarts counter on a registry of its own.
  const supervisor = readFileSync(join(__dirname, '../../../src/supervisor/supervisor.ts'), 'utf8');
  for (const m of supervisor.matchAll(/new (Counter|Gauge|Histogram)\(\{\s*name: '([a-z_]+)'/g))
    registered.push({ name: m[2]!, type: m[1]!.toLowerCase() });
  return exportedNames(registered);
}

function rabbitmqMetrics(): Set<string> {
  return new Set(
    readFileSync(RABBIT_LIST, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#')),
  );
}

describe('metricNames (PromQL metric extraction)', () => {
  it('finds the metrics and nothing else', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, job) (rate(pipeline_result_latency_seconds_bucket{job=~"$job",x="a b"}[$__rate_interval]))) > 1e9',
      ),
    ).toEqual(['pipeline_result_latency_seconds_bucket']);
    expect(
      metricNames(
        'a_total / on (vhost, queue) group_left b unless c offset 5m and vector(1) or time() - d',
      ).sort(),
    ).toEqual(['a_total', 'b', 'c', 'd']);
  });
});

describe('Grafana dashboard', () => {
  const exprs = [
    ...panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
    ...dashboard.templating.list.map((v) => ({
      where: 'variable',
      expr: v.query.query.replace(/^label_values\((.*),\s*\w+\)$/, '$1'),
    })),
  ];

  it('covers throughput, latency, backlog, regimes, decisions, breakers, dead letters, restarts and model versions', () => {
    const text = panels
      .map((p) => `${p.title} ${(p.targets ?? []).map((t) => t.expr).join(' ')}`)
      .join('\n');
    for (const metric of [
      'pipeline_results_published_total',
      'pipeline_result_latency_seconds_bucket',
      'rabbitmq_queue_messages_ready',
      'pipeline_result_regimes_total',
      'pipeline_result_decisions_total',
      'pipeline_breaker_state',
      'pipeline_dead_letters_total',
      'pipeline_worker_restarts_total',
      'pipeline_model_version_number',
    ]) {
      expect(text).toContain(metric);
    }
  });

  it('every query names only metrics the code registers or the RabbitMQ plugin exports', async () => {
    const known = new Set([...(await pipelineMetrics()), ...rabbitmqMetrics(), 'ALERTS']);
    const unknown = exprs.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((n) => !known.has(n))
        .map((n) => `${where}: ${n}`),
    );
    expect(unknown).toEqual([]);
    expect(exprs.length).toBeGreaterThan(20);
    // The check can fail: a made-up name is caught.
    expect(metricNames('rate(pipeline_made_up_total[1m])').filter((n) => !known.has(n))).toEqual([
      'pipeline_made_up_total',
    ]);
  });

  it('every panel queries the provisioned Prometheus datasource', () => {
    const ds = parse(
      readFileSync(join(GRAFANA, 'provisioning/datasources/prometheus.yml'), 'utf8'),
    ) as { datasources: { uid: string; url: string }[] };
    const uid = ds.datasources[0]!.uid;
    for (const p of panels.filter((x) => x.type !== 'row')) {
      expect(p.targets!.length).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource.uid).toBe(uid);
    }
    const provider = parse(
      readFileSync(join(GRAFANA, 'provisioning/dashboards/pipeline.yml'), 'utf8'),
    ) as { providers: { options: { path: string } }[] };
    expect(provider.providers[0]!.options.path).toBe('/var/lib/grafana/dashboards');
  });

  it("the checked-in RabbitMQ metric list is the installed plugin's (when installed here)", () => {
    const plugin = rabbitmqPluginMetrics(
      packageFile('rabbitmq-server', /\/rabbitmq_prometheus-[\d.]+\/ebin$/),
    );
    if (plugin === null) return; // not installed: the checked-in list stands
    expect([...rabbitmqMetrics()].sort()).toEqual(plugin.map((m) => m.name));
  });

  it('the alert rules, too, name only known metrics', async () => {
    const known = new Set([...(await pipelineMetrics()), ...rabbitmqMetrics(), 'up']);
    const doc = parse(
      readFileSync(join(DEPLOY, 'prometheus/rules/pipeline.rules.yml'), 'utf8'),
    ) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const unknown = doc.groups.flatMap((g) =>
      g.rules.flatMap((r) =>
        metricNames(r.expr)
          .filter((n) => !known.has(n))
          .map((n) => `${r.alert}: ${n}`),
      ),
    );
    expect(unknown).toEqual([]);
  });
});
