import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnvSchema } from '../../../src/config/config';
import {
  CONFIG_SOURCE,
  REFERENCE_FILE,
  currentReference,
  readTsDocs,
  renderReference,
  settingsReference,
} from '../../../src/config/reference';

const ROOT = join(__dirname, '..', '..', '..');
const source = readFileSync(join(ROOT, CONFIG_SOURCE), 'utf8');

describe('configuration reference (docs/configuration.md)', () => {
  it('is what npm run docs:config generates from the schema now', () => {
    const committed = readFileSync(join(ROOT, REFERENCE_FILE), 'utf8');
    // On failure: run `npm run docs:config` and commit docs/configuration.md.
    expect(committed).toBe(currentReference());
  });

  it('lists every setting of the schema, each with a description', () => {
    const settings = settingsReference(source);
    expect(settings.map((s) => s.name)).toEqual(Object.keys(EnvSchema.shape));
    expect(settings.filter((s) => s.description.length < 20).map((s) => s.name)).toEqual([]);
    const reference = currentReference();
    for (const s of settings) expect(reference).toContain(`\n### ${s.name}\n`);
  });

  it("shows the schema's defaults, and every @defaultValue in config.ts agrees with them", () => {
    const settings = settingsReference(source);
    expect(settings.find((s) => s.name === 'HEALTH_PORT')).toMatchObject({
      defaultValue: '9464',
      allowed: 'integer 0–65,535',
    });
    expect(settings.find((s) => s.name === 'PIPELINE_QUEUE_TYPE')?.allowed).toBe(
      'one of `quorum`, `classic`',
    );
    const disagreeing = settings
      .filter(
        (s) =>
          s.defaultValue !== '' &&
          s.documentedDefault !== null &&
          s.documentedDefault !== s.defaultValue,
      )
      .map((s) => `${s.name}: @defaultValue ${s.documentedDefault}, schema ${s.defaultValue}`);
    expect(disagreeing).toEqual([]);
  });

  it("the README's key settings table shows the schema's defaults", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const defaults = new Map(settingsReference(source).map((s) => [s.name, s.defaultValue]));
    const rows = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| `([^`]*)` \|/gm)].map((m) => ({
      name: m[1]!,
      shown: m[2]!,
    }));
    expect(rows.length).toBeGreaterThanOrEqual(5);
    expect(
      rows.map((r) => ({ name: r.name, shown: defaults.get(r.name) ?? 'not a setting' })),
    ).toEqual(rows);
  });

  it('changes when a description in config.ts changes (so a stale file is caught)', () => {
    const edited = source.replace(
      "Port of the supervisor's `/health` and `/metrics` server",
      'Port of the health server',
    );
    expect(edited).not.toBe(source);
    expect(renderReference(settingsReference(edited))).not.toBe(currentReference());
  });

  it('reads paragraphs and the @defaultValue tag out of a TSDoc block', () => {
    const docs = readTsDocs(
      [
        'export const EnvSchema = z.object({',
        '  /**',
        '   * First line',
        '   * continues.',
        '   *',
        '   * Second paragraph. @defaultValue 7',
        '   */',
        '  A_SETTING: int(1, 9).default(7),',
        '  NO_DOC: z.string(),',
        '});',
      ].join('\n'),
    );
    expect(docs.get('A_SETTING')).toEqual({
      description: 'First line continues.\n\nSecond paragraph.',
      defaultValue: '7',
    });
    expect(docs.get('NO_DOC')).toEqual({ description: '', defaultValue: null });
  });
});
