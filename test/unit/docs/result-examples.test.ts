/**
 * The example results of the README and the wire contract are real results of the shipped model:
 * they must satisfy every rule the contract states, the risk cap of the confidence tier included,
 * and the README's rounded copy must be the wire contract's full one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IntegratedResultSchema, type IntegratedResult } from '../../../schemas/integrated-result.schema';
import { RISK_BUDGET } from '../../../src/learning/features';
import { HIGH_MIN_P_CORRECT, MEDIUM_MIN_P_CORRECT } from '../../../src/strategic/uncertainty';

const ROOT = join(__dirname, '..', '..', '..');

/** The first ```json block after `heading` in `file`. */
function jsonAfter(file: string, heading: string): unknown {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const at = text.indexOf(heading);
  if (at < 0) throw new Error(`${file} has no ${heading}`);
  const block = /```json\n([\s\S]*?)\n```/.exec(text.slice(at));
  if (block === null) throw new Error(`${file} has no json block after ${heading}`);
  return JSON.parse(block[1] as string) as unknown;
}

/** Every rule of the contract a single result can be checked against; [] when it keeps them all. */
function contractViolations(r: IntegratedResult): string[] {
  const out: string[] = [];
  if (r.ts % 300_000 !== 0) out.push('ts is not a multiple of 5 min');
  if (r.close_ts !== r.ts + 300_000) out.push('close_ts is not ts + 5 min');
  const s = r.strategic;
  if (s.bar_close_ts !== null && (s.bar_close_ts > r.close_ts || s.bar_close_ts % 1_800_000 !== 0)) out.push('bar_close_ts is not a 30m close at or before close_ts');
  if (s.regime_probabilities !== null) {
    const entries = Object.entries(s.regime_probabilities);
    const sum = entries.reduce((n, [, p]) => n + p, 0);
    if (Math.abs(sum - 1) > 1e-9) out.push(`regime_probabilities sum to ${sum}`);
    const top = entries.reduce((a, b) => (b[1] > a[1] ? b : a));
    if (top[0] !== s.regime) out.push(`regime ${s.regime} is not the most probable (${top[0]})`);
  }
  if (s.uncertainty !== null) {
    const p = 1 - s.uncertainty;
    const tier = p >= HIGH_MIN_P_CORRECT - 1e-12 ? 'HIGH' : p >= MEDIUM_MIN_P_CORRECT - 1e-12 ? 'MEDIUM' : 'LOW';
    if (tier !== s.confidence) out.push(`confidence ${s.confidence} does not match uncertainty ${s.uncertainty} (${tier})`);
  }
  const { tactical, risk } = r.actions;
  if (risk !== null) {
    const cap = RISK_BUDGET[s.confidence ?? 'none'];
    if (risk > cap) out.push(`risk ${risk} above the ${s.confidence ?? 'no-context'} cap ${cap}`);
  }
  if (tactical === 'FLAT' && (risk !== 0 || r.target_position !== 0)) out.push('FLAT must have risk 0 and target_position 0');
  if (tactical === 'LONG' && r.target_position !== risk) out.push('LONG must have target_position = risk');
  if (tactical === 'SHORT' && r.target_position !== (risk === null ? null : -risk)) out.push('SHORT must have target_position = -risk');
  return out;
}

/** Numbers of `rounded` equal those of `full` to the decimals `rounded` shows; same keys and strings. */
function roundingDifferences(rounded: unknown, full: unknown, path = ''): string[] {
  if (typeof rounded === 'number' && typeof full === 'number') {
    const decimals = (String(rounded).split('.')[1] ?? '').length;
    return Math.abs(full - rounded) <= 0.5 * 10 ** -decimals + 1e-12 ? [] : [`${path}: ${rounded} is not ${full} rounded`];
  }
  if (typeof rounded === 'object' && rounded !== null && typeof full === 'object' && full !== null) {
    const keys = new Set([...Object.keys(rounded), ...Object.keys(full)]);
    return [...keys].flatMap((k) => roundingDifferences((rounded as Record<string, unknown>)[k], (full as Record<string, unknown>)[k], `${path}.${k}`));
  }
  return rounded === full ? [] : [`${path}: ${JSON.stringify(rounded)} vs ${JSON.stringify(full)}`];
}

describe('example results in the docs', () => {
  const readme = jsonAfter('README.md', '## Reading results');
  const contract = jsonAfter('docs/wire-contract.md', '## Results');

  it.each([
    ['README.md', readme],
    ['docs/wire-contract.md', contract],
  ])('%s: the example result fits the schema and every rule of the contract, the risk cap included', (_file, example) => {
    const parsed = IntegratedResultSchema.strict().parse(example);
    expect(contractViolations(parsed)).toEqual([]);
  });

  it("the README's rounded example is the wire contract's result", () => {
    expect(roundingDifferences(readme, contract)).toEqual([]);
  });

  it('the rules catch an impossible result: risk 0.5 at LOW confidence', () => {
    const parsed = IntegratedResultSchema.parse(contract);
    const impossible: IntegratedResult = { ...parsed, actions: { tactical: 'LONG', risk: 0.5, execution: 'WAIT' }, target_position: 0.5 };
    expect(contractViolations(impossible)).toEqual(['risk 0.5 above the LOW cap 0.1']);
    expect(contractViolations({ ...parsed, target_position: 0.1 })).toEqual(['SHORT must have target_position = -risk']);
  });
});
