import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, publishBars, publishRaw, waitFor, type TestVhost } from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

/**
 * A real Prometheus (Debian's `prometheus`, own port and data directory) scrapes a running pipeline
 * on its own vhost and evaluates deploy/prometheus/rules/pipeline.rules.yml. Induced faults must fire
 * the matching alert in Prometheus's own API (/api/v1/alerts):
 * - a flood of bad bars → PipelineDeadLetters and PipelineErrorRateHigh;
 * - a worker in a crash loop (PIPELINE_FAULT_FILE `crash:<bar>`) → PipelineWorkerRestarting.
 * The rules' expressions are used unchanged; only their `for:` durations are shortened to 2 s
 * (and the scrape and evaluation intervals are seconds), so that this runs in about a minute.
 */
jest.setTimeout(180_000);

const RULES = join(__dirname, '../../deploy/prometheus/rules/pipeline.rules.yml');
const SCRAPE_SECONDS = 3; // the supervisor waits up to 2 s for each worker's metrics

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

describe('alert rules against a real Prometheus and a running pipeline', () => {
  let vhost: TestVhost;
  let pipeline: TestPipeline;
  let prometheus: ChildProcess | null = null;
  let promLog = '';
  let promUrl = '';
  let dir = '';
  let faultFile = '';

  async function alerts(): Promise<Alert[]> {
    const res = await fetch(`${promUrl}/api/v1/alerts`);
    const body = (await res.json()) as { status: string; data: { alerts: Alert[] } };
    expect(body.status).toBe('success');
    return body.data.alerts;
  }

  /** The value of a scalar-like PromQL query (the first series), or null when it has none. */
  async function query(expr: string): Promise<number | null> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
    const first = body.data.result[0];
    return first === undefined ? null : Number(first.value[1]);
  }

  async function firing(name: string): Promise<Alert[]> {
    return (await alerts()).filter((a) => a.labels.alertname === name && a.state === 'firing');
  }

  async function waitFiring(name: string, timeoutMs = 60_000): Promise<Alert> {
    let found: Alert[] = [];
    await waitFor(
      async () => (found = await firing(name)).length > 0,
      timeoutMs,
      `${name} firing in Prometheus (log: ${promLog.slice(-500)})`,
    );
    return found[0]!;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alerts-'));
    faultFile = join(dir, 'faults');
    writeFileSync(faultFile, '');
    vhost = await createVhost('alerts');
    pipeline = await startPipeline(vhost.url, {
      PIPELINE_FAULT_FILE: faultFile,
      PIPELINE_DATA_DIR: join(dir, 'data'),
      // The crash loop must restart the worker several times, not end in the supervisor giving up.
      PIPELINE_CRASH_ATTEMPTS: '4',
      PIPELINE_MAX_RESTARTS_PER_MINUTE: '30',
    });
    await waitHealthy(pipeline);

    const rules = readFileSync(RULES, 'utf8').replace(/^(\s+for:\s*)\d+[smh]\s*$/gm, '$12s');
    if (/for:\s*\d+m/.test(rules)) throw new Error('a rule still waits minutes: shorten its for: in this test');
    mkdirSync(join(dir, 'rules'));
    writeFileSync(join(dir, 'rules', 'pipeline.rules.yml'), rules);
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global:',
        `  scrape_interval: ${SCRAPE_SECONDS}s`,
        `  scrape_timeout: ${SCRAPE_SECONDS}s`,
        '  evaluation_interval: 1s',
        'rule_files: [rules/pipeline.rules.yml]',
        'scrape_configs:',
        '  - job_name: pipeline',
        `    static_configs: [{ targets: ['127.0.0.1:${pipeline.supervisor.healthPort}'] }]`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.on(
      'error',
      (err) => (promLog += `\nspawn failed: ${err.message} (apt-get install -y prometheus)`),
    );
    prometheus.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    await waitFor(
      async () => (await fetch(`${promUrl}/-/ready`).catch(() => null))?.status === 200,
      30_000,
      `Prometheus ready (log: ${promLog})`,
    );
    // Until the pipeline's target has been scraped successfully, no alert says anything.
    await waitFor(
      async () => (await query('up{job="pipeline"}')) === 1,
      30_000,
      'a successful scrape of the pipeline',
    );
  });

  afterAll(async () => {
    if (prometheus !== null && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus!.once('exit', r));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await pipeline?.stop();
    if (pipeline !== undefined) await clearRedis(pipeline.prefix);
    await vhost?.dispose();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  const bars = generateSyntheticMarket({ seed: 16, symbol: 'ALRT', bars: 40 }).bars;

  it('good bars fire none of the alerts the faults below fire', async () => {
    await publishBars(vhost.url, bars.slice(0, 20));
    // Three scrapes and many evaluations of a healthy, working pipeline.
    await new Promise((r) => setTimeout(r, 3 * SCRAPE_SECONDS * 1000 + 1000));
    const names = (await alerts()).map((a) => a.labels.alertname);
    expect(names).not.toContain('PipelineDeadLetters');
    expect(names).not.toContain('PipelineErrorRateHigh');
    expect(names).not.toContain('PipelineWorkerRestarting');
    expect(names).not.toContain('PipelineTargetDown');
    // The metrics the dashboard and the rules need are scraped from the running workers.
    await waitFor(
      async () => (await query('sum(pipeline_results_published_total)')) === 20,
      30_000,
      'the 20 results in Prometheus',
    );
    expect(await query('sum(pipeline_result_decisions_total)')).toBe(20);
    expect(await query('sum(pipeline_result_regimes_total)')).toBe(20);
    expect(await query('pipeline_model_version_number{worker="tactical"}')).toBe(1); // v0001, the shipped model a fresh registry is seeded with
    expect(await query('max(pipeline_process_process_resident_memory_bytes)')).toBeGreaterThan(
      10e6,
    );
  });

  it('a flood of bad bars fires PipelineDeadLetters and PipelineErrorRateHigh', async () => {
    const stop = Date.now() + 4 * SCRAPE_SECONDS * 1000;
    let sent = 0;
    // Bad bars over several scrapes, so that rate() sees the dead letters rise.
    while (Date.now() < stop) {
      const batch = Array.from({ length: 50 }, (_, i) => ({
        routingKey: 'bars.5m.ALRT',
        body:
          i % 2 === 0
            ? '{"symbol":'
            : JSON.stringify({ ...bars[5], ts: bars[5]!.ts + 7 + sent + i }),
      }));
      await publishRaw(vhost.url, batch);
      sent += batch.length;
      await new Promise((r) => setTimeout(r, 500));
    }
    const dead = await waitFiring('PipelineDeadLetters');
    expect(dead.labels).toMatchObject({
      severity: 'warning',
      queue: 'tactical_processing.0',
      stage: 'tactical',
    });
    const errors = await waitFiring('PipelineErrorRateHigh');
    expect(errors.labels).toMatchObject({ severity: 'page', job: 'pipeline' });
    expect(await firing('PipelineWorkerRestarting')).toEqual([]);
  });

  it('a worker in a crash loop fires PipelineWorkerRestarting', async () => {
    const poison = bars[20]!;
    writeFileSync(faultFile, `crash:${poison.symbol}:5m:${poison.ts}\n`);
    await new Promise((r) => setTimeout(r, 500)); // the injector re-reads the file every 200 ms
    const firstPid = pipeline.supervisor.pids().tactical;
    await publishBars(vhost.url, [poison]);
    const restarting = await waitFiring('PipelineWorkerRestarting', 90_000);
    expect(restarting.labels).toMatchObject({ severity: 'warning', role: 'tactical' });
    expect(pipeline.supervisor.pids().tactical).not.toBe(firstPid);
  });
});
