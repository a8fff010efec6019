import { describe, expect, it } from 'vitest';
import { monitorSettings } from '../../../functions/monitor/settings.ts';
import { parseConfig } from '../../../infra/config.ts';
import { ConfigError } from '../../../shared/errors.ts';
import { RUNBOOK_CLOCK, runbookSettingsFrom } from '../../../shared/runbook/settings.ts';

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgwarden-runbook';

function settingsFrom(env: Record<string, string>) {
  return runbookSettingsFrom(
    monitorSettings.parse({
      PGWARDEN_STATE_MACHINE_ARN: STATE_MACHINE,
      PGWARDEN_PROBE_FUNCTION: 'pgwarden-probe',
      PGWARDEN_LEASE_TABLE: 'pgwarden-lease',
      ...env,
    }),
    'monitor',
  );
}

function configProblems(escalation: Record<string, string>): string {
  try {
    parseConfig({ escalation }, { demo: true });
    return '';
  } catch (error) {
    return (error as Error).message;
  }
}

describe('runbook clock settings in a function environment', () => {
  it('refuses an escalation no later than the maximum duration, naming both variables and the value', () => {
    let error: unknown;
    try {
      settingsFrom({ PGWARDEN_ESCALATE_AFTER: '2h', PGWARDEN_MAX_DURATION: '1h' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      {
        path: 'PGWARDEN_ESCALATE_AFTER',
        received: '"2h"',
        problem: 'is not shorter than PGWARDEN_MAX_DURATION (1h), so nobody would ever be paged',
        fix: 'Make "PGWARDEN_ESCALATE_AFTER" shorter than "PGWARDEN_MAX_DURATION".',
      },
    ]);
    expect((error as Error).message).toContain('environment of the monitor function');
  });

  it('refuses a re-check interval longer than the escalation time', () => {
    expect(() => settingsFrom({ PGWARDEN_ESCALATE_AFTER: '1m', PGWARDEN_RECHECK_EVERY: '5m' })).toThrow(
      'PGWARDEN_RECHECK_EVERY: is longer than PGWARDEN_ESCALATE_AFTER (1m)',
    );
  });

  it('accepts the extremes the configuration file accepts, in seconds', () => {
    expect(
      settingsFrom({
        PGWARDEN_ESCALATE_AFTER: '24h',
        PGWARDEN_RECHECK_EVERY: '1s',
        PGWARDEN_MAX_DURATION: '7d',
      }),
    ).toEqual({ escalateAfterSeconds: 86_400, recheckSeconds: 1, maxDurationSeconds: 604_800 });
    expect(settingsFrom({})).toEqual({
      escalateAfterSeconds: 1_200,
      recheckSeconds: 60,
      maxDurationSeconds: 14_400,
    });
  });

  it('has the bounds of the configuration file: one definition for both', () => {
    for (const [field, bounds] of Object.entries(RUNBOOK_CLOCK)) {
      const above = `${bounds.maxMs + 1_000}ms`;
      expect(configProblems({ [field]: above })).toContain(`config.escalation.${field}: is out of range`);
      const variable = {
        escalateAfter: 'ESCALATE_AFTER',
        recheckEvery: 'RECHECK_EVERY',
        maxDuration: 'MAX_DURATION',
      }[field];
      expect(() => settingsFrom({ [`PGWARDEN_${variable}`]: above })).toThrow(
        `PGWARDEN_${variable}: is out of range`,
      );
    }
  });

  it('refuses the same impossible clock in the configuration file, with the config path', () => {
    expect(configProblems({ escalateAfter: '2h', maxDuration: '1h' })).toContain(
      'config.escalation.escalateAfter: is not shorter than maxDuration (1h)',
    );
  });
});
