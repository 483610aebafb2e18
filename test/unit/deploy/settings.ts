import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type PipelineConfig } from '../../../src/config/config';

/** Settings of the gateway contract (docs/gateway.md); validated here until config.ts knows them. */
const CONTRACT = ['PIPELINE_ROLES', 'GATEWAY_HOST', 'GATEWAY_PORT', 'GATEWAY_API_KEYS_FILE'];
const ROLES = ['strategic', 'tactical', 'trainer', 'gateway'];
const configSource = readFileSync(join(__dirname, '../../../src/config/config.ts'), 'utf8');

/**
 * Secret files exist only inside the container (mounted from deploy/secrets or a Kubernetes Secret);
 * here each `*_FILE` setting points at a stand-in with a well-formed example, so the loader checks the
 * rest of the container's settings and the file's format, not its absence on this machine.
 */
const SECRET_STANDINS: Record<string, string> = {
  GATEWAY_API_KEYS_FILE: '# role:key, one per line\nadmin:example-admin-key-000000000000\nviewer:example-viewer-key-00000000000\n',
};
let standinDir: string | null = null;
function standIn(name: string): string {
  standinDir ??= mkdtempSync(join(tmpdir(), 'deploy-secrets-'));
  const path = join(standinDir, name);
  writeFileSync(path, SECRET_STANDINS[name]!);
  return path;
}

/**
 * Validates one container's environment with the pipeline's own configuration loader (what the
 * process does at start) and the gateway contract's settings. Returns the problems (empty: valid).
 */
export function checkSettings(
  where: string,
  env: Record<string, string>,
): { problems: string[]; config: PipelineConfig | null; roles: string[] } {
  const problems: string[] = [];
  const forLoader: Record<string, string> = {};
  for (const [k, v] of Object.entries(env))
    if (!CONTRACT.includes(k) || configSource.includes(`'${k}'`))
      forLoader[k] = SECRET_STANDINS[k] !== undefined ? standIn(k) : v;
  let config: PipelineConfig | null = null;
  try {
    config = loadConfig(forLoader);
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
  }
  const roles = (env.PIPELINE_ROLES ?? ROLES.join(',')).split(',');
  for (const r of roles)
    if (!ROLES.includes(r))
      problems.push(`${where}: PIPELINE_ROLES names ${r}, not one of ${ROLES.join(', ')}`);
  if (env.GATEWAY_PORT !== undefined && !/^\d{1,5}$/.test(env.GATEWAY_PORT))
    problems.push(`${where}: GATEWAY_PORT ${env.GATEWAY_PORT} is not a port`);
  return { problems, config, roles };
}
