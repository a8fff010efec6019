/**
 * The runbook's clock, defined once: each setting's bounds and default, and the rules that span them.
 * The configuration file (infra/config.ts), the environments of the functions that open incidents,
 * and the tests all read these, so a value `cdk synth` accepts is a value the functions accept.
 */
import { formatDuration } from '../duration.ts';
import { ConfigError, type Issue } from '../errors.ts';
import { duration, optional, type Schema, string, withDefault } from '../validate.ts';
import { DEFAULT_RUNBOOK_SETTINGS, type RunbookSettings } from './types.ts';

/** Bounds of one clock setting, in milliseconds. */
export interface ClockBounds {
  readonly minMs: number;
  readonly maxMs: number;
  readonly defaultMs: number;
}

/** The runbook clock's settings: their bounds and defaults. */
export const RUNBOOK_CLOCK = {
  /** Page if the incident is still open this long after it opened. */
  escalateAfter: {
    minMs: 10_000,
    maxMs: 86_400_000,
    defaultMs: DEFAULT_RUNBOOK_SETTINGS.escalateAfterSeconds * 1_000,
  },
  /** Verify the target this often. */
  recheckEvery: {
    minMs: 1_000,
    maxMs: 3_600_000,
    defaultMs: DEFAULT_RUNBOOK_SETTINGS.recheckSeconds * 1_000,
  },
  /** Stop following the incident (with a final notice) after this long. */
  maxDuration: {
    minMs: 60_000,
    maxMs: 7 * 86_400_000,
    defaultMs: DEFAULT_RUNBOOK_SETTINGS.maxDurationSeconds * 1_000,
  },
} as const satisfies Record<string, ClockBounds>;

export type ClockSetting = keyof typeof RUNBOOK_CLOCK;

/** A clock setting as a duration schema with its bounds and default. */
export function clockSchema(setting: ClockSetting): Schema<number> {
  const { minMs, maxMs, defaultMs } = RUNBOOK_CLOCK[setting];
  return withDefault(duration({ minMs, maxMs }), defaultMs);
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

/**
 * The runbook's clock and links as configured: what the functions that open incidents put in the
 * execution input, and what the runbook function itself goes by (an execution's input is written by
 * whoever may start one).
 */
export const runbookSettingsEnvironment = {
  PGWARDEN_ESCALATE_AFTER: clockSchema('escalateAfter'),
  PGWARDEN_RECHECK_EVERY: clockSchema('recheckEvery'),
  PGWARDEN_MAX_DURATION: clockSchema('maxDuration'),
  PGWARDEN_DASHBOARD_URL: optional(string({ pattern: /^https:\/\//, patternHint: 'an https:// URL' })),
  PGWARDEN_CONSOLE_URL: optional(string({ pattern: /^https:\/\//, patternHint: 'an https:// URL' })),
} satisfies Record<string, Schema<unknown>>;

/** Environment shape shared by every function that opens incidents. */
export const runbookEnvironment = {
  PGWARDEN_STATE_MACHINE_ARN: string({
    pattern: /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$|^arn:aws:states:local:/,
    patternHint: 'the runbook state machine ARN',
  }),
  ...runbookSettingsEnvironment,
} satisfies Record<string, Schema<unknown>>;

const ENVIRONMENT_PATHS: Record<ClockSetting, string> = {
  escalateAfter: 'PGWARDEN_ESCALATE_AFTER',
  recheckEvery: 'PGWARDEN_RECHECK_EVERY',
  maxDuration: 'PGWARDEN_MAX_DURATION',
};

/**
 * The runbook settings from a function's parsed environment. A clock that cannot work (see
 * `runbookClockIssues`) fails the cold start with a `ConfigError` naming the variables.
 */
export function runbookSettingsFrom(
  env: {
    PGWARDEN_ESCALATE_AFTER: number;
    PGWARDEN_RECHECK_EVERY: number;
    PGWARDEN_MAX_DURATION: number;
    PGWARDEN_DASHBOARD_URL?: string | undefined;
    PGWARDEN_CONSOLE_URL?: string | undefined;
  },
  functionName = 'pgwarden',
): RunbookSettings {
  const issues = runbookClockIssues(
    {
      escalateAfterMs: env.PGWARDEN_ESCALATE_AFTER,
      recheckEveryMs: env.PGWARDEN_RECHECK_EVERY,
      maxDurationMs: env.PGWARDEN_MAX_DURATION,
    },
    ENVIRONMENT_PATHS,
  );
  if (issues.length > 0) throw new ConfigError(`environment of the ${functionName} function`, issues);
  return {
    escalateAfterSeconds: Math.round(env.PGWARDEN_ESCALATE_AFTER / 1_000),
    recheckSeconds: Math.max(1, Math.round(env.PGWARDEN_RECHECK_EVERY / 1_000)),
    maxDurationSeconds: Math.round(env.PGWARDEN_MAX_DURATION / 1_000),
    ...(env.PGWARDEN_DASHBOARD_URL ? { dashboardUrl: env.PGWARDEN_DASHBOARD_URL } : {}),
    ...(env.PGWARDEN_CONSOLE_URL ? { consoleUrl: env.PGWARDEN_CONSOLE_URL } : {}),
  };
}
