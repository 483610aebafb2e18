import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCli } from '../../../src/cli/main';
import { randomResults } from './fixtures';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = new PassThrough().on('data', (d: Buffer) => (out += d.toString()));
  const e = new PassThrough().on('data', (d: Buffer) => (err += d.toString()));
  // An unreachable broker: `report` must not need one.
  const code = await runCli(args, {
    env: { ...process.env, AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' },
    out: o,
    err: e,
  });
  return { code, out, err };
}

describe('pipeline report', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'report-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the HTML report of a results file without a broker, with the costs it was given', async () => {
    const file = join(dir, 'results.jsonl');
    writeFileSync(
      file,
      `${randomResults(['AAA', 'BBB'], 120, 3)
        .map((r) => JSON.stringify(r))
        .join('\n')}\n`,
    );
    const html = join(dir, 'report.html');
    const r = await cli([
      'report',
      file,
      '--out',
      html,
      '--fee-bps',
      '5',
      '--half-spread-bps',
      '2.5',
    ]);
    expect(r).toMatchObject({ code: 0 });
    expect(r.err).toContain('report of 240 results');
    const text = readFileSync(html, 'utf8');
    expect(text).toContain('fee <b>5 bp</b> + half-spread <b>2.5 bp</b>');
    expect(text).toContain('data-symbol="AAA"');
    expect(text).toContain('data-symbol="BBB"');
  });

  it('names the first line that is not a result, and exits 1', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify(randomResults(['AAA'], 1, 3)[0])}\n{"v":1,"symbol":"AAA"}\n`,
    );
    const r = await cli(['report', file, '--out', join(dir, 'x.html')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.jsonl: line 2: not an integrated result/);
  });

  it('refuses a missing --out or a negative fee with the usage (exit 64)', async () => {
    expect((await cli(['report', join(dir, 'results.jsonl')])).code).toBe(64);
    const r = await cli([
      'report',
      join(dir, 'results.jsonl'),
      '--out',
      join(dir, 'y.html'),
      '--fee-bps=-1',
    ]);
    expect(r.code).toBe(64);
    expect(r.err).toContain("option '--fee-bps <BP>' argument '-1' is invalid. It must be a number >= 0.");
  });
});
