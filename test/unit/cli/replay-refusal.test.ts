/**
 * A replay's private pipeline (`requireOwnVhost`) starts only on a vhost of its own: it refuses a
 * broker that is not on this machine, a rabbitmqctl that cannot make the vhost, and a vhost that
 * already has consumers, each with one line naming the reason and --attach. Every refusal comes
 * before the first connection, so no broker is needed: rabbitmqctl is a script on PATH that logs its
 * calls. (test/integration/replay.test.ts checks the command's exit code 2 against the real broker.)
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/config';
import { rootLogger } from '../../../src/observability/logger';
import { PrivatePipelineStartError, startPrivatePipeline } from '../../../src/cli/private-pipeline';

jest.setTimeout(60_000);

/** A rabbitmqctl that logs its arguments and answers list_consumers with `consumers` lines. */
function fakeRabbitmqctl(dir: string, options: { failAddVhost?: boolean; consumers?: number }): string {
  const log = join(dir, 'calls.log');
  const lines = Array.from({ length: options.consumers ?? 0 }, (_, i) => `  echo "q${i}\tctag${i}\ttrue\t0\t[]"`);
  writeFileSync(
    join(dir, 'rabbitmqctl'),
    [
      '#!/bin/sh',
      `echo "$@" >> ${log}`,
      `if [ "$1" = add_vhost ] && [ ${options.failAddVhost === true ? 1 : 0} = 1 ]; then echo "Error: access refused" >&2; exit 69; fi`,
      'if [ "$1" = list_consumers ]; then',
      ...lines,
      '  :',
      'fi',
      'exit 0',
    ].join('\n'),
  );
  chmodSync(join(dir, 'rabbitmqctl'), 0o755);
  return log;
}

describe('startPrivatePipeline with requireOwnVhost', () => {
  let dir: string;
  let savedPath: string | undefined;
  const said: string[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'replay-refusal-'));
    savedPath = process.env.PATH;
    said.length = 0;
  });
  afterEach(() => {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(amqpUrl: string): Promise<PrivatePipelineStartError> {
    const config = loadConfig({ AMQP_URL: amqpUrl });
    const err = await startPrivatePipeline(config, {
      label: 'replay',
      keep: false,
      say: (line) => said.push(line),
      log: rootLogger('silent'),
      requireOwnVhost: true,
    }).then(
      async (p) => {
        await p.stop();
        return new Error('it started');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PrivatePipelineStartError);
    const e = err as PrivatePipelineStartError;
    expect(e.configError).toBe(true);
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.message).toMatch(/pass --attach/);
    return e;
  }

  it('refuses a broker that is not on this machine', async () => {
    const e = await start('amqp://guest:guest@192.0.2.1:5672');
    expect(e.message).toMatch(/192\.0\.2\.1.* is not a broker on this machine/);
    expect(said).toEqual([]);
  });

  it('refuses when rabbitmqctl cannot make the vhost', async () => {
    const log = fakeRabbitmqctl(dir, { failAddVhost: true });
    process.env.PATH = `${dir}:${savedPath ?? ''}`;
    const e = await start('amqp://guest:guest@127.0.0.1:5672');
    expect(e.message).toMatch(/rabbitmqctl could not make a private vhost/);
    expect(readFileSync(log, 'utf8')).toMatch(/^add_vhost pipeline-replay-/);
  });

  it('refuses a vhost that already has consumers and leaves that vhost alone', async () => {
    const log = fakeRabbitmqctl(dir, { consumers: 2 });
    process.env.PATH = `${dir}:${savedPath ?? ''}`;
    const e = await start('amqp://guest:guest@127.0.0.1:5672');
    expect(e.message).toMatch(/already has 2 consumer\(s\), so it is not private/);
    const calls = readFileSync(log, 'utf8');
    expect(calls).toMatch(/list_consumers -p pipeline-replay-/);
    expect(calls).not.toContain('delete_vhost');
  });
});
