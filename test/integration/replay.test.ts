/**
 * Parity: `pipeline replay` of real bars (3 symbols, 450 bars each) gives the same results, apart
 * from latency_ms, as the same bars published one per message to a pipeline started by the test
 * fixtures with training off; so does a replay of the same bars as Binance kline archives (zip, ms
 * and µs open times, two files joined over an overlap). Without --attach the replay refuses a vhost
 * that has consumers (exit 2).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Bar } from '../../schemas/bar.schema';
import { IntegratedResultSchema } from '../../schemas/integrated-result.schema';
import * as amqp from 'amqplib';
import { BAR_BATCH_CONTENT_TYPE } from '../../schemas/bar-batch.schema';
import { EXCHANGE_INTERNAL, QUEUE_DEAD_LETTERS, QUEUE_RESULTS, routingKeys } from '../../src/broker/topology';
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
import { zipOf } from '../fixtures/zip-writer';

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
  let deadLetters: QueueCollector | undefined;
  let dir: string;
  /** The first test's replayed results, by id, without latency_ms. */
  let replayedById: Map<string, unknown> | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'replay-test-'));
    vhost = await createVhost('replay');
    pipeline = await startPipeline(vhost.url, { PIPELINE_TRAINING: 'off' });
    await waitHealthy(pipeline);
    results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    await results.start();
  });

  afterAll(async () => {
    await deadLetters?.stop();
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
    replayedById = got;
    expect([...got.keys()].sort()).toEqual([...reference.keys()].sort());
    for (const [id, body] of reference) expect({ id, body: got.get(id) }).toEqual({ id, body });

    // The comparison covers the strategic stage, not only its warm-up.
    const withRegime = [...got.values()].filter(
      (r) => (r as { strategic: { regime: unknown } }).strategic.regime !== null,
    );
    expect(withRegime.length).toBeGreaterThan(300);
    expect(readFileSync(reportFile, 'utf8')).toContain('<svg class="chart price-chart');
  });

  it('replays Binance kline archives as downloaded (ms and µs, two months overlapping) to the same results', async () => {
    expect(replayedById).toBeDefined();
    const btc = await readBars(FILES[0] as string);
    const row = (b: Bar, micros: boolean): string =>
      `${b.ts}${micros ? '000' : ''},${b.open},${b.high},${b.low},${b.close},${b.volume},${b.ts + 299_999},0,0,0,0,0`;
    // "March" in ms, "April" in µs (as Binance writes from 2025 on), repeating March's last 10 bars.
    writeFileSync(
      join(dir, 'BTCUSDT-5m-2025-03.zip'),
      zipOf({ 'BTCUSDT-5m-2025-03.csv': btc.slice(0, 200).map((b) => row(b, false)).join('\n') }),
    );
    writeFileSync(
      join(dir, 'BTCUSDT-5m-2025-04.zip'),
      zipOf({ 'BTCUSDT-5m-2025-04.csv': btc.slice(190).map((b) => row(b, true)).join('\n') }),
    );
    const outFile = join(dir, 'binance.jsonl');
    let stdout = '';
    let stderr = '';
    const out = new PassThrough().on('data', (d: Buffer) => (stdout += d.toString()));
    const err = new PassThrough().on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await runCli(['replay', join(dir, 'BTCUSDT-5m-2025-*.zip'), '--out', outFile], {
      env: { ...process.env, AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672', PIPELINE_TRAINING: 'off' },
      out,
      err,
    });
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    expect(stderr).toContain('BTCUSDT: 2 files joined; 10 overlapping bars skipped, 0 gaps');
    expect(JSON.parse(stdout.trim())).toMatchObject({ bars: 450, results: 450 });
    const lines = readFileSync(outFile, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(450);
    for (const line of lines) {
      const r = JSON.parse(line) as { symbol: string; ts: number };
      const id = `${r.symbol}:5m:${r.ts}`;
      expect({ id, body: withoutLatency(line) }).toEqual({ id, body: replayedById?.get(id) });
    }
  });

  it('without --attach refuses, exit 2, a vhost that already has consumers', async () => {
    // rabbitmqctl answers list_consumers with one consumer, as for a vhost that is someone else's.
    const bin = mkdtempSync(join(tmpdir(), 'replay-ctl-'));
    const savedPath = process.env.PATH;
    try {
      writeFileSync(
        join(bin, 'rabbitmqctl'),
        '#!/bin/sh\nif [ "$1" = list_consumers ]; then echo "q\tctag\ttrue\t0\t[]"; fi\nexit 0\n',
      );
      chmodSync(join(bin, 'rabbitmqctl'), 0o755);
      process.env.PATH = `${bin}:${savedPath ?? ''}`;
      let stderr = '';
      const err = new PassThrough().on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await runCli(['replay', FILES[0] as string, '--to', '2025-04-03T18:00:00Z'], {
        env: { ...process.env, AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672' },
        out: new PassThrough(),
        err,
      });
      expect(code).toBe(2);
      // The broker line every command prints, then the one line of the refusal.
      const lines = stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[1]).toMatch(/already has 1 consumer\(s\), so it is not private; pass --attach/);
    } finally {
      process.env.PATH = savedPath;
      rmSync(bin, { recursive: true, force: true });
    }
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

  it('takes a batch as one delivery: a bar out of order is dead-lettered alone, a malformed batch whole', async () => {
    deadLetters = new QueueCollector(vhost.url, QUEUE_DEAD_LETTERS);
    await deadLetters.start();
    const T0 = Date.UTC(2025, 0, 1);
    const bar = (symbol: string, slot: number): Bar => ({
      symbol, timeframe: '5m', ts: T0 + slot * 300_000, open: 100 + slot, high: 102 + slot, low: 99 + slot, close: 101 + slot, volume: 10,
    });
    const connection = await amqp.connect(vhost.url);
    try {
      const channel = await connection.createConfirmChannel();
      const send = (symbol: string, bars: Bar[]): void => {
        channel.publish(EXCHANGE_INTERNAL, routingKeys.bar('5m', symbol), Buffer.from(JSON.stringify({ v: 1, symbol, bars })), {
          persistent: true,
          contentType: BAR_BATCH_CONTENT_TYPE,
        });
      };
      // Slot 3 comes after slot 4 was accepted: out of order. Its neighbours in the batch go on.
      send('BATCHX', [0, 1, 2, 4].map((i) => bar('BATCHX', i)));
      send('BATCHX', [3, 5, 6].map((i) => bar('BATCHX', i)));
      // Two symbols in one batch: the schema refuses the whole message.
      send('BATCHY', [bar('BATCHY', 0), bar('BATCHZ', 1)]);
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    const ids = (): string[] =>
      results.messages.map((m) => String(m.messageId)).filter((id) => id.startsWith('BATCH'));
    await waitFor(() => ids().length >= 6 && deadLetters!.messages.length >= 2, 60_000, 'six results and two dead letters');
    expect(ids()).toEqual([0, 1, 2, 4, 5, 6].map((i) => `BATCHX:5m:${T0 + i * 300_000}`));
    const dead = deadLetters.messages;
    expect(dead).toHaveLength(2);
    const single = dead.find((m) => m.messageId === `BATCHX:5m:${T0 + 3 * 300_000}`);
    // As the single-bar message it stands for: `pipeline dlq replay` sends it through the public input.
    expect(single?.headers['x-original-exchange']).toBe('market.bars');
    expect(single?.headers['x-original-routing-key']).toBe('bars.5m.BATCHX');
    expect(JSON.parse(single!.body)).toEqual(bar('BATCHX', 3));
    expect(String(single!.headers['x-rejection-reason'])).toContain('out of order');
    const whole = dead.find((m) => m.messageId !== single!.messageId);
    expect(String(whole!.headers['x-rejection-reason'])).toContain('one symbol per batch');
  });
});
