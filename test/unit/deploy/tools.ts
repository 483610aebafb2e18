import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The repository's deploy/ folder. */
export const DEPLOY = join(__dirname, '../../../deploy');

/** Runs a tool, failing with the install line when it is missing. */
export function run(tool: string, args: string[], cwd = DEPLOY): { status: number; out: string } {
  const r = spawnSync(tool, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(
      `${tool} is not installed: apt-get install -y prometheus prometheus-alertmanager (.ci/run does this)`,
    );
  }
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** A file of an installed Debian package whose path matches `pattern` (`dpkg -L`), or null. */
export function packageFile(pkg: string, pattern: RegExp): string | null {
  const r = spawnSync('dpkg', ['-L', pkg], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return r.stdout.split('\n').find((l) => pattern.test(l)) ?? null;
}
