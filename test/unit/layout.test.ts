/**
 * The layout rules of the code (what each folder may import and where names are built), checked on the syntax tree of
 * every .ts file under src/ and schemas/ (TypeScript's own parser; comments never count):
 *
 * 1. Compute folders (src/indicators, src/strategic, src/learning) import no broker (amqplib,
 *    src/broker), Redis (ioredis, src/state), filesystem (fs, fs/promises, node:fs...) or network
 *    module (net, http, https, fastify and @fastify/*, ws, src/gateway), nor the wiring folders
 *    (src/consumers, src/flows, src/supervisor, src/cli). Static imports, re-exports, `import()` and
 *    `require()` all count. Nor are they entry points: no `require.main`, `process.argv`,
 *    `process.exit` or `console` (a script's output is the CLI's business).
 * 2. Consumers contain no maths, checked pragmatically: src/consumers imports no value from a compute
 *    folder (types are fine) and calls none of Math.exp/log/sqrt/pow/tanh/atan/sin/cos.
 * 3. schemas/ imports nothing from src/.
 * 4. Exchange names, routing keys, message ids and `x-` header/argument names are built in
 *    src/broker/topology.ts only: outside it no string equal to an exchange name, no routing-key
 *    literal (`bars.…`, `results.…`, `reply.…`, `feedback.…`, `experience.…`, `models.promoted`), no
 *    `messageId:` spelt as a string or template literal, and, in files that use the broker (amqplib
 *    or src/broker), no `'x-…'` string.
 * 5. The environment (`process.env`) is read in src/config only.
 * 6. 30m periods are computed in src/util/periods.ts only: outside it no number equal to 30 minutes
 *    in ms (`1_800_000`, or a product of literals such as `30 * 60_000`) and no `TIMEFRAME_MS['30m']`.
 * 7. One module imports tfjs (`@tensorflow/…`): {@link TFJS_ORACLE}, the test oracle of the
 *    WebAssembly training engine. The pipeline trains and decides without it. This rule is also
 *    checked over test/, bench/ and scripts/.
 * 8. Files are replaced atomically by src/state/atomic-file.ts only (a temporary file with a unique
 *    name, fsync, rename): outside it no `rename`/`renameSync` from fs, except
 *    {@link RENAME_EXEMPT}'s whole-directory renames and log rotation.
 * 9. Quantiles, percentiles and medians have one definition, src/util/quantile.ts: outside it a
 *    function named like one (`median`, `quantile`, `percentile`, `p99`, `…Quantiles`; not `pct`, which formats a percentage) must
 *    call that module, and no rank is picked by hand (`xs[Math.floor(xs.length * 0.99)]`). Also
 *    checked over bench/, whose figures must be the same statistic as the pipeline's.
 * 10. SVG is drawn by the chart kit src/report/svg.ts only: no `<svg` literal elsewhere in src/.
 *
 * Each rule is also run on tiny fixtures that break it, so the check itself is shown to fail.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import * as topology from '../../src/broker/topology';

const ROOT = resolve(__dirname, '..', '..');

interface SourceFile {
  /** Path from the repository root, with `/`. */
  path: string;
  text: string;
}

interface Violation {
  rule: string;
  path: string;
  line: number;
  what: string;
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) out.push(...listTs(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

interface ImportRef {
  specifier: string;
  typeOnly: boolean;
  line: number;
}

function parse(file: SourceFile): ts.SourceFile {
  return ts.createSourceFile(file.path, file.text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

function lineOf(sf: ts.SourceFile, node: ts.Node): number {
  return sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
}

function walk(node: ts.Node, visit: (n: ts.Node) => void): void {
  visit(node);
  node.forEachChild((child) => walk(child, visit));
}

/** Every module a file imports: import/export declarations, `import()` and `require()`. */
function importsOf(sf: ts.SourceFile): ImportRef[] {
  const out: ImportRef[] = [];
  walk(sf, (n) => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier !== undefined && ts.isStringLiteral(n.moduleSpecifier)) {
      const clause = ts.isImportDeclaration(n) ? n.importClause : undefined;
      const typeOnly = ts.isImportDeclaration(n)
        ? clause !== undefined &&
          (clause.isTypeOnly ||
            (clause.name === undefined &&
              clause.namedBindings !== undefined &&
              ts.isNamedImports(clause.namedBindings) &&
              clause.namedBindings.elements.every((e) => e.isTypeOnly)))
        : n.isTypeOnly;
      out.push({ specifier: n.moduleSpecifier.text, typeOnly, line: lineOf(sf, n) });
    } else if (ts.isCallExpression(n) && n.arguments.length > 0 && ts.isStringLiteral(n.arguments[0] as ts.Node)) {
      const callee = n.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) {
        out.push({ specifier: (n.arguments[0] as ts.StringLiteral).text, typeOnly: false, line: lineOf(sf, n) });
      }
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      out.push({ specifier: n.argument.literal.text, typeOnly: true, line: lineOf(sf, n) });
    }
  });
  return out;
}

/** The repository path a relative specifier points at (without extension), or null for a package. */
function target(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  return relative(ROOT, resolve(ROOT, dirname(from), specifier)).split(sep).join('/');
}

const under = (path: string, folder: string): boolean => path === folder || path.startsWith(`${folder}/`);

const COMPUTE = ['src/indicators', 'src/strategic', 'src/learning'];
const FORBIDDEN_PACKAGES = /^(node:)?(fs|fs\/promises|net|http|https|http2|dgram|tls)$|^(amqplib|ioredis|fastify|ws)$|^@fastify\//;
const FORBIDDEN_FOLDERS = ['src/broker', 'src/state', 'src/gateway', 'src/consumers', 'src/flows', 'src/supervisor', 'src/cli'];
const MATH = new Set(['exp', 'log', 'sqrt', 'pow', 'tanh', 'atan', 'atan2', 'sin', 'cos']);

const EXCHANGE_NAMES = new Set(
  Object.entries(topology)
    .filter(([k, v]) => k.startsWith('EXCHANGE_') && typeof v === 'string')
    .map(([, v]) => v as string),
);
const ROUTING_KEY_TEMPLATE_HEADS = new Set(['bars.', 'results.', 'reply.', 'feedback.', 'experience.']);
const ROUTING_KEY_LITERAL = /^(models\.promoted|(bars|results|reply|feedback|experience)\.([A-Za-z0-9_*#-]+)(\.[A-Za-z0-9_*#-]+)*)$/;
const TOPOLOGY = 'src/broker/topology.ts';
const TFJS_ORACLE = 'test/unit/learning/helpers/tfjs-oracle.ts';
const TFJS_RULE = 'only the tfjs oracle imports tfjs';
const ATOMIC_FILE = 'src/state/atomic-file.ts';
/**
 * Renames that are not a file's atomic replacement: directories (a model version built under a
 * temporary name, a version renamed away) and the audit log's rotation (`audit.log` → `audit.log.1`).
 */
const RENAME_EXEMPT = new Set(['src/state/model-files.ts', 'src/gateway/audit.ts']);
const RENAMES = new Set(['rename', 'renameSync']);
const FS_MODULE = /^(node:)?fs(\/promises)?$/;
const PERIODS = 'src/util/periods.ts';
const QUANTILE = 'src/util/quantile.ts';
const QUANTILE_RULE = 'quantiles are computed in src/util/quantile.ts';
const QUANTILE_NAME = /^(median|quantiles?|percentiles?|p\d{2,3})$|(Median|Quantiles?|Percentiles?)$/;
const SVG_KIT = 'src/report/svg.ts';
const PERIOD_MS = 1_800_000; // the one copy outside src/util/periods.ts: what the rule looks for

/** The value of a product of numeric literals (`30 * 60_000`), or null for anything else. */
function literalProduct(e: ts.Expression): number | null {
  if (ts.isNumericLiteral(e)) return Number(e.text.replace(/_/g, ''));
  if (ts.isParenthesizedExpression(e)) return literalProduct(e.expression);
  if (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.AsteriskToken) {
    const l = literalProduct(e.left);
    const r = literalProduct(e.right);
    return l === null || r === null ? null : l * r;
  }
  return null;
}

/** The local names a file imports (values and types) from the module at repository path `module` (no extension). */
function namesImportedFrom(sf: ts.SourceFile, path: string, module: string): Set<string> {
  const names = new Set<string>();
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier) || target(path, st.moduleSpecifier.text) !== module) continue;
    const bindings = st.importClause?.namedBindings;
    if (bindings !== undefined && ts.isNamedImports(bindings)) for (const e of bindings.elements) names.add(e.name.text);
    else if (bindings !== undefined) names.add(bindings.name.text);
  }
  return names;
}

/** The name and body of a named function: a declaration, or a variable holding an arrow or function expression. */
function namedFunction(n: ts.Node): { name: string; body: ts.Node } | null {
  if (ts.isFunctionDeclaration(n) && n.name !== undefined && n.body !== undefined) return { name: n.name.text, body: n.body };
  if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer !== undefined && (ts.isArrowFunction(n.initializer) || ts.isFunctionExpression(n.initializer))) {
    return { name: n.name.text, body: n.initializer.body };
  }
  return null;
}

/** `Math.floor|ceil|round(a.length * 0.99)`-like: a rank computed from a length and a fraction literal. */
function isHandPickedRank(e: ts.Expression): boolean {
  if (!ts.isCallExpression(e) || !/^Math\.(floor|ceil|round)$/.test(e.expression.getText()) || e.arguments.length !== 1) return false;
  let arg = e.arguments[0] as ts.Expression;
  while (ts.isParenthesizedExpression(arg)) arg = arg.expression;
  if (!ts.isBinaryExpression(arg) || arg.operatorToken.kind !== ts.SyntaxKind.AsteriskToken) return false;
  const sides = [arg.left, arg.right];
  const isLength = (x: ts.Expression): boolean => ts.isPropertyAccessExpression(x) && x.name.text === 'length';
  const isFraction = (x: ts.Expression): boolean => ts.isNumericLiteral(x) && Number(x.text) > 0 && Number(x.text) < 1;
  return sides.some(isLength) && sides.some(isFraction);
}

/** Checks every rule on `files`; returns what breaks them. */
function checkLayout(files: readonly SourceFile[]): Violation[] {
  const violations: Violation[] = [];
  for (const file of files) {
    const sf = parse(file);
    const add = (rule: string, node: ts.Node | number, what: string): void =>
      void violations.push({ rule, path: file.path, line: typeof node === 'number' ? node : lineOf(sf, node), what });
    const imports = importsOf(sf);
    // 1. Compute folders.
    if (COMPUTE.some((c) => under(file.path, c))) {
      for (const imp of imports) {
        const t = target(file.path, imp.specifier);
        if (t === null ? FORBIDDEN_PACKAGES.test(imp.specifier) : FORBIDDEN_FOLDERS.some((f) => under(t, f))) {
          add('compute imports no broker, Redis, filesystem or network module', imp.line, imp.specifier);
        }
      }
      walk(sf, (n) => {
        if (!ts.isPropertyAccessExpression(n) || !ts.isIdentifier(n.expression)) return;
        const what = `${n.expression.text}.${n.name.text}`;
        if (['require.main', 'process.argv', 'process.exit'].includes(what) || n.expression.text === 'console') {
          add('compute folders are no entry points', n, what);
        }
      });
    }
    // 2. Consumers.
    if (under(file.path, 'src/consumers')) {
      for (const imp of imports) {
        const t = target(file.path, imp.specifier);
        if (!imp.typeOnly && t !== null && COMPUTE.some((c) => under(t, c))) add('consumers contain no maths', imp.line, imp.specifier);
      }
      walk(sf, (n) => {
        if (ts.isPropertyAccessExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'Math' && MATH.has(n.name.text)) {
          add('consumers contain no maths', n, `Math.${n.name.text}`);
        }
      });
    }
    // 3. Schemas.
    if (under(file.path, 'schemas')) {
      for (const imp of imports) {
        const t = target(file.path, imp.specifier);
        if (t !== null && under(t, 'src')) add('schemas import nothing from src', imp.line, imp.specifier);
      }
    }
    // 7. tfjs (every folder).
    if (file.path !== TFJS_ORACLE) {
      for (const imp of imports) if (imp.specifier.startsWith('@tensorflow/')) add(TFJS_RULE, imp.line, imp.specifier);
    }
    // 9. Quantiles (src/ and bench/).
    if (file.path !== QUANTILE && (under(file.path, 'src') || under(file.path, 'bench'))) {
      const shared = namesImportedFrom(sf, file.path, QUANTILE.replace(/\.ts$/, ''));
      walk(sf, (n) => {
        const fn = namedFunction(n);
        if (fn !== null && QUANTILE_NAME.test(fn.name)) {
          let calls = false;
          walk(fn.body, (m) => {
            if (ts.isIdentifier(m) && shared.has(m.text)) calls = true;
          });
          if (!calls) add(QUANTILE_RULE, n, fn.name);
        } else if (ts.isElementAccessExpression(n) && isHandPickedRank(n.argumentExpression)) {
          add(QUANTILE_RULE, n, n.getText(sf));
        }
      });
    }
    if (!under(file.path, 'src')) continue;
    // 10. SVG.
    if (file.path !== SVG_KIT) {
      walk(sf, (n) => {
        if ((ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateHead(n) || ts.isTemplateMiddle(n) || ts.isTemplateTail(n)) && n.text.includes('<svg')) {
          add('SVG is drawn by src/report/svg.ts', n, '<svg');
        }
      });
    }
    // 4. Names built in topology.ts only.
    if (file.path !== TOPOLOGY) {
      const usesBroker = imports.some((imp) => {
        const t = target(file.path, imp.specifier);
        return imp.specifier === 'amqplib' || (t !== null && under(t, 'src/broker'));
      });
      walk(sf, (n) => {
        if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) {
          if (ts.isImportDeclaration(n.parent) || ts.isExportDeclaration(n.parent) || ts.isLiteralTypeNode(n.parent)) return;
          if (EXCHANGE_NAMES.has(n.text)) add('exchange names are built in topology.ts', n, n.text);
          if (ROUTING_KEY_LITERAL.test(n.text) || ROUTING_KEY_TEMPLATE_HEADS.has(n.text)) add('routing keys are built in topology.ts', n, n.text);
          if (usesBroker && /^x-[a-z]/.test(n.text)) add('x- names are built in topology.ts', n, n.text);
        } else if (ts.isTemplateExpression(n) && ROUTING_KEY_TEMPLATE_HEADS.has(n.head.text)) {
          add('routing keys are built in topology.ts', n, n.getText(sf));
        } else if (ts.isPropertyAssignment(n) && n.name.getText(sf) === 'messageId') {
          const spelt = (e: ts.Expression): boolean =>
            ts.isStringLiteral(e) ||
            ts.isTemplateExpression(e) ||
            ts.isNoSubstitutionTemplateLiteral(e) ||
            (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.PlusToken) ||
            (ts.isConditionalExpression(e) && (spelt(e.whenTrue) || spelt(e.whenFalse))) ||
            (ts.isParenthesizedExpression(e) && spelt(e.expression));
          if (spelt(n.initializer)) add('message ids are built in topology.ts', n, n.initializer.getText(sf));
        }
      });
    }
    // 6. 30m periods.
    if (file.path !== PERIODS) {
      walk(sf, (n) => {
        const isProductRoot =
          ts.isBinaryExpression(n) &&
          n.operatorToken.kind === ts.SyntaxKind.AsteriskToken &&
          !(ts.isBinaryExpression(n.parent) && n.parent.operatorToken.kind === ts.SyntaxKind.AsteriskToken) &&
          !ts.isParenthesizedExpression(n.parent);
        if ((ts.isNumericLiteral(n) || isProductRoot) && literalProduct(n) === PERIOD_MS) {
          add('30m periods are computed in src/util/periods.ts', n, n.getText(sf));
        } else if (
          ts.isElementAccessExpression(n) &&
          n.expression.getText(sf) === 'TIMEFRAME_MS' &&
          ts.isStringLiteralLike(n.argumentExpression) &&
          n.argumentExpression.text === '30m'
        ) {
          add('30m periods are computed in src/util/periods.ts', n, n.getText(sf));
        }
      });
    }
    // 8. Atomic writes.
    if (file.path !== ATOMIC_FILE && !RENAME_EXEMPT.has(file.path)) {
      walk(sf, (n) => {
        if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier) && FS_MODULE.test(n.moduleSpecifier.text)) {
          const bindings = n.importClause?.namedBindings;
          if (bindings !== undefined && ts.isNamedImports(bindings)) {
            for (const e of bindings.elements) {
              if (RENAMES.has((e.propertyName ?? e.name).text)) add('files are replaced by src/state/atomic-file.ts', e, e.getText(sf));
            }
          }
        } else if (ts.isPropertyAccessExpression(n) && RENAMES.has(n.name.text) && ts.isIdentifier(n.expression) && /^(fs|fsp|promises)$/.test(n.expression.text)) {
          add('files are replaced by src/state/atomic-file.ts', n, n.getText(sf));
        }
      });
    }
    // 5. Environment.
    if (!under(file.path, 'src/config')) {
      walk(sf, (n) => {
        if (ts.isPropertyAccessExpression(n) && n.name.text === 'env' && ts.isIdentifier(n.expression) && n.expression.text === 'process') {
          add('process.env is read in src/config only', n, n.getText(sf));
        }
      });
    }
  }
  return violations;
}

const format = (v: readonly Violation[]): string[] => v.map((x) => `${x.path}:${x.line}: ${x.rule}: ${x.what}`);

describe('layout rules', () => {
  const files: SourceFile[] = [...listTs('src'), ...listTs('schemas')].map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));

  it('reads the whole tree', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files.some((f) => f.path === TOPOLOGY)).toBe(true);
  });

  it('holds for every file of src/ and schemas/', () => {
    expect(format(checkLayout(files))).toEqual([]);
  });

  it('tfjs is imported by the oracle only, in test/, bench/ and scripts/ too; bench/ uses the one quantile', () => {
    const others = [...listTs('test'), ...listTs('bench'), ...listTs('scripts')].map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));
    expect(others.some((f) => f.path === TFJS_ORACLE)).toBe(true);
    expect(others.some((f) => f.path.startsWith('bench/'))).toBe(true);
    expect(format(checkLayout(others).filter((v) => v.rule === TFJS_RULE || v.rule === QUANTILE_RULE))).toEqual([]);
  });
});

describe('the layout check fails when a rule is broken', () => {
  const check = (path: string, text: string): string[] => format(checkLayout([{ path, text }]));

  it('compute folders: broker, Redis, filesystem and network imports, however written', () => {
    expect(check('src/strategic/x.ts', "import { readFileSync } from 'node:fs';")).toEqual([
      'src/strategic/x.ts:1: compute imports no broker, Redis, filesystem or network module: node:fs',
    ]);
    expect(check('src/learning/x.ts', "export { a } from '../state/y';\nconst r = require('ioredis');")).toHaveLength(2);
    expect(check('src/indicators/x.ts', "async function f() { await import('fs/promises'); }")).toHaveLength(1);
    expect(check('src/learning/deep/x.ts', "import type { Channel } from 'amqplib';\nimport { declareTopology } from '../../broker/topology';")).toHaveLength(2);
    expect(check('src/strategic/x.ts', "if (require.main === module) main(process.argv[2]);\nconsole.log(1);\nprocess.exit(1);")).toEqual([
      'src/strategic/x.ts:1: compute folders are no entry points: require.main',
      'src/strategic/x.ts:1: compute folders are no entry points: process.argv',
      'src/strategic/x.ts:2: compute folders are no entry points: console.log',
      'src/strategic/x.ts:3: compute folders are no entry points: process.exit',
    ]);
    expect(check('src/learning/x.ts', "import { z } from 'zod';\nimport { a } from './y';\nimport { Bar } from '../../schemas/bar.schema';")).toEqual([]);
    // The same imports are fine outside the compute folders.
    expect(check('src/flows/x.ts', "import { readFileSync } from 'node:fs';")).toEqual([]);
  });

  it('consumers: compute values and transcendental maths', () => {
    expect(check('src/consumers/x.ts', "import { ema } from '../indicators/ema';\nconst y = Math.exp(2);")).toHaveLength(2);
    expect(check('src/consumers/x.ts', "import type { Ema } from '../indicators/ema';\nconst y = Math.max(1, 2);")).toEqual([]);
  });

  it('schemas: nothing from src', () => {
    expect(check('schemas/x.schema.ts', "import { A } from '../src/learning/features';")).toEqual([
      'schemas/x.schema.ts:1: schemas import nothing from src: ../src/learning/features',
    ]);
    expect(check('schemas/x.schema.ts', "import { B } from './bar.schema';")).toEqual([]);
  });

  it('names: exchanges, routing keys, message ids and x- headers outside topology.ts', () => {
    expect(check('src/flows/x.ts', "publish('pipeline.internal', `feedback.${s}`, body, { messageId: `${s}:feedback:${ts}` });")).toHaveLength(3);
    expect(check('src/cli/x.ts', "bind(q, E, 'results.#');\nconst k = 'models.promoted';\nif (key.startsWith('feedback.')) f();")).toHaveLength(3);
    expect(check('src/cli/x.ts', "const file = 'results.jsonl';")).toHaveLength(1); // reads as a routing key: say it another way
    expect(check('src/broker/x.ts', "import type { Channel } from 'amqplib';\nconst h = { 'x-rejected-by': s };")).toHaveLength(1);
    expect(check('src/consumers/x.ts', "const o = { messageId: typeof id === 'string' ? id : 'dlq:' + q };")).toHaveLength(1);
    // Built by topology.ts, or passed on: fine. An `x-` name in a file that does not use the broker is not AMQP.
    expect(
      check(
        'src/consumers/x.ts',
        "import { messageIds, routingKeys, EXCHANGE_INTERNAL } from '../broker/topology';\npublish(EXCHANGE_INTERNAL, routingKeys.feedback(s), b, { messageId: messageIds.feedback(s, ts) });\nconst o = { messageId: e.messageId };",
      ),
    ).toEqual([]);
    expect(check('src/gateway/routes.ts', "const spec = { 'x-audited': true };")).toEqual([]);
    expect(check(TOPOLOGY, "export const EXCHANGE_BARS = 'market.bars';\nconst k = (s: string) => `bars.${s}`;")).toEqual([]);
  });

  it('30m periods: the period length spelt outside src/util/periods.ts', () => {
    expect(check('src/flows/x.ts', "const p = 1_800_000;\nconst q = 30 * 60_000;\nconst r = (30 * 60) * 1000;\nconst s = TIMEFRAME_MS['30m'];")).toEqual([
      'src/flows/x.ts:1: 30m periods are computed in src/util/periods.ts: 1_800_000',
      'src/flows/x.ts:2: 30m periods are computed in src/util/periods.ts: 30 * 60_000',
      'src/flows/x.ts:3: 30m periods are computed in src/util/periods.ts: (30 * 60) * 1000',
      'src/flows/x.ts:4: 30m periods are computed in src/util/periods.ts: TIMEFRAME_MS[\'30m\']',
    ]);
    expect(check('src/strategic/x.ts', "const m = 1800000 / 2;")).toHaveLength(1);
    // The module itself, other numbers, and the 5m length are fine.
    expect(check(PERIODS, "export const PERIOD_MS = TIMEFRAME_MS['30m'];\nconst p = 1_800_000;")).toEqual([]);
    expect(check('src/flows/x.ts', "const a = 300_000;\nconst b = 6 * 60_000;\nconst c = TIMEFRAME_MS['5m'];")).toEqual([]);
  });

  it('tfjs: imported anywhere but the oracle, however written', () => {
    expect(check('src/learning/x.ts', "import * as tf from '@tensorflow/tfjs';\nconst w = require('@tensorflow/tfjs-backend-wasm');")).toHaveLength(2);
    expect(check('test/unit/learning/x.test.ts', "async function f() { await import('@tensorflow/tfjs'); }")).toHaveLength(1);
    expect(check(TFJS_ORACLE, "import * as tf from '@tensorflow/tfjs';")).toEqual([]);
  });

  it('atomic writes: rename from fs outside src/state/atomic-file.ts', () => {
    expect(check('src/state/x.ts', "import { rename as mv, open } from 'node:fs/promises';\nimport * as fs from 'fs';\nfs.renameSync('a', 'b');")).toHaveLength(2);
    expect(check(ATOMIC_FILE, "import { open, rename, rm } from 'node:fs/promises';")).toEqual([]);
  });

  it('quantiles: a function named like one that does not use src/util/quantile.ts, a rank picked by hand', () => {
    expect(
      check(
        'bench/x.bench.ts',
        'function median(xs: number[]) { const s = [...xs].sort(); return s[s.length >> 1]; }\nconst p99 = (s: number[]) => s[Math.floor(s.length * 0.99)];\nconst k = lat[Math.floor(lat.length * 0.5)];',
      ),
    ).toEqual([
      'bench/x.bench.ts:1: quantiles are computed in src/util/quantile.ts: median',
      'bench/x.bench.ts:2: quantiles are computed in src/util/quantile.ts: p99',
      'bench/x.bench.ts:2: quantiles are computed in src/util/quantile.ts: s[Math.floor(s.length * 0.99)]',
      'bench/x.bench.ts:3: quantiles are computed in src/util/quantile.ts: lat[Math.floor(lat.length * 0.5)]',
    ]);
    expect(check('src/gateway/x.ts', 'function bucketQuantiles(c: number[]) { return c[0]; }')).toHaveLength(1);
    // Wrappers of the one definition, an alias, a random pick and the module itself are fine.
    expect(
      check(
        'src/cli/x.ts',
        "import { quantile as q } from '../util/quantile';\nconst pct = (xs: number[], p: number) => q(xs, p / 100);\nconst p50 = q;\nconst pick = items[Math.floor(rng() * items.length)];",
      ),
    ).toEqual([]);
    expect(check(QUANTILE, 'export function median(v: number[]) { return v[Math.floor(v.length * 0.5)]; }')).toEqual([]);
  });

  it('SVG: an <svg literal outside src/report/svg.ts', () => {
    expect(check('src/cli/x.ts', 'const a = \'<svg width="1">\';\nconst b = `<div><svg viewBox="0 0 ${w} 1">`;')).toHaveLength(2);
    expect(check(SVG_KIT, "const a = '<svg>';")).toEqual([]);
  });

  it('environment: process.env outside src/config', () => {
    expect(check('src/observability/logger.ts', "const l = process.env.LOG_LEVEL;\nconst e = { ...process.env };")).toHaveLength(2);
    expect(check('src/config/config.ts', 'const l = process.env.LOG_LEVEL;')).toEqual([]);
  });
});
