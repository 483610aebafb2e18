import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { COMMANDS, runCli } from '../../../src/cli/main';
import { TacticalPolicy } from '../../../src/learning/policy';
import { BUNDLED_MODEL_DIR, openModelRegistry } from '../../../src/state/model-files';

interface Run {
  code: number;
  out: string;
  err: string;
}

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** An AMQP_URL nothing listens on: a command that reached the broker check would exit 2. */
const NO_BROKER = { AMQP_URL: 'amqp://guest:guest@127.0.0.1:1', PIPELINE_STARTUP_WAIT_MS: '0' };

async function cli(args: string[], env: NodeJS.ProcessEnv = NO_BROKER): Promise<Run> {
  const out = sink();
  const err = sink();
  const code = await runCli(args, { env, out: out.stream, err: err.stream });
  return { code, out: out.text(), err: err.text() };
}

describe('pipeline (one command on commander)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pipeline-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists every command in --help, and exits 64 without one', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const name of ['publish', 'results', 'replay', 'report', 'dlq', 'state', 'models', 'eval', 'mappo-check']) {
      expect(help.out).toContain(`  ${name}`);
    }
    const none = await cli([]);
    expect(none.code).toBe(64);
    expect(none.err).toContain('Usage: pipeline <command>');
  });

  it('prints each command\'s usage for --help, -h and "help <command>", before reading any setting or touching anything', async () => {
    // A setting that would stop every command (exit 2) shows that help comes first.
    const badEnv = { ...NO_BROKER, PIPELINE_SHARDS: 'many' };
    for (const entry of COMMANDS) {
      for (const args of [[entry.name, '--help'], [entry.name, '-h'], ['help', entry.name]]) {
        const r = await cli(args, badEnv);
        expect({ args, code: r.code, err: r.err }).toEqual({ args, code: 0, err: '' });
        expect(r.out).toMatch(new RegExp(`^Usage: pipeline ${entry.name} `));
      }
    }
  });

  it('has no side effect on --help of a subcommand: models train --help trains nothing', async () => {
    const out = join(dir, 'never-written');
    for (const args of [['models', 'train', '--help', '--out', out], ['models', 'promote', 'v0001', '--help', '--dir', out], ['eval', '--out', out, '-h']]) {
      const r = await cli(args);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^Usage:/);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('exits 64 on an unknown command or option, saying what to do', async () => {
    const unknown = await cli(['publsh']);
    expect(unknown.code).toBe(64);
    expect(unknown.err).toContain("unknown command 'publsh'");
    expect(unknown.err).toContain('(Did you mean publish?)');
    const option = await cli(['models', 'list', '--nope']);
    expect(option.code).toBe(64);
    expect(option.err).toBe(`pipeline models list: unknown option '--nope' (see "pipeline models list --help")\n`);
    for (const [args, message] of [
      [['dlq', 'lst'], 'pipeline dlq has no subcommand "lst": use list, replay, purge'],
      [['state'], 'pipeline state needs a subcommand: use check, accept-loss'],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code).toBe(64);
      expect(r.err).toContain(message);
      expect(r.err).not.toContain('nothing accepts connections'); // refused before the broker check
    }
    const help = await cli(['help', 'nope']);
    expect(help.code).toBe(64);
  });

  it('refuses a bad option value in one line naming the option and the fix, before any setting or the broker', async () => {
    const badEnv = { ...NO_BROKER, PIPELINE_SHARDS: 'many' };
    const count = await cli(['results', '--count', '-1'], badEnv);
    expect(count).toEqual({
      code: 64,
      out: '',
      err: `pipeline results: option '--count <N>' argument '-1' is invalid. It must be an integer >= 0. (see "pipeline results --help")\n`,
    });
    const fee = await cli(['eval', '--fee', '0.5'], badEnv);
    expect(fee.code).toBe(64);
    expect(fee.err).toContain("option '--fee <f>' argument '0.5' is invalid. It must be a number from 0 to 0.1.");
    const format = await cli(['results', '--format', 'xml'], badEnv);
    expect(format.code).toBe(64);
    expect(format.err).toContain('Allowed choices are json, table.');
  });

  it('shows each option with its description and default in the command\'s help', async () => {
    const r = await cli(['publish', '--help']);
    expect(r.out).toMatch(/--max-unconfirmed <N> +bars awaiting a confirm before publishing waits \(default: 1000\)/);
    expect(r.out).toContain('Exit status: 0 when every row was published');
    const sub = await cli(['models', 'train', '--help']);
    expect(sub.out).toMatch(/^Usage: pipeline models train \[options\]/);
    expect(sub.out).toMatch(/--iterations <N> +training iterations \(default: 80\)/);
    expect(sub.out).not.toContain('--no-announce');
  });

  it('exits 2 naming the setting when the configuration is wrong', async () => {
    const r = await cli(['models', 'list'], { ...NO_BROKER, PIPELINE_SHARDS: 'many' });
    expect(r.code).toBe(2);
    expect(r.err).toContain('PIPELINE_SHARDS');
  });

  it('exits 2 naming AMQP_URL when a broker command cannot reach the broker', async () => {
    const r = await cli(['results', '--count', '1']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('AMQP_URL');
  });

  describe('models', () => {
    let registryDir: string;
    beforeAll(async () => {
      registryDir = join(dir, 'models');
      const registry = openModelRegistry(registryDir, { seedFrom: BUNDLED_MODEL_DIR, keepVersions: 0 });
      // Seeded from the shipped model.
      if ((await registry.latestPromoted()) !== 'v0001') throw new Error('the registry was not seeded with v0001');
      await registry.save(TacticalPolicy.initial(3), { parent: 'v0001', metrics: { sharpe: 0.5 } });
    });

    it('promote of a version that does not exist says so and how to list the versions', async () => {
      const r = await cli(['models', 'promote', 'v9999', '--dir', registryDir]);
      expect(r.code).toBe(1);
      expect(r.err).toBe(`model version v9999 does not exist in ${registryDir}: "pipeline models list --dir ${registryDir}" shows the versions\n`);
      expect(r.err).not.toContain('ENOENT');
      const rollback = await cli(['models', 'rollback', 'v0042', '--dir', registryDir, '--no-announce']);
      expect(rollback.code).toBe(1);
      expect(rollback.err).toContain('model version v0042 does not exist');
    });

    it('lists, promotes and rolls back, marking the current version', async () => {
      const before = await cli(['models', 'list', '--dir', registryDir]);
      expect(before.code).toBe(0);
      expect(before.out).toMatch(/^\* v0001 parent=- .*\n {2}v0002 parent=v0001 .*sharpe=0\.5\n$/);
      const promote = await cli(['models', 'promote', 'v0002', '--dir', registryDir, '--no-announce']);
      expect(promote).toEqual({ code: 0, out: 'promoted v0002\n', err: '' });
      expect((await cli(['models', 'list', '--dir', registryDir])).out).toMatch(/^ {2}v0001.*\n\* v0002/);
      const rollback = await cli(['models', 'rollback', '--dir', registryDir, '--no-announce']);
      expect(rollback).toEqual({ code: 0, out: 'current v0001\n', err: '' });
    });

    it('a failed announcement leaves the registry changed and exits 3 with a warning', async () => {
      const r = await cli(['models', 'promote', 'v0002', '--dir', registryDir]);
      expect(r.code).toBe(3);
      expect(r.out).toBe('promoted v0002\n');
      expect(r.err).toMatch(/^warning: v0002 is current in the registry but the announcement failed/);
    });

    it('refuses options of train on the other subcommands, and a missing subcommand', async () => {
      expect((await cli(['models', 'list', '--iterations', '3', '--dir', registryDir])).err).toBe(
        `pipeline models list: unknown option '--iterations' (see "pipeline models list --help")\n`,
      );
      expect((await cli(['models', '--dir', registryDir])).code).toBe(64);
      expect((await cli(['models', 'train', 'extra'])).code).toBe(64);
    });
  });
});
