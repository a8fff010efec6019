/** Runbook settings as the starting functions read them from their environment. */
import { duration, optional, type Schema, string, withDefault } from '../validate.ts';
import { DEFAULT_RUNBOOK_SETTINGS, type RunbookSettings } from './types.ts';

/** Environment shape shared by every function that opens incidents. */
export const runbookEnvironment = {
  PGWARDEN_STATE_MACHINE_ARN: string({
    pattern: /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$|^arn:aws:states:local:/,
    patternHint: 'the runbook state machine ARN',
  }),
  PGWARDEN_ESCALATE_AFTER: withDefault(
    duration({ minMs: 10_000, maxMs: 86_400_000 }),
    DEFAULT_RUNBOOK_SETTINGS.escalateAfterSeconds * 1_000,
  ),
  PGWARDEN_RECHECK_EVERY: withDefault(
    duration({ minMs: 1_000, maxMs: 3_600_000 }),
    DEFAULT_RUNBOOK_SETTINGS.recheckSeconds * 1_000,
  ),
  PGWARDEN_MAX_DURATION: withDefault(
    duration({ minMs: 60_000, maxMs: 7 * 86_400_000 }),
    DEFAULT_RUNBOOK_SETTINGS.maxDurationSeconds * 1_000,
  ),
  PGWARDEN_DASHBOARD_URL: optional(string({ pattern: /^https:\/\//, patternHint: 'an https:// URL' })),
  PGWARDEN_CONSOLE_URL: optional(string({ pattern: /^https:\/\//, patternHint: 'an https:// URL' })),
} satisfies Record<string, Schema<unknown>>;

export function runbookSettingsFrom(env: {
  PGWARDEN_ESCALATE_AFTER: number;
  PGWARDEN_RECHECK_EVERY: number;
  PGWARDEN_MAX_DURATION: number;
  PGWARDEN_DASHBOARD_URL?: string | undefined;
  PGWARDEN_CONSOLE_URL?: string | undefined;
}): RunbookSettings {
  return {
    escalateAfterSeconds: Math.round(env.PGWARDEN_ESCALATE_AFTER / 1_000),
    recheckSeconds: Math.max(1, Math.round(env.PGWARDEN_RECHECK_EVERY / 1_000)),
    maxDurationSeconds: Math.round(env.PGWARDEN_MAX_DURATION / 1_000),
    ...(env.PGWARDEN_DASHBOARD_URL ? { dashboardUrl: env.PGWARDEN_DASHBOARD_URL } : {}),
    ...(env.PGWARDEN_CONSOLE_URL ? { consoleUrl: env.PGWARDEN_CONSOLE_URL } : {}),
  };
}
