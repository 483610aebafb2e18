/**
 * `pipeline replay --dry-run` reads the files only (no broker: AMQP_URL points nowhere) and prints
 * per symbol the bars, span, files and joins, then the estimated time from the last recorded rate
 * (or the scale benchmark's) and the estimated size of the results.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../../../src/cli/main';
import { BENCH_REPLAY_RATE, recordReplayRate } from '../../../src/cli/replay-rate';
import { zipOf } from '../../fixtures/zip-writer';

jest.setTimeout(60_000);

const T0 = Date.UTC(2024, 0, 1);
const kline = (i: number): string => `${T0 + i * 300_000},10,11,9,10,1,${T0 + i * 300_000 + 299_999},10,1,0,0,0`;

describe('pipeline replay --dry-run', () => {
  let dir: string;
  let savedCache: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'replay-dry-run-'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'BTCUSDT-5m-2024-01.zip'), zipOf({ 'a.csv': [0, 1, 2, 3].map(kline).join('\n') }));
    writeFileSync(join(dir, 'data', 'BTCUSDT-5m-2024-02.zip'), zipOf({ 'b.csv': [3, 4, 7].map(kline).join('\n') }));
    writeFileSync(
      join(dir, 'data', 'ETHUSDT_5m.csv'),
      `timestamp,open,high,low,close,volume\n${[0, 1].map((i) => `${T0 + i * 300_000},1,2,0.5,1.5,3`).join('\n')}\n`,
    );
    savedCache = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = join(dir, 'cache');
  });
  afterAll(() => {
    if (savedCache === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = savedCache;
    rmSync(dir, { recursive: true, force: true });
  });

  async function dryRun(): Promise<{ code: number; out: string }> {
    let out = '';
    const o = new PassThrough().on('data', (d: Buffer) => (out += d.toString()));
    const code = await runCli(['replay', join(dir, 'data'), '--dry-run'], {
      env: { ...process.env, AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' },
      out: o,
      err: new PassThrough(),
    });
    return { code, out };
  }

  it('prints bars, span, joins, estimated time and results size without a broker', async () => {
    const { code, out } = await dryRun();
    expect(code).toBe(0);
    expect(out).toMatch(/^BTCUSDT\s+6\s+2024-01-01T00:00Z\s+2024-01-01T00:35Z\s+2\s+1\s+1 \(2\)$/m);
    expect(out).toMatch(/^ETHUSDT\s+2\s+2024-01-01T00:00Z\s+2024-01-01T00:05Z\s+1\s+0\s+0 \(0\)$/m);
    expect(out).toContain('total: 8 bars of 2 symbols');
    expect(out).toContain(`at ${BENCH_REPLAY_RATE.barsPerSecond} bars/s (no replay recorded on this machine`);
    expect(out).toMatch(/estimated results: 0 MB \(964 bytes a result\)/);
  });

  it('estimates from the last replay recorded on this machine', async () => {
    await recordReplayRate({ barsPerSecond: 4, bars: 20_000, symbols: 3 });
    const { out } = await dryRun();
    expect(out).toMatch(/estimated time: 2 s at 4 bars\/s \(the last replay on this machine, 20000 bars of 3 symbols/);
  });
});
