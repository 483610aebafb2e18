/**
 * Generates docs/configuration.md from the environment schema: each setting's name, default and
 * allowed values come from {@link EnvSchema} itself (through zod's JSON Schema export), and its
 * description from the TSDoc comment above it in config.ts. So the reference cannot describe a
 * setting that does not exist, miss one that does, or show a default the code does not use.
 *
 * `npm run docs:config` rewrites the file; `npm run docs:config -- --check` exits 1 when it is out of
 * date (a unit test does the same). Development tooling only: run through tsx from the sources (it
 * reads config.ts), never imported by the pipeline.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as ts from 'typescript';
import { z } from 'zod';
import { EnvSchema } from './config';

/** One setting as the reference shows it. */
export interface SettingReference {
  readonly name: string;
  /** The schema's default, as a string (`''` for an empty default). */
  readonly defaultValue: string;
  /** What the schema accepts, in words (`integer 0–65535`, `one of quorum, classic`). */
  readonly allowed: string;
  /** The TSDoc text above the setting in config.ts, tags removed; `''` when it has none. */
  readonly description: string;
  /** The TSDoc `@defaultValue`, if the comment has one (checked against the schema by a test). */
  readonly documentedDefault: string | null;
}

/** Where the generator reads the descriptions and writes the reference, relative to the repository. */
export const CONFIG_SOURCE = 'src/config/config.ts';
export const REFERENCE_FILE = 'docs/configuration.md';

const REPO_ROOT = join(__dirname, '..', '..');

interface TsDoc {
  description: string;
  defaultValue: string | null;
}

/** The TSDoc comment of each property of `EnvSchema`'s object literal in the given source text. */
export function readTsDocs(source: string): Map<string, TsDoc> {
  const file = ts.createSourceFile('config.ts', source, ts.ScriptTarget.ES2022, true);
  let literal: ts.ObjectLiteralExpression | undefined;
  const visit = (node: ts.Node): void => {
    if (
      ts.isVariableDeclaration(node) &&
      node.name.getText(file) === 'EnvSchema' &&
      node.initializer !== undefined &&
      ts.isCallExpression(node.initializer)
    ) {
      const arg = node.initializer.arguments[0];
      if (arg !== undefined && ts.isObjectLiteralExpression(arg)) literal = arg;
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  if (literal === undefined)
    throw new Error(`${CONFIG_SOURCE}: no EnvSchema = z.object({ ... }) found`);
  const docs = new Map<string, TsDoc>();
  for (const property of literal.properties) {
    if (!ts.isPropertyAssignment(property)) continue;
    const ranges = ts.getLeadingCommentRanges(source, property.getFullStart()) ?? [];
    const block = ranges
      .map((r) => source.slice(r.pos, r.end))
      .filter((text) => text.startsWith('/**'))
      .pop();
    docs.set(property.name.getText(file), parseTsDoc(block ?? ''));
  }
  return docs;
}

/** A `/** ... *\/` block as text: paragraphs kept, lines joined, `@defaultValue` taken out. */
function parseTsDoc(block: string): TsDoc {
  const lines = block
    .replace(/^\/\*\*/, '')
    .replace(/\*\/$/, '')
    .split('\n')
    .map((line) => line.replace(/^\s*\* ?/, '').trimEnd());
  const text = lines.join('\n').trim();
  const at = text.search(/(^|\s)@defaultValue\b/);
  const body = at < 0 ? text : text.slice(0, at);
  const tag =
    at < 0
      ? null
      : text
          .slice(at)
          .replace(/^\s*@defaultValue\s*/, '')
          .trim();
  const description = body
    .split(/\n\s*\n/)
    .map((paragraph) => paragraph.replace(/\s*\n\s*/g, ' ').trim())
    .filter((paragraph) => paragraph !== '')
    .join('\n\n');
  return { description, defaultValue: tag };
}

interface JsonSchemaProperty {
  default?: unknown;
  type?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
}

const number = (n: number): string => n.toLocaleString('en-US');

function allowedText(p: JsonSchemaProperty): string {
  if (p.enum !== undefined) return `one of ${p.enum.map((v) => `\`${String(v)}\``).join(', ')}`;
  if (p.type === 'integer') {
    if (p.minimum !== undefined && p.maximum !== undefined)
      return `integer ${number(p.minimum)}–${number(p.maximum)}`;
    return 'integer';
  }
  if (p.pattern !== undefined) return `matches \`${p.pattern}\``;
  if (p.minLength !== undefined && p.minLength > 0) return 'non-empty string';
  return 'string';
}

/** Every setting of the schema, in schema order. */
export function settingsReference(
  source = readFileSync(join(REPO_ROOT, CONFIG_SOURCE), 'utf8'),
): SettingReference[] {
  const docs = readTsDocs(source);
  const json = z.toJSONSchema(EnvSchema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, JsonSchemaProperty>;
  };
  return Object.keys(EnvSchema.shape).map((name) => {
    const property = json.properties?.[name] ?? {};
    const doc = docs.get(name);
    const fallback = property.default;
    return {
      name,
      defaultValue:
        typeof fallback === 'string' ||
        typeof fallback === 'number' ||
        typeof fallback === 'boolean'
          ? String(fallback)
          : '',
      allowed: allowedText(property),
      description: doc?.description ?? '',
      documentedDefault: doc?.defaultValue ?? null,
    };
  });
}

/** Sections of the reference, in order; a setting goes to the first whose test it passes. */
const SECTIONS: readonly { title: string; has: (name: string) => boolean }[] = [
  {
    title: 'Connections, health, logs and diagnostics',
    has: (n) => !n.startsWith('PIPELINE_') && !n.startsWith('GATEWAY_'),
  },
  { title: 'Pipeline', has: (n) => n.startsWith('PIPELINE_') },
  { title: 'Gateway', has: (n) => n.startsWith('GATEWAY_') },
];

const anchor = (name: string): string => name.toLowerCase();
const cell = (text: string): string => text.replace(/\|/g, '\\|');

/** The Markdown of docs/configuration.md. */
export function renderReference(settings: readonly SettingReference[]): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    `<!-- Generated by \`npm run docs:config\` from ${CONFIG_SOURCE} (the zod schema and the TSDoc of`,
    '     each setting). Do not edit by hand: edit the comment in config.ts and run it again. -->',
    '',
    'Every process (supervisor, workers, CLI, demo) reads its environment once, at start, through',
    `[${CONFIG_SOURCE}](../${CONFIG_SOURCE}). An empty value counts as unset. A bad value, an unknown`,
    '`PIPELINE_*` variable, or a variable that looks like a misspelt setting (`AMPQ_URL`, `REDSI_URL`,',
    "`amqp_url`; other programs' variables such as `REDIS_HOST` are left alone) stops the process at",
    'start with exit code **2** and one line naming the variable and what is allowed (never a',
    'password):',
    '',
    '```',
    'configuration error: AMPQ_URL is not a setting; did you mean AMQP_URL? rename it',
    '```',
    '',
    '`PIPELINE_QUEUE_TYPE`, `PIPELINE_MAX_ATTEMPTS` and `PIPELINE_SHARDS` are fixed per vhost: the first',
    "two are stored in the queues' arguments when the queues are first declared, and the shard count",
    'in the bindings. Changing one on a vhost whose queues exist fails the declaration',
    '(`PRECONDITION_FAILED (inequivalent arg …)`, fatal: exit 2, and the supervisor stops instead of',
    'restarting) or leaves old bindings behind. Use a new vhost, or delete the queues first; the CLI',
    'declares the topology with its own environment and is bound by the same rule. `PIPELINE_SHARDS`',
    'is the exception: `pipeline shards resize N` changes it with bars flowing (docs/scaling.md).',
    '',
    '| setting | default | allowed |',
    '| --- | --- | --- |',
  ];
  for (const s of settings)
    out.push(
      `| [\`${s.name}\`](#${anchor(s.name)}) | ${s.defaultValue === '' ? '*(empty)*' : `\`${cell(s.defaultValue)}\``} | ${cell(s.allowed)} |`,
    );
  for (const section of SECTIONS) {
    const inSection = settings.filter((s) => SECTIONS.find((x) => x.has(s.name)) === section);
    if (inSection.length === 0) continue;
    out.push('', `## ${section.title}`);
    for (const s of inSection) {
      out.push(
        '',
        `### ${s.name}`,
        '',
        `Default: ${s.defaultValue === '' ? '*(empty)*' : `\`${s.defaultValue}\``}. Allowed: ${s.allowed}.`,
        '',
        s.description === '' ? '*(No description in config.ts.)*' : s.description,
      );
    }
  }
  out.push('');
  return out.join('\n');
}

/** The reference as it should be now. */
export function currentReference(): string {
  return renderReference(settingsReference());
}

function main(argv: readonly string[]): number {
  const target = join(REPO_ROOT, REFERENCE_FILE);
  const wanted = currentReference();
  let existing = '';
  try {
    existing = readFileSync(target, 'utf8');
  } catch {
    existing = '';
  }
  if (argv.includes('--check')) {
    if (existing === wanted) return 0;
    process.stderr.write(
      `${relative(process.cwd(), target)} is out of date: run npm run docs:config\n`,
    );
    return 1;
  }
  if (existing !== wanted) writeFileSync(target, wanted);
  process.stdout.write(
    `${relative(process.cwd(), target)} ${existing === wanted ? 'unchanged' : 'written'}\n`,
  );
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
