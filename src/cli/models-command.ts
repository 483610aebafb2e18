import { join } from 'node:path';
import { announcePromotion } from '../broker/model-announcement';
import { EXCHANGE_INTERNAL, routingKeys } from '../broker/topology';
import type { ModelRegistry } from '../learning/registry';
import { agentsRuntime, SHIPPED_MODEL_DIR } from './agents-data';
import { CliUsageError, ExitCode, defineCommand, describeError, type CommandContext, type ParsedCommandLine } from './common';
import { trainAgents, TRAIN_OPTIONS } from './train-agents';

const HELP = `Versions of the trading agents in a model registry (a directory: versions/<version>/ and promoted.json).
--dir defaults to the running pipeline's registry, <PIPELINE_DATA_DIR>/models.

  list      every version, oldest first; '*' marks the current (promoted) one
  promote   makes <version> current, then announces it on ${EXCHANGE_INTERNAL} ${routingKeys.model()}
            (AMQP_URL) so that running tactical workers swap to it between bars
  rollback  goes back to <version>, or without one to the version promoted before the current one,
            and announces it like promote (the seeded initial policy cannot be announced: workers
            take it when they restart)
  train     trains the three agents offline (the default 80 iterations took 15 minutes on the
            shared 2-core machine at load average 8-12) and saves the team as a new promoted version
            in --out; the shipped model is made with the defaults. Training data: the first two
            thirds of every real symbol in --data (minus its last 10 %, kept for checkpoint
            selection) and seeded synthetic markets, each also mirrored (a rise becomes a fall).
            Same command, same weights.

Exit status: 0 done; 1 failed (e.g. an unknown version: "pipeline models list" shows them);
2 a bad setting; 3 the registry changed but the announcement failed (workers swap on restart);
64 bad arguments.`;

const OPTIONS = {
  dir: { type: 'string', value: 'registry', description: 'model registry (default: <PIPELINE_DATA_DIR>/models)' },
  'no-announce': { type: 'boolean', description: 'change the registry only: workers take the version when they restart' },
  ...TRAIN_OPTIONS,
} as const;

async function run({ values, positionals }: ParsedCommandLine<typeof OPTIONS>, ctx: CommandContext): Promise<number> {
  const [sub, version] = positionals;
  if (sub === 'train') return trainAgents(values, ctx);
  const dir = values.dir ?? join(ctx.config.dataDir, 'models');
  const { openModelRegistry } = agentsRuntime();
  const registry = openModelRegistry(dir);
  const listHint = `"pipeline models list${values.dir === undefined ? '' : ` --dir ${dir}`}" shows the versions`;
  let current: string | null;
  switch (sub) {
    case 'list': {
      const versions = await registry.list();
      if (versions.length === 0) {
        ctx.err.write(`no model versions in ${dir} (pass --dir <registry>; the shipped one is ${SHIPPED_MODEL_DIR})\n`);
        return ExitCode.Ok;
      }
      const promoted = await registry.latestPromoted();
      for (const v of versions) {
        const m = await registry.meta(v);
        const verdict = (m.metrics?.verdict as { reason?: string } | undefined)?.reason;
        ctx.out.write(
          `${v === promoted ? '*' : ' '} ${v} parent=${m.parent ?? '-'} created=${m.created} sharpe=${String(m.metrics?.sharpe ?? '-')}${verdict ? ` (${verdict})` : ''}\n`,
        );
      }
      return ExitCode.Ok;
    }
    case 'promote':
      if (version === undefined) throw new CliUsageError(`models promote needs a version; ${listHint}`);
      if (!(await exists(registry, version))) return unknownVersion(ctx, dir, version, listHint);
      await registry.promote(version);
      current = version;
      ctx.out.write(`promoted ${version}\n`);
      break;
    case 'rollback':
      if (version !== undefined && !(await exists(registry, version))) return unknownVersion(ctx, dir, version, listHint);
      current = await registry.rollback(version);
      ctx.out.write(`current ${current ?? 'none (seeded initial policy)'}\n`);
      break;
    default:
      throw new CliUsageError(
        sub === undefined ? 'models needs list, promote, rollback or train' : `unknown models command ${JSON.stringify(sub)}: use list, promote, rollback or train`,
      );
  }
  if (values['no-announce'] === true) return ExitCode.Ok;
  if (current === null) {
    ctx.err.write('not announced: running workers keep their version until they restart (the seeded initial policy has no saved version)\n');
    return ExitCode.Ok;
  }
  try {
    await announcePromotion(ctx.config.amqpUrl, registry, current);
    ctx.out.write(`announced ${current} on ${EXCHANGE_INTERNAL} ${routingKeys.model()}\n`);
    return ExitCode.Ok;
  } catch (err) {
    ctx.err.write(
      `warning: ${current} is current in the registry but the announcement failed (${describeError(err)}); running workers swap when they restart, or run this again with AMQP_URL set\n`,
    );
    return 3;
  }
}

async function exists(registry: ModelRegistry, version: string): Promise<boolean> {
  return (await registry.list()).includes(version);
}

function unknownVersion(ctx: CommandContext, dir: string, version: string, listHint: string): number {
  ctx.err.write(`model version ${version} does not exist in ${dir}: ${listHint}\n`);
  return ExitCode.Failure;
}

/** `pipeline models`: list, promote, roll back and train model versions. */
export const modelsCommand = defineCommand({
  options: OPTIONS,
  subcommands: {
    list: { description: "every version, oldest first; '*' marks the current one", options: ['dir'] },
    promote: { description: 'make <version> current and announce it', args: '[version]', options: ['dir', 'no-announce'] },
    rollback: { description: 'go back to <version>, or to the one promoted before the current one', args: '[version]', options: ['dir', 'no-announce'] },
    train: { description: 'train the three agents offline and save them as a new promoted version', options: ['out', 'iterations', 'seed', 'data'] },
  },
  help: HELP,
  run,
  offline: true,
});
