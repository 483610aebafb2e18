/**
 * Generates the JSON Schema files in schemas/json/ from the zod schemas (`npm run schemas`).
 * A unit test fails when the checked-in files differ from what this would write.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { jsonSchemas } from './json-schemas';

const dir = join(__dirname, 'json');
mkdirSync(dir, { recursive: true });
for (const [name, schema] of Object.entries(jsonSchemas())) {
  writeFileSync(join(dir, `${name}.schema.json`), `${JSON.stringify(schema, null, 2)}\n`);
  process.stdout.write(`wrote schemas/json/${name}.schema.json\n`);
}
