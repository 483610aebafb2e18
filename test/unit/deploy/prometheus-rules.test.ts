import {
  mkdtempSync,
  readFileSync,
  writeFileSync,
  mkdirSync,
  copyFileSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { DEPLOY, run } from './tools';

const PROM = join(DEPLOY, 'prometheus');
const RULES = join(PROM, 'rules/pipeline.rules.yml');

interface Rule {
  alert: string;
  expr: string;
  annotations: Record<string, string>;
  labels: Record<string, string>;
}
const rules = (): Rule[] =>
  (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
    (g) => g.rules,
  );

/** The alerts the issue asks for, by the alert that implements each. */
const REQUIRED = [
  'PipelineLatencyP99High',
  'PipelineWorkerMemoryHigh',
  'PipelineErrorRateHigh',
  'PipelineBacklogGrowing',
  'PipelineDeadLetters',
  'PipelineBreakerOpen',
  'PipelineWorkerRestarting',
  'PipelineQueueWithoutConsumer',
  'PipelineTrainingStalled',
  'PipelineModelRolledBack',
];

describe('Prometheus configuration (promtool)', () => {
  it('promtool check config accepts prometheus.yml and its rule files', () => {
    const r = run('promtool', ['check', 'config', 'prometheus.yml'], PROM);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('promtool check rules accepts the rules', () => {
    const r = run('promtool', ['check', 'rules', RULES]);
    expect(r.status).toBe(0);
  });

  it('promtool check rules rejects a broken expression (the check can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rules-'));
    writeFileSync(
      join(dir, 'bad.yml'),
      stringify({ groups: [{ name: 'x', rules: [{ alert: 'X', expr: 'rate(foo[5m' }] }] }),
    );
    expect(run('promtool', ['check', 'rules', join(dir, 'bad.yml')]).status).not.toBe(0);
  });

  it('promtool test rules passes the unit tests of every rule', () => {
    const r = run('promtool', ['test', 'rules', 'tests/pipeline.rules.test.yml'], PROM);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('every required alert exists, has a severity the routes know, a runbook entry and a test that fires it', () => {
    const byName = new Map(rules().map((r) => [r.alert, r]));
    const tests = readFileSync(join(PROM, 'tests/pipeline.rules.test.yml'), 'utf8');
    const runbook = readFileSync(join(DEPLOY, '../docs/runbook.md'), 'utf8');
    for (const name of [...REQUIRED, ...byName.keys()]) {
      const rule = byName.get(name);
      expect(rule).toBeDefined();
      expect(['page', 'warning', 'info']).toContain(rule!.labels.severity);
      expect(rule!.annotations.runbook).toBe(`docs/runbook.md#${name.toLowerCase()}`);
      expect(runbook).toContain(`## ${name}`);
      expect(tests).toContain(`alertname: ${name}`);
    }
  });

  // Each alert's test must fail when the alert never fires: copy the rules with one expression
  // replaced by one that is never true and check that promtool test rules fails.
  it.each(REQUIRED.concat('PipelineTargetDown'))(
    'the promtool test of %s fails when the rule never fires',
    (name) => {
      const dir = mkdtempSync(join(tmpdir(), 'rules-mut-'));
      mkdirSync(join(dir, 'rules'));
      mkdirSync(join(dir, 'tests'));
      const doc = parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] };
      let replaced = 0;
      for (const g of doc.groups)
        for (const r of g.rules)
          if (r.alert === name) {
            r.expr = 'vector(1) == 0';
            replaced++;
          }
      expect(replaced).toBe(1);
      writeFileSync(join(dir, 'rules/pipeline.rules.yml'), stringify(doc));
      for (const f of readdirSync(join(PROM, 'tests')))
        copyFileSync(join(PROM, 'tests', f), join(dir, 'tests', f));
      const r = run('promtool', ['test', 'rules', 'tests/pipeline.rules.test.yml'], dir);
      expect(r.status).not.toBe(0);
      expect(r.out).toContain(`alertname: ${name}`);
    },
  );
});
