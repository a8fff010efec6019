/** Flags shared by the commands that run pgwarden locally (start, drill, runbook, sweep). */
import { monitorSettings } from '../functions/monitor/settings.ts';
import type { ConnectionSpec } from '../shared/connection.ts';
import { formatDuration } from '../shared/duration.ts';
import type { Logger } from '../shared/logger.ts';
import { RUNBOOK_CLOCK } from '../shared/runbook/settings.ts';
import {
  protectedApplication,
  protectedUser,
  type RemediationPolicy,
  type Thresholds,
} from '../shared/target.ts';
import type { FlagReader, FlagSpec } from './args.ts';
import { DRILLS, type Drill } from './local/drills.ts';
import { homeFolder } from './local/home.ts';
import { LOCAL_PROFILE, type LocalSettings } from './local/system.ts';

const d = (describe: string): FlagSpec => ({ type: 'string', value: 'dur', describe });

/** Remediation flags (the same on sweep, runbook, start and drill). */
export const REMEDIATION_FLAGS: Record<string, FlagSpec> = {
  'idle-after': d('terminate sessions idle longer than this'),
  'idle-in-transaction-after': d('terminate sessions idle in a transaction longer than this'),
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
  'lock-wait-after': d(
    'a session waiting on a lock this long makes its lock chain a problem to act on (default 1m)',
  ),
  'blocker-idle-after': d(
    'terminate an idle-in-transaction session blocking others once idle this long (default 60s)',
  ),
  'cancel-queries-after': d('cancel queries running longer than this (off by default)'),
  'pressure-idle-after': d(
    'when the pool is nearly exhausted, terminate sessions idle longer than this (default 30s)',
  ),
};

/** The runbook clock. */
export const CLOCK_FLAGS: Record<string, FlagSpec> = {
  'escalate-after': d('page if the incident is still open after this long'),
  'recheck-every': d('verify this often while the incident is open'),
  'max-duration': d('stop verifying (final notice) after this long'),
};

/** What local mode watches and how fast. */
export const LOCAL_FLAGS: Record<string, FlagSpec> = {
  url: {
    type: 'string',
    value: 'postgres-url',
    describe: 'monitor this database instead of an embedded one (also $DATABASE_URL)',
  },
  cadence: d(`probe every (default ${formatDuration(LOCAL_PROFILE.cadenceMs)})`),
  'sweep-every': d(`run the idle sweep every (default ${formatDuration(LOCAL_PROFILE.sweepEveryMs)})`),
  'long-query-after': d(
    `a query running longer is long-running (default ${LOCAL_PROFILE.thresholds.longQuerySeconds}s)`,
  ),
  'lock-wait-after': d(
    `a session waiting on a lock this long makes its lock chain a problem (default ${LOCAL_PROFILE.thresholds.lockWaitSeconds}s)`,
  ),
  'cancel-queries-after': d('cancel queries running longer than this (off by default)'),
  'pressure-idle-after': d(
    `under pool pressure, terminate sessions idle longer than this (default ${LOCAL_PROFILE.remediation.pressure.idleAfterSeconds}s)`,
  ),
  'blocker-idle-after': d(
    `terminate a blocking idle-in-transaction session once idle this long (default ${LOCAL_PROFILE.remediation.blockerIdleSeconds}s)`,
  ),
  home: {
    type: 'string',
    value: 'dir',
    describe: 'where the outbox, metrics file and control socket go (default .pgwarden)',
  },
  ...CLOCK_FLAGS,
  ...REMEDIATION_FLAGS,
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

/** Local-mode settings from the flags, on top of the local profile. */
export function readLocalSettings(
  reader: FlagReader,
  env: Record<string, string | undefined>,
  logger: Logger,
): LocalSettings {
  const url: ConnectionSpec | undefined = reader.database(env, false);
  const base = LOCAL_PROFILE;
  const thresholds: Thresholds = {
    ...base.thresholds,
    longQuerySeconds:
      reader.duration('long-query-after', base.thresholds.longQuerySeconds * 1_000, { minMs: 1_000 }) / 1_000,
    lockWaitSeconds: readLockWait(reader, base.thresholds.lockWaitSeconds),
  };
  const remediation = readRemediation(reader, base.remediation);
  // A transaction the policy would end must count as unhealthy no later than that.
  thresholds.idleInTransactionSeconds = Math.min(
    thresholds.idleInTransactionSeconds,
    remediation.idleInTransactionAfterSeconds,
  );
  const cancel = reader.string('cancel-queries-after');
  if (cancel !== undefined)
    remediation.cancelQueriesAfterSeconds =
      reader.duration('cancel-queries-after', 0, { minMs: 1_000 }) / 1_000;
  remediation.pressure = {
    ...remediation.pressure,
    idleAfterSeconds:
      reader.duration('pressure-idle-after', base.remediation.pressure.idleAfterSeconds * 1_000, {
        minMs: 1_000,
      }) / 1_000,
  };
  return {
    ...(url ? { databaseUrl: url } : {}),
    home: homeFolder(reader.string('home'), env),
    // Faster than deployed allows (a drill plays out in a minute), never slower.
    cadenceMs: reader.duration('cadence', base.cadenceMs, {
      minMs: 200,
      maxMs: monitorSettings.settings.cadenceMs.maxMs,
    }),
    confirmDelayMs: base.confirmDelayMs,
    sweepEveryMs: reader.duration('sweep-every', base.sweepEveryMs, { minMs: 1_000 }),
    ...readClock(reader, base),
    thresholds,
    remediation,
    maxConnections: base.maxConnections,
    logger,
  };
}

/** One line describing the policy in force, printed at start-up. */
export function describeSettings(s: LocalSettings): string {
  const f = (ms: number) => formatDuration(ms);
  const r = s.remediation;
  return [
    `probe every ${f(s.cadenceMs)}, sweep every ${f(s.sweepEveryMs)}`,
    `page after ${f(s.escalateAfterMs)}, re-check every ${f(s.recheckMs)}, give up after ${f(s.maxDurationMs)}`,
    `idle > ${f(r.idleAfterSeconds * 1_000)} (under pressure > ${f(r.pressure.idleAfterSeconds * 1_000)}), idle in transaction > ${f(r.idleInTransactionAfterSeconds * 1_000)}, lock wait > ${f(s.thresholds.lockWaitSeconds * 1_000)}, long query > ${f(s.thresholds.longQuerySeconds * 1_000)}${
      r.cancelQueriesAfterSeconds === null
        ? ' (not canceled)'
        : ` (canceled after ${f(r.cancelQueriesAfterSeconds * 1_000)})`
    }, at most ${r.maxPerRun} per run${r.dryRun ? ', DRY RUN' : ''}`,
  ].join('; ');
}

/** The drill `raw` names, or undefined with an issue on `reader` when it names none. */
export function readDrill(reader: FlagReader, raw: string | undefined, path: string): Drill | undefined {
  if (raw === undefined) return undefined;
  if ((DRILLS as readonly string[]).includes(raw)) return raw as Drill;
  reader.issues.push({
    path,
    received: JSON.stringify(raw),
    problem: 'is not a drill',
    fix: `Use one of ${DRILLS.join(', ')}.`,
  });
  return undefined;
}
