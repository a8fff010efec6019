/**
 * Flags shared by the commands that act on a database (sweep, runbook, start, drill): the remediation
 * policy and the runbook clock. Light on purpose: `pgwarden sweep` loads nothing of local mode.
 */
import { RUNBOOK_CLOCK } from '../shared/runbook/settings.ts';
import { protectedApplication, protectedUser, type RemediationPolicy } from '../shared/target.ts';
import type { FlagReader, FlagSpec } from './args.ts';

/** A flag whose value is a duration (30s, 5m, 1h). */
export const durationFlag = (describe: string): FlagSpec => ({ type: 'string', value: 'dur', describe });

/** Remediation flags (the same on sweep, runbook, start and drill). */
export const REMEDIATION_FLAGS: Record<string, FlagSpec> = {
  'idle-after': durationFlag('terminate sessions idle longer than this'),
  'idle-in-transaction-after': durationFlag('terminate sessions idle in a transaction longer than this'),
  'protect-user': {
    type: 'string',
    multiple: true,
    value: 'name',
    describe: 'never touch this user (repeatable)',
  },
  'protect-app': {
    type: 'string',
    multiple: true,
    value: 'name',
    describe: 'never touch this application_name (repeatable)',
  },
  max: { type: 'string', value: 'n', describe: 'act on at most this many sessions per run' },
  'dry-run': { type: 'boolean', describe: 'report what would be done, do nothing' },
};

/** What the runbook may do beyond the sweep's idle policy. */
export const RUNBOOK_ACTION_FLAGS: Record<string, FlagSpec> = {
  'lock-wait-after': durationFlag(
    'a session waiting on a lock this long makes its lock chain a problem to act on (default 1m)',
  ),
  'blocker-idle-after': durationFlag(
    'terminate an idle-in-transaction session blocking others once idle this long (default 60s)',
  ),
  'cancel-queries-after': durationFlag('cancel queries running longer than this (off by default)'),
  'pressure-idle-after': durationFlag(
    'when the pool is nearly exhausted, terminate sessions idle longer than this (default 30s)',
  ),
};

/** The runbook clock. */
export const CLOCK_FLAGS: Record<string, FlagSpec> = {
  'escalate-after': durationFlag('page if the incident is still open after this long'),
  'recheck-every': durationFlag('verify this often while the incident is open'),
  'max-duration': durationFlag('stop verifying (final notice) after this long'),
};

export interface ClockFlags {
  escalateAfterMs: number;
  recheckMs: number;
  maxDurationMs: number;
}

/**
 * The runbook clock's flags: the deployed bounds, except that by hand and in drills an incident may
 * escalate or end within seconds.
 */
export function readClock(reader: FlagReader, defaults: ClockFlags): ClockFlags {
  const { recheckEvery, maxDuration } = RUNBOOK_CLOCK;
  return {
    escalateAfterMs: reader.duration('escalate-after', defaults.escalateAfterMs, {
      minMs: 0,
      maxMs: maxDuration.maxMs,
    }),
    recheckMs: reader.duration('recheck-every', defaults.recheckMs, {
      minMs: recheckEvery.minMs,
      maxMs: recheckEvery.maxMs,
    }),
    maxDurationMs: reader.duration('max-duration', defaults.maxDurationMs, {
      minMs: 1_000,
      maxMs: maxDuration.maxMs,
    }),
  };
}

/** `--lock-wait-after`, in seconds, on top of `fallbackSeconds`. */
export function readLockWait(reader: FlagReader, fallbackSeconds: number): number {
  return reader.duration('lock-wait-after', fallbackSeconds * 1_000, { minMs: 1_000 }) / 1_000;
}

export function readRemediation(reader: FlagReader, base: RemediationPolicy): RemediationPolicy {
  const seconds = (name: string, fallback: number) =>
    reader.duration(name, fallback * 1_000, { minMs: 1_000 }) / 1_000;
  const cancel =
    reader.string('cancel-queries-after') === undefined
      ? base.cancelQueriesAfterSeconds
      : seconds('cancel-queries-after', 0);
  return {
    ...base,
    idleAfterSeconds: seconds('idle-after', base.idleAfterSeconds),
    idleInTransactionAfterSeconds: seconds('idle-in-transaction-after', base.idleInTransactionAfterSeconds),
    blockerIdleSeconds: seconds('blocker-idle-after', base.blockerIdleSeconds),
    cancelQueriesAfterSeconds: cancel,
    pressure: {
      ...base.pressure,
      idleAfterSeconds: seconds('pressure-idle-after', base.pressure.idleAfterSeconds),
    },
    protectUsers: [...base.protectUsers, ...reader.checkedStrings('protect-user', protectedUser)],
    protectApplications: [
      ...base.protectApplications,
      ...reader.checkedStrings('protect-app', protectedApplication),
    ],
    maxPerRun: reader.integer('max', base.maxPerRun, { min: 1, max: 1_000 }),
    dryRun: base.dryRun || reader.boolean('dry-run'),
  };
}
