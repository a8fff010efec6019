import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/constructs/pgwarden-function.ts';
import { CLI_CONTEXT, type Json } from './synth.ts';

const out = mkdtempSync(join(tmpdir(), 'pgwarden-app-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** The CDK app as `cdk synth -c ...` runs it (bundling skipped). */
function app(context: Record<string, unknown>) {
  return spawnSync(process.execPath, ['infra/app.ts'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: {
      ...process.env,
      CDK_OUTDIR: out,
      CDK_CONTEXT_JSON: JSON.stringify({ ...CLI_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context }),
    },
    timeout: 60_000,
  });
}

describe('the CDK app', () => {
  it('deploys under the stack name -c stackName chooses, and names its alarms and dashboard after it', () => {
    const result = app({ demo: true, stackName: 'PgWardenStaging' });
    expect(result.status, result.stderr).toBe(0);
    const template = JSON.parse(readFileSync(join(out, 'PgWardenStaging.template.json'), 'utf8'));
    const resources = Object.values(template.Resources as Record<string, Json>);
    const alarms = resources
      .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
      .map((r) => r.Properties.AlarmName);
    expect(alarms.length).toBeGreaterThan(5);
    for (const name of alarms) expect(name).toMatch(/^PgWardenStaging\//);
    const dashboard = resources.find((r) => r.Type === 'AWS::CloudWatch::Dashboard');
    expect(dashboard.Properties.DashboardName).toEqual({
      'Fn::Join': ['', ['PgWardenStaging-', { Ref: 'AWS::Region' }]],
    });
  }, 60_000);

  it('refuses a stack name CloudFormation would refuse, with the value and the fix', () => {
    const result = app({ demo: true, stackName: 'pgwarden_staging' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      'context.stackName: is not a CloudFormation stack name (got "pgwarden_staging")',
    );
    expect(result.stderr).toContain('-c stackName=PgWardenStaging');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
