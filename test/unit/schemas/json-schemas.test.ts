import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jsonSchemas } from '../../../schemas/json-schemas';

describe('generated JSON Schema files', () => {
  it.each(Object.entries(jsonSchemas()))('schemas/json/%s.schema.json is up to date (run npm run schemas)', (name, schema) => {
    const file = join(__dirname, '../../../schemas/json', `${name}.schema.json`);
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(schema, null, 2)}\n`);
  });
});
