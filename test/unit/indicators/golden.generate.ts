/**
 * Writes fixtures/golden.json, the digests {@link recordAll} takes of the indicators as they are now.
 * Run only to record a deliberate change of results or state layout (and say so in the commit):
 * `npx tsx test/unit/indicators/golden.generate.ts`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordAll } from './golden-cases';

const path = join(__dirname, 'fixtures', 'golden.json');
writeFileSync(path, `${JSON.stringify(recordAll(), null, 1)}\n`);
process.stdout.write(`wrote ${path}\n`);
