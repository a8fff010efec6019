/**
 * cfn-lint (AWS's CloudFormation linter, installed on every machine of this project) over the
 * templates the real app entry (infra/app.ts) synthesizes from the example configuration, demo mode and
 * a discovery configuration. Bundling is skipped for speed: it changes only the functions' code
 * asset keys, never a resource or a property that is linted (test/infra/synth-cli.test.ts compares
 * the two templates).
 *
 * Every finding fails the test unless it is listed in SUPPRESSIONS below with the reason it is not a
 * defect; a suppression that no longer matches anything fails too, so the list cannot go stale.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../infra/constructs/pgwarden-function.ts';
import { CLI_CONTEXT, DISCOVERY_CONFIG, type Json } from './synth.ts';

interface Suppression {
  rule: string;
  /** Matches the finding's path inside the template (`Resources/<id>/...`). */
  path: RegExp;
  reason: string;
}

/** Findings that are not defects, each with the reason. */
const SUPPRESSIONS: readonly Suppression[] = [
  {
    rule: 'W3005',
    path: /^Resources\/(Functions\w+Function|RunbookStateMachine)[0-9A-F]{8}\/DependsOn\/\d+$/,
    reason:
      'aws-cdk-lib itself makes a Lambda function and a state machine depend on their role (and its policy, which Lambda checks when it creates a VPC function); the role half is redundant with the GetAtt, and harmless.',
  },
  {
    rule: 'W3691',
    path: /^Resources\/DemoDatabase[0-9A-F]{8}\/Properties$/,
    reason:
      'Demo mode asks RDS for PostgreSQL "17" (major version only: RDS picks the current default minor). cfn-lint’s data lists every major-only PostgreSQL version, 9 to 17, as deprecated, current majors included, so this flags the form, not the version.',
  },
];

interface Finding {
  rule: string;
  level: string;
  template: string;
  path: string;
  message: string;
}

const run = promisify(execFile);
const suppressed = (f: Finding) => SUPPRESSIONS.some((s) => s.rule === f.rule && s.path.test(f.path));
const out = mkdtempSync(join(tmpdir(), 'pgwarden-cfn-lint-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Runs the CDK app the way `cdk synth` does (same entry, same context), bundling skipped. */
async function synthesize(name: string, context: Record<string, unknown>): Promise<string> {
  const dir = join(out, name);
  try {
    await run(process.execPath, ['infra/app.ts'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        CDK_OUTDIR: dir,
        CDK_CONTEXT_JSON: JSON.stringify({ ...CLI_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context }),
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_PROFILE: '',
      },
      timeout: 60_000,
    });
  } catch (error) {
    throw new Error(`synth of ${name} failed: ${(error as { stderr?: string }).stderr ?? error}`);
  }
  return join(dir, 'PgWarden.template.json');
}

function lint(templates: string[]): Finding[] {
  const result = spawnSync('cfn-lint', ['--format', 'json', '--', ...templates], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  // cfn-lint's exit code is a bit mask of the levels found (2 errors, 4 warnings, 8 informational);
  // anything else (1, or no output) means it could not run.
  if (result.error || result.status === null || (result.status & 1) === 1)
    throw new Error(`cfn-lint did not run: ${result.error?.message ?? result.stderr}`);
  return (JSON.parse(result.stdout || '[]') as Json[]).map((f) => ({
    rule: f.Rule.Id,
    level: f.Level,
    template: dirname(f.Filename).split('/').pop() as string,
    path: (f.Location.Path as unknown[]).join('/'),
    message: f.Message,
  }));
}

describe('cfn-lint', () => {
  let findings: Finding[] = [];
  let brokenErrors: string[] = [];
  let templates: Record<string, string> = {};

  beforeAll(async () => {
    const discovery = join(out, 'discovery.json');
    writeFileSync(discovery, JSON.stringify(DISCOVERY_CONFIG));
    const [example, demo, tagged] = await Promise.all([
      synthesize('example', { config: join(REPO_ROOT, 'pgwarden.config.example.json') }),
      synthesize('demo', { demo: true }),
      synthesize('discovery', { config: discovery }),
    ]);
    templates = { example, demo, discovery: tagged };
    // A copy of the example with two real errors, linted in the same run: the linter is really looking.
    const broken = JSON.parse(readFileSync(example, 'utf8'));
    const fn = Object.values(broken.Resources as Record<string, Json>).find(
      (r) => r.Type === 'AWS::Lambda::Function',
    );
    fn.Properties.Runtime = 'nodejs4.3';
    fn.Properties.Timeout = 901;
    const brokenFile = join(out, 'broken', 'PgWarden.template.json');
    mkdirSync(dirname(brokenFile), { recursive: true });
    writeFileSync(brokenFile, JSON.stringify(broken));
    const all = lint([...Object.values(templates), brokenFile]);
    findings = all.filter((f) => f.template !== 'broken');
    brokenErrors = all
      .filter((f) => f.template === 'broken' && f.level === 'Error' && !suppressed(f))
      .map((f) => `${f.rule} at ${f.path}`);
  }, 180_000);

  it('lints the real templates of the example configuration, demo mode and tag discovery', () => {
    for (const file of Object.values(templates)) {
      const template = JSON.parse(readFileSync(file, 'utf8'));
      expect(Object.keys(template.Resources).length).toBeGreaterThan(50);
    }
  });

  it('finds nothing in them beyond the written-down suppressions', () => {
    const unexplained = findings
      .filter((f) => !suppressed(f))
      .map((f) => `${f.template}: ${f.level} ${f.rule} at ${f.path}: ${f.message}`);
    expect(unexplained).toEqual([]);
  });

  it('has no suppression that matches nothing any more', () => {
    const stale = SUPPRESSIONS.filter((s) => !findings.some((f) => s.rule === f.rule && s.path.test(f.path)));
    expect(stale.map((s) => `${s.rule} ${s.path}`)).toEqual([]);
  });

  it('reports real errors in a broken copy of a template (the linter is really running)', () => {
    expect(brokenErrors).toEqual([
      expect.stringMatching(/Properties\/Runtime$/),
      expect.stringMatching(/Properties\/Timeout$/),
    ]);
  });
});
