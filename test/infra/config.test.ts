import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { afterAll, describe, expect, it } from 'vitest';
import { durationText, loadConfig, parseConfig } from '../../infra/config.ts';
import { REPO_ROOT } from '../../infra/constructs/pgwarden-function.ts';
import { PgWardenStack } from '../../infra/pgwarden-stack.ts';
import { ConfigError } from '../../shared/errors.ts';
import { exampleConfig, type Json } from './synth.ts';

/** The ConfigError message `parseConfig` throws for `raw`. */
function problem(raw: unknown, options: { demo?: boolean } = {}): string {
  try {
    parseConfig(raw, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('the configuration was accepted');
}

function withChange(change: (config: Json) => void): Json {
  const config = exampleConfig();
  change(config);
  return config;
}

const scratch = mkdtempSync(join(tmpdir(), 'pgwarden-config-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('configuration', () => {
  it('accepts the committed example and applies the defaults', () => {
    const config = parseConfig(exampleConfig());
    expect(config).toMatchObject({
      cadenceMs: 10_000,
      sweepEveryMinutes: 5,
      escalateAfterMs: 1_200_000,
      probeFailingMinutes: 3,
      logRetentionDays: 30,
      stateMachineLogsIncludeData: false,
    });
    expect(config.fleetInput.targets.map((t) => t.id)).toEqual(['orders-prod', 'billing-prod']);
    // Dashboards are global to the account: unless named, the stack names it after itself.
    expect(config.dashboardName).toBeUndefined();
  });

  it('names the field, the value and the fix for a port out of range', () => {
    const message = problem(withChange((c) => (c.fleet.targets[0].port = 70_000)));
    expect(message).toContain(
      'config.fleet.targets[0].port: is out of range (got 70000). Set it to an integer between 1 and 65535.',
    );
  });

  it('suggests the intended key for a typo', () => {
    const message = problem(withChange((c) => (c.notificatons = c.notifications)));
    expect(message).toContain('config.notificatons: is not a known field');
    expect(message).toContain('Did you mean "notifications"?');
    expect(problem(withChange((c) => (c.fleet.targets[1].rds.clusterID = 'x')))).toContain(
      'config.fleet.targets[1].rds.clusterID: is not a known field',
    );
  });

  it('reports every problem at once', () => {
    const message = problem(
      withChange((c) => {
        c.fleet.targets[0].port = 0;
        c.schedules.cadence = '10';
        c.logRetentionDays = 31;
      }),
    );
    expect(message).toContain('config.fleet.targets[0].port');
    expect(message).toContain('config.schedules.cadence: is not a duration (got "10")');
    expect(message).toContain('Add a unit: "10s" or "10m".');
    expect(message).toContain(
      'config.logRetentionDays: is not a retention period CloudWatch Logs offers (got 31)',
    );
  });

  it('requires a fleet and a network outside demo mode, and neither in demo mode', () => {
    const message = problem({});
    expect(message).toContain('config.fleet: is required');
    expect(message).toContain('config.network: is required');
    expect(message).toContain('-c demo=true');
    expect(parseConfig({}, { demo: true }).fleetInput.targets).toEqual([]);
  });

  it('applies the fleet rules of the functions: repeated ids, missing credentials', () => {
    const message = problem(
      withChange((c) => {
        c.fleet.targets[1].id = 'orders-prod';
        delete c.fleet.targets[0].auth;
      }),
    );
    expect(message).toContain('config.fleet.targets[1].id: repeats the id of targets[0]');
    expect(message).toContain('config.fleet.targets[0].auth: is required (no defaults.auth either)');
  });

  it('requires a database user for IAM authentication', () => {
    const message = problem(withChange((c) => delete c.fleet.defaults.user));
    expect(message).toContain('config.fleet.targets[0].user: is required with IAM authentication');
  });

  it('refuses an escalation that could never fire', () => {
    expect(problem(withChange((c) => (c.escalation.escalateAfter = '5h')))).toContain(
      'config.escalation.escalateAfter: is not shorter than maxDuration (4h)',
    );
  });

  it('refuses subnets that do not cover the Availability Zones evenly', () => {
    expect(problem(withChange((c) => c.network.privateSubnetIds.pop()))).toContain(
      'config.network: lists 1 subnet(s) for 2 Availability Zone(s)',
    );
  });

  it('refuses a sweep interval EventBridge cannot express', () => {
    expect(problem(withChange((c) => (c.schedules.sweepEvery = '90s')))).toContain(
      'config.schedules.sweepEvery: is not a whole number of minutes',
    );
  });

  it('fails the synth when the fleet would not fit in a function’s 4 KB environment, recommending discovery', () => {
    const config = withChange((c) => {
      c.fleet.targets = Array.from({ length: 25 }, (_, i) => ({
        id: `shard-${i}`,
        host: `shard-${i}.abcdefghijkl.eu-west-1.rds.amazonaws.com`,
        database: 'app',
        auth: { iam: true },
        rds: { instanceId: `shard-${i}` },
      }));
    });
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    let thrown: unknown;
    try {
      new PgWardenStack(app, 'PgWarden', { config: parseConfig(config) });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const message = (thrown as Error).message;
    expect(message).toContain("config.fleet.targets: exceeds Lambda's limit of 4096 bytes");
    expect(message).toContain('25 target(s)');
    expect(message).toContain('"fleet.discovery"');
  });

  it('tells the user to copy the example when the file is missing, and accepts no file in demo mode', () => {
    const file = join(scratch, 'missing.json');
    expect(() => loadConfig({ file })).toThrow(
      /Copy pgwarden\.config\.example\.json to pgwarden\.config\.json/,
    );
    expect(loadConfig({ file, demo: true }).logRetentionDays).toBe(30);
  });

  it('reports a file that is not JSON with the parser’s message', () => {
    const file = join(scratch, 'broken.json');
    writeFileSync(file, '{ "fleet": ');
    expect(() => loadConfig({ file })).toThrow(/broken\.json: cannot be parsed/);
  });

  it('renders durations for the functions exactly', () => {
    expect(durationText(1_200_000)).toBe('20m');
    expect(durationText(90_000)).toBe('1m30s');
    expect(durationText(1_500)).toBe('1500ms');
  });
});

describe('the CDK app', () => {
  it('prints a configuration problem without a stack trace and exits 1', () => {
    const file = join(scratch, 'bad-port.json');
    writeFileSync(file, JSON.stringify(withChange((c) => (c.fleet.targets[0].port = 70_000))));
    const result = spawnSync(process.execPath, ['infra/app.ts'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        CDK_CONTEXT_JSON: JSON.stringify({ config: file }),
        CDK_OUTDIR: join(scratch, 'out'),
      },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      'config.fleet.targets[0].port: is out of range (got 70000). Set it to an integer between 1 and 65535.',
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
