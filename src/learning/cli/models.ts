/**
 * Model versions on disk.
 *   tsx src/learning/cli/models.ts --dir <registry> list
 *   tsx src/learning/cli/models.ts --dir <registry> promote <version>
 *   tsx src/learning/cli/models.ts --dir <registry> rollback [<version>]
 */
import { ModelRegistry } from '../registry';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const d = args.indexOf('--dir');
  if (d < 0 || !args[d + 1]) throw new RangeError('usage: models --dir <registry> list|promote <v>|rollback [<v>]');
  const registry = new ModelRegistry(args[d + 1] as string);
  const [command, version] = args.filter((_, i) => i !== d && i !== d + 1);
  if (command === 'list') {
    const current = await registry.latestPromoted();
    for (const v of await registry.list()) {
      const m = await registry.meta(v);
      process.stdout.write(`${v === current ? '*' : ' '} ${v} parent=${m.parent ?? '-'} created=${m.created} sharpe=${m.metrics?.sharpe ?? '-'}\n`);
    }
  } else if (command === 'promote' && version) {
    await registry.promote(version);
    process.stdout.write(`promoted ${version}\n`);
  } else if (command === 'rollback') {
    process.stdout.write(`current ${(await registry.rollback(version)) ?? 'none (seeded initial policy)'}\n`);
  } else {
    throw new RangeError('usage: models --dir <registry> list|promote <v>|rollback [<v>]');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
