/** Flags of the commands that run pgwarden locally (start, drill), on top of the policy flags. */
import { monitorSettings } from '../functions/monitor/settings.ts';
import type { ConnectionSpec } from '../shared/connection.ts';
import { formatDuration } from '../shared/duration.ts';
import type { Logger } from '../shared/logger.ts';
import type { Thresholds } from '../shared/target.ts';
import type { FlagReader, FlagSpec } from './args.ts';
import { DRILLS, type Drill } from './local/drills.ts';
import { homeFolder } from './local/home.ts';
import { LOCAL_PROFILE, type LocalSettings } from './local/system.ts';
import {
  CLOCK_FLAGS,
  durationFlag as d,
  REMEDIATION_FLAGS,
  readClock,
  readLockWait,
  readRemediation,
} from './policy-flags.ts';

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
