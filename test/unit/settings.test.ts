import { describe, expect, it } from 'vitest';
import { resolveRuntimeDeps } from '../../cli/runtime.ts';
import { monitorSettings } from '../../functions/monitor/settings.ts';
import { probeSettings } from '../../functions/probe/settings.ts';
import { sweepSettings } from '../../functions/sweep/settings.ts';
import { ConfigError } from '../../shared/errors.ts';
import { LOG_LEVEL_SETTING, logLevelFrom } from '../../shared/logger.ts';

describe('function settings', () => {
  it('writes every tunable at its default and reads back exactly what it wrote', () => {
    const env = monitorSettings.toEnvironment({ probeFunction: 'pgwarden-probe', cadenceMs: 1_500 });
    expect(env).toMatchObject({
      PGWARDEN_CADENCE: '1500ms',
      PGWARDEN_RUN_FOR: '51s',
      PGWARDEN_CONCURRENCY: '10',
    });
    const parsed = monitorSettings.parse({
      ...env,
      PGWARDEN_LEASE_TABLE: 'lease',
      PGWARDEN_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:runbook',
    });
    expect(parsed).toMatchObject({
      ...monitorSettings.defaults,
      cadenceMs: 1_500,
      probeFunction: 'pgwarden-probe',
    });
  });

  it('refuses a value outside its bounds, naming the variable, the value and the fix', () => {
    let error: unknown;
    try {
      sweepSettings.parse({ PGWARDEN_REMEDIATE_FUNCTION: 'remediate', PGWARDEN_CONCURRENCY: '500' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      {
        path: 'PGWARDEN_CONCURRENCY',
        received: '"500"',
        problem: 'is out of range',
        fix: 'Set it to an integer between 1 and 50.',
      },
    ]);
    expect((error as Error).message).toContain('environment of the sweep function');
  });

  it('applies the defaults when the environment leaves the tunables out', () => {
    expect(probeSettings.parse({})).toEqual({ connectTimeoutMs: 3_000, statementTimeoutMs: 2_000 });
  });
});

describe('log level', () => {
  it('is one setting with one default for the CLI and local mode: errors only', () => {
    expect(LOG_LEVEL_SETTING.defaultLevel).toBe('error');
    expect(logLevelFrom({})).toBe('error');
    expect(logLevelFrom({ PGWARDEN_LOG_LEVEL: ' INFO ' })).toBe('info');
    expect(logLevelFrom({ PGWARDEN_LOG_LEVEL: 'loud' })).toBe('error');
  });

  it('lets the on-call commands log an error by default, as local mode does', () => {
    const lines: string[] = [];
    const { logger } = resolveRuntimeDeps({
      env: {},
      isTty: false,
      out: () => undefined,
      err: (text: string) => lines.push(text),
    } as unknown as Parameters<typeof resolveRuntimeDeps>[0]);
    logger.info('quiet');
    logger.error('went wrong');
    expect(lines.map((line) => JSON.parse(line).message)).toEqual(['went wrong']);
  });
});
