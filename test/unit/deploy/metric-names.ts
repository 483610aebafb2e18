import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

const KEYWORDS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers that are not functions, keywords,
 * label names (inside `{}` or `by (...)`-like clauses), strings, durations or Grafana variables.
 */
export function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1') // label lists
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ''); // Grafana variables
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    const after = s.slice(m.index + word.length);
    if (/^\s*\(/.test(after)) continue; // function call
    if (KEYWORDS.has(word.toLowerCase())) continue;
    if (/^\d/.test(s.slice(m.index - 1, m.index))) continue; // 1e9, 5m
    names.add(word);
  }
  return [...names];
}

/** Names as exported: a histogram or summary `x` also exports `x_bucket`, `x_sum`, `x_count`. */
export function exportedNames(registered: { name: string; type: string }[]): Set<string> {
  const out = new Set<string>();
  for (const { name, type } of registered) {
    out.add(name);
    if (type === 'histogram' || type === 'summary')
      for (const s of ['_bucket', '_sum', '_count']) out.add(`${name}${s}`);
  }
  return out;
}

/**
 * Metric names and types the installed rabbitmq_prometheus plugin declares, read from the literal
 * tables of its compiled collectors (BEAM `LitT` chunks: zlib-compressed external terms in which each
 * metric is the atom of its name followed by the atom `counter`, `gauge` or `histogram`). Null when
 * the plugin is not installed here. `ebin`: the plugin's ebin directory.
 */
export function rabbitmqPluginMetrics(
  ebin: string | null,
): { name: string; type: string }[] | null {
  if (ebin === null || !existsSync(ebin)) return null;
  const found = new Map<string, string>();
  for (const file of readdirSync(ebin).filter((f) => f.endsWith('.beam'))) {
    const b = readFileSync(join(ebin, file));
    for (let i = 12; i + 8 <= b.length;) {
      const id = b.toString('latin1', i, i + 4);
      const n = b.readUInt32BE(i + 4);
      if (id === 'LitT') {
        const lit = inflateSync(b.subarray(i + 12, i + 8 + n)).toString('latin1');
        for (const m of lit.matchAll(/w([\s\S])([a-z_]+)w[\s\S](counter|gauge|histogram)/g)) {
          if (m[1]!.charCodeAt(0) === m[2]!.length) found.set(`rabbitmq_${m[2]}`, m[3]!);
        }
      }
      i += 8 + Math.ceil(n / 4) * 4;
    }
  }
  return [...found]
    .map(([name, type]) => ({ name, type }))
    .sort((a, b) => a.name.localeCompare(b.name));
}
