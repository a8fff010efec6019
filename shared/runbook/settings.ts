/**
 * The runbook's clock, defined once: each setting's bounds and default, and the rules that span them.
 * The configuration file (infra/config.ts), the environments of the functions that open incidents,
 * and the tests all read these, so a value `cdk synth` accepts is a value the functions accept.
 */
import { formatDuration } from '../duration.ts';
import { ConfigError, type Issue } from '../errors.ts';
import { type DurationBounds, durationSetting, optionalSetting, referenceSetting } from '../settings.ts';
import type { Schema } from '../validate.ts';
import { DEFAULT_RUNBOOK_SETTINGS, type RunbookSettings } from './types.ts';

/** Bounds of one clock setting, in milliseconds. */
export type ClockBounds = DurationBounds;

/** The runbook clock's settings: their variables, bounds and defaults. */
export const RUNBOOK_CLOCK = {
  /** Page if the incident is still open this long after it opened. */
  escalateAfter: durationSetting('PGWARDEN_ESCALATE_AFTER', {
    minMs: 10_000,
    maxMs: 86_400_000,
    defaultMs: DEFAULT_RUNBOOK_SETTINGS.escalateAfterSeconds * 1_000,
  }),
  /** Verify the target this often. */
  recheckEvery: durationSetting('PGWARDEN_RECHECK_EVERY', {
    minMs: 1_000,
    maxMs: 3_600_000,
    defaultMs: DEFAULT_RUNBOOK_SETTINGS.recheckSeconds * 1_000,
  }),
  /** Stop following the incident (with a final notice) after this long. */
  maxDuration: durationSetting('PGWARDEN_MAX_DURATION', {
    minMs: 60_000,
    maxMs: 7 * 86_400_000,
    defaultMs: DEFAULT_RUNBOOK_SETTINGS.maxDurationSeconds * 1_000,
  }),
} as const;

export type ClockSetting = keyof typeof RUNBOOK_CLOCK;

/** A clock setting as a duration schema with its bounds and default. */
export function clockSchema(setting: ClockSetting): Schema<number> {
  return RUNBOOK_CLOCK[setting].schema;
}

/** The runbook clock in milliseconds, as a configuration file or an environment gives it. */
export interface RunbookClock {
  escalateAfterMs: number;
  recheckEveryMs: number;
  maxDurationMs: number;
}

/**
 * What no single setting's bounds can see: a clock whose page never comes, or that never re-checks
 * before paging. `paths` names each setting where the caller reads it (a config field, a variable).
 */
export function runbookClockIssues(
  clock: RunbookClock,
  paths: Record<ClockSetting, string>,
  quote: (ms: number) => string = (ms) => JSON.stringify(formatDuration(ms)),
): Issue[] {
  // Messages name a setting as its reader writes it: the last segment of a config path, or the variable.
  const name = (setting: ClockSetting) => paths[setting].slice(paths[setting].lastIndexOf('.') + 1);
  const quoted = (setting: ClockSetting) => JSON.stringify(name(setting));
  const issues: Issue[] = [];
  const { escalateAfterMs, recheckEveryMs, maxDurationMs } = clock;
  if (escalateAfterMs >= maxDurationMs)
    issues.push({
      path: paths.escalateAfter,
      received: quote(escalateAfterMs),
      problem: `is not shorter than ${name('maxDuration')} (${formatDuration(maxDurationMs)}), so nobody would ever be paged`,
      fix: `Make ${quoted('escalateAfter')} shorter than ${quoted('maxDuration')}.`,
    });
  if (recheckEveryMs > escalateAfterMs)
    issues.push({
      path: paths.recheckEvery,
      received: quote(recheckEveryMs),
      problem: `is longer than ${name('escalateAfter')} (${formatDuration(escalateAfterMs)})`,
      fix: `Recheck at least once before escalating: make ${quoted('recheckEvery')} at most ${quoted('escalateAfter')}.`,
    });
  return issues;
}

const HTTPS = /^https:\/\//;

/**
 * The runbook's clock and links as configured: what the functions that open incidents put in the
 * execution input, and what the runbook function itself goes by (an execution's input is written by
 * whoever may start one). Part of the settings of the monitor, rds-events and runbook functions.
 */
export const RUNBOOK_SETTINGS = {
  escalateAfterMs: RUNBOOK_CLOCK.escalateAfter,
  recheckEveryMs: RUNBOOK_CLOCK.recheckEvery,
  maxDurationMs: RUNBOOK_CLOCK.maxDuration,
  dashboardUrl: optionalSetting('PGWARDEN_DASHBOARD_URL', { pattern: HTTPS, patternHint: 'an https:// URL' }),
  consoleUrl: optionalSetting('PGWARDEN_CONSOLE_URL', { pattern: HTTPS, patternHint: 'an https:// URL' }),
} as const;

/** The state machine the functions that open incidents start (monitor, rds-events). */
export const STATE_MACHINE_SETTING = {
  stateMachineArn: referenceSetting('PGWARDEN_STATE_MACHINE_ARN', {
    pattern: /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$|^arn:aws:states:local:/,
    patternHint: 'the runbook state machine ARN',
  }),
} as const;

const ENVIRONMENT_PATHS: Record<ClockSetting, string> = {
  escalateAfter: RUNBOOK_CLOCK.escalateAfter.variable,
  recheckEvery: RUNBOOK_CLOCK.recheckEvery.variable,
  maxDuration: RUNBOOK_CLOCK.maxDuration.variable,
};

/** The runbook clock and links as a function's settings carry them. */
export interface RunbookSettingValues extends RunbookClock {
  dashboardUrl?: string | undefined;
  consoleUrl?: string | undefined;
}

/**
 * The runbook settings from a function's parsed settings. A clock that cannot work (see
 * `runbookClockIssues`) fails the cold start with a `ConfigError` naming the variables.
 */
export function runbookSettingsFrom(
  values: RunbookSettingValues,
  functionName = 'pgwarden',
): RunbookSettings {
  const issues = runbookClockIssues(values, ENVIRONMENT_PATHS);
  if (issues.length > 0) throw new ConfigError(`environment of the ${functionName} function`, issues);
  return {
    ...runbookSettingsOf(values),
    ...(values.dashboardUrl ? { dashboardUrl: values.dashboardUrl } : {}),
    ...(values.consoleUrl ? { consoleUrl: values.consoleUrl } : {}),
  };
}

/** A clock in milliseconds as the runbook's input carries it, in whole seconds. */
export function runbookSettingsOf(clock: RunbookClock): RunbookSettings {
  return {
    escalateAfterSeconds: Math.round(clock.escalateAfterMs / 1_000),
    recheckSeconds: Math.max(1, Math.round(clock.recheckEveryMs / 1_000)),
    maxDurationSeconds: Math.max(1, Math.round(clock.maxDurationMs / 1_000)),
  };
}
