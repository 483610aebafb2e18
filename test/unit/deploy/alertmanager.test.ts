import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { DEPLOY, run } from './tools';

const CONFIG = join(DEPLOY, 'alertmanager/alertmanager.yml');

/** The receivers a set of labels is routed to, as amtool computes them. */
function routes(config: string, labels: string[]): string[] {
  const r = run('amtool', ['config', 'routes', 'test', `--config.file=${config}`, ...labels]);
  expect(r.status).toBe(0);
  return r.out.split('\n')[0]!.trim().split(',').sort();
}

describe('Alertmanager configuration (amtool)', () => {
  it('amtool check-config accepts it', () => {
    const r = run('amtool', ['check-config', CONFIG]);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('amtool check-config rejects a route to an unknown receiver (the check can fail)', () => {
    const doc = parse(readFileSync(CONFIG, 'utf8')) as { route: { receiver: string } };
    doc.route.receiver = 'nobody';
    const file = join(mkdtempSync(join(tmpdir(), 'am-')), 'am.yml');
    writeFileSync(file, stringify(doc));
    expect(run('amtool', ['check-config', file]).status).not.toBe(0);
  });

  it('routes pages to PagerDuty and Slack, warnings to Slack, the rest to email', () => {
    expect(routes(CONFIG, ['alertname=PipelineErrorRateHigh', 'severity=page'])).toEqual([
      'pagerduty-oncall',
      'slack-pipeline',
    ]);
    expect(routes(CONFIG, ['alertname=PipelineDeadLetters', 'severity=warning'])).toEqual([
      'slack-pipeline',
    ]);
    expect(routes(CONFIG, ['alertname=PipelineModelRolledBack', 'severity=info'])).toEqual([
      'email-ops',
    ]);
    expect(routes(CONFIG, ['alertname=Other'])).toEqual(['email-ops']);
  });

  it('reads every secret from a file and holds none inline', () => {
    const doc = parse(readFileSync(CONFIG, 'utf8')) as {
      global: Record<string, unknown>;
      receivers: {
        name: string;
        slack_configs?: Record<string, unknown>[];
        pagerduty_configs?: Record<string, unknown>[];
        email_configs?: Record<string, unknown>[];
      }[];
    };
    expect(doc.global.smtp_auth_password_file).toMatch(/^\/etc\/alertmanager\/secrets\//);
    expect(doc.global.slack_api_url_file).toMatch(/^\/etc\/alertmanager\/secrets\//);
    expect(doc.global).not.toHaveProperty('smtp_auth_password');
    expect(doc.global).not.toHaveProperty('slack_api_url');
    const kinds = new Set(
      doc.receivers.flatMap((r) => Object.keys(r).filter((k) => k.endsWith('_configs'))),
    );
    expect([...kinds].sort()).toEqual(['email_configs', 'pagerduty_configs', 'slack_configs']);
    for (const r of doc.receivers) {
      for (const c of r.pagerduty_configs ?? []) {
        expect(c.routing_key_file).toMatch(/^\/etc\/alertmanager\/secrets\//);
        expect(c).not.toHaveProperty('routing_key');
        expect(c).not.toHaveProperty('service_key');
      }
      for (const c of r.slack_configs ?? []) expect(c).not.toHaveProperty('api_url');
      for (const c of r.email_configs ?? []) expect(c).not.toHaveProperty('auth_password');
    }
  });
});
