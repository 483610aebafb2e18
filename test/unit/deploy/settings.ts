import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type PipelineConfig } from '../../../src/config/config';

/** Settings of the gateway contract (DESIGN, helper "gateway"); validated here until config.ts knows them. */
const CONTRACT = ['PIPELINE_ROLES', 'GATEWAY_HOST', 'GATEWAY_PORT', 'GATEWAY_API_KEYS_FILE'];
const ROLES = ['strategic', 'tactical', 'trainer', 'gateway'];
const configSource = readFileSync(join(__dirname, '../../../src/config/config.ts'), 'utf8');

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
    if (!CONTRACT.includes(k) || configSource.includes(`'${k}'`)) forLoader[k] = v;
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
