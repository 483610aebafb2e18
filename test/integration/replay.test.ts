/**
 * Parity: `pipeline replay` of real bars (3 symbols, 450 bars each) gives the same results, apart
 * from latency_ms, as the same bars published one per message to a pipeline started by the test
 * fixtures with training off.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Bar } from '../../schemas/bar.schema';
import { IntegratedResultSchema } from '../../schemas/integrated-result.schema';
import { QUEUE_RESULTS } from '../../src/broker/topology';
import { runCli } from '../../src/cli/main';
import { readCsvBars, symbolFromCsvPath } from '../../src/producers/csv-bars';
import {
  createVhost,
  interleave,
  publishBars,
  QueueCollector,
  waitFor,
  type TestVhost,
} from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(300_000);

const DATA = join(__dirname, '..', '..', 'data', 'market');
const FILES = ['BTCUSDT_5m.csv', 'ETHUSDT_5m.csv', 'SOLUSDT_5m.csv'].map((f) => join(DATA, f));
const TO = '2025-04-05T06:35:00Z'; // 450 bars from 2025-04-03 17:05
const TO_MS = Date.parse(TO);

function withoutLatency(body: string): unknown {
  const r = IntegratedResultSchema.parse(JSON.parse(body)) as Record<string, unknown>;
  delete r.latency_ms;
  return r;
}

async function readBars(file: string): Promise<Bar[]> {
  const out: Bar[] = [];
  for await (const bar of readCsvBars(file, { symbol: symbolFromCsvPath(file) }))
    if (bar.ts < TO_MS) out.push(bar);
  return out;
}

describe('pipeline replay', () => {
  let vhost: TestVhost;
  let pipeline: TestPipeline;
  let results: QueueCollector;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'replay-test-'));
    vhost = await createVhost('replay');
    pipeline = await startPipeline(vhost.url, { PIPELINE_TRAINING: 'off' });
    await waitHealthy(pipeline);
    results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    await results.start();
  });

  afterAll(async () => {
    await results?.stop();
    await pipeline?.stop();
    if (pipeline !== undefined) await clearRedis(pipeline.prefix);
    await vhost?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('gives the results of publishing the same bars one per message, apart from latency_ms', async () => {
    const bars = interleave(await Promise.all(FILES.map(readBars)));
    expect(bars).toHaveLength(1350);

    // Reference: one message per bar into the fixtures' pipeline.
    await publishBars(vhost.url, bars);
    await waitFor(
      () => results.messages.length >= bars.length,
      180_000,
      `${bars.length} reference results`,
    );
    const reference = new Map(
      results.messages.map((m) => [String(m.messageId), withoutLatency(m.body)]),
    );

    // The replay: its own vhost, Redis prefix and data directory, training off.
    const outFile = join(dir, 'results.jsonl');
    const reportFile = join(dir, 'report.html');
    let stdout = '';
    let stderr = '';
    const out = new PassThrough().on('data', (d: Buffer) => (stdout += d.toString()));
    const err = new PassThrough().on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await runCli(
      [
        'replay',
        ...FILES,
        '--to',
        TO,
        '--out',
        outFile,
        '--report',
        reportFile,
        '--timeout-ms',
        '60000',
      ],
      {
        env: {
          ...process.env,
          AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
          PIPELINE_TRAINING: 'off',
        },
        out,
        err,
      },
    );
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });

    const lines = stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1] as string) as {
      bars: number;
      results: number;
      seconds: number;
    };
    expect(summary.bars).toBe(bars.length);
    expect(summary.results).toBe(bars.length);
    expect(summary.seconds).toBeGreaterThan(0);

    const replayed = readFileSync(outFile, 'utf8').trim().split('\n');
    expect(replayed).toHaveLength(bars.length);
    const got = new Map(
      replayed.map((line) => {
        const r = JSON.parse(line) as { symbol: string; ts: number };
        return [`${r.symbol}:5m:${r.ts}`, withoutLatency(line)];
      }),
    );
    expect([...got.keys()].sort()).toEqual([...reference.keys()].sort());
    for (const [id, body] of reference) expect({ id, body: got.get(id) }).toEqual({ id, body });

    // The comparison covers the strategic stage, not only its warm-up.
    const withRegime = [...got.values()].filter(
      (r) => (r as { strategic: { regime: unknown } }).strategic.regime !== null,
    );
    expect(withRegime.length).toBeGreaterThan(300);
    expect(readFileSync(reportFile, 'utf8')).toContain('<svg class="chart price-chart');
  });

  it('with --attach publishes to the running pipeline and leaves integrated_results to its users', async () => {
    const before = results.messages.length;
    const from = TO;
    const to = new Date(TO_MS + 30 * 300_000).toISOString();
    let stdout = '';
    let stderr = '';
    const out = new PassThrough().on('data', (d: Buffer) => (stdout += d.toString()));
    const err = new PassThrough().on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await runCli(
      ['replay', ...FILES, '--from', from, '--to', to, '--attach', '--timeout-ms', '30000'],
      {
        env: { ...process.env, AMQP_URL: vhost.url },
        out,
        err,
      },
    );
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const lines = stdout.trim().split('\n');
    expect(JSON.parse(lines.pop() as string)).toMatchObject({ bars: 90, results: 90 });
    const ids = lines.map((l) => {
      const r = JSON.parse(l) as { symbol: string; ts: number };
      return `${r.symbol}:5m:${r.ts}`;
    });
    expect(new Set(ids).size).toBe(90);
    // The pipeline's own consumers still got every one of them.
    await waitFor(
      () => results.messages.length >= before + 90,
      30_000,
      'the results on integrated_results',
    );
    expect(
      results.messages
        .slice(before)
        .map((m) => m.messageId)
        .sort(),
    ).toEqual([...ids].sort());
  });
});
