/**
 * The probe: a fresh connection with hard timeouts, one snapshot statement, a typed result. A database
 * fault is a classified result, never a thrown error.
 */

import { classifyError, type Failure } from '../classify.ts';
import { type Clock, systemClock } from '../clock.ts';
import { type ConnectionSpec, describeConnection } from '../connection.ts';
import { type CredentialDeps, forgetCredentials, resolveCredentials } from '../credentials.ts';
import { type DbSession, openSession, type ReadLimits, SYSTEM_SEARCH_PATH } from '../db.ts';
import { CredentialsError, describeError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redact } from '../redact.ts';
import { SNAPSHOT_SQL, type SnapshotRow } from './snapshot-sql.ts';

/** 2^31: transaction ids wrap around at this age; PostgreSQL stops accepting writes shortly before. */
export const WRAPAROUND_LIMIT = 2 ** 31;
/**
 * What one probe reads from the server at most. The snapshot is one row of about a kilobyte and the
 * integrity summary fifty; a server that sends more is broken or hostile, and is cut off long before
 * it can make the function run out of memory.
 */
export const PROBE_READ_LIMITS: ReadLimits = {
  maxMessageBytes: 1024 * 1024,
  maxTotalBytes: 4 * 1024 * 1024,
  maxRows: 1_000,
  maxNotices: 100,
};
/** A checkpointer younger than the postmaster by more than this means the server crash-restarted. */
const RESTART_MARGIN_MS = 1_000;

/** A probe session's timeouts unless told otherwise: the probe function's defaults (functions/probe/settings.ts). */
export const PROBE_TIMEOUTS = { connectTimeoutMs: 3_000, statementTimeoutMs: 2_000 } as const;

export interface ProbeOptions {
  /** @default PROBE_TIMEOUTS.connectTimeoutMs */
  connectTimeoutMs?: number;
  /** @default PROBE_TIMEOUTS.statementTimeoutMs */
  statementTimeoutMs?: number;
  /** Queries running longer count as long-running. @default 300 (5 minutes, the runbook's figure) */
  longQueryThresholdSeconds?: number;
  /** Name shown in the result (a target id). @default host:port/database */
  label?: string;
  /** @default "pgwarden-probe" */
  applicationName?: string;
}

export interface ConnectionCounts {
  total: number;
  active: number;
  idle: number;
  idleInTransaction: number;
  /** Sessions waiting on a lock. */
  waiting: number;
  /** max_connections. */
  max: number;
  /** Slots kept for superusers and reserved-connection roles. */
  reserved: number;
  /** max minus reserved: what applications can use. */
  usable: number;
  /** total / usable, in percent. Above 100 means reserved slots are in use. */
  utilizationPct: number;
}

/** One session waiting on a lock another session holds. */
export interface LockWait {
  pid: number;
  /** The sessions it waits for (pg_blocking_pids). */
  blockedBy: number[];
  /** How long it has waited; null before PostgreSQL 14, which does not record when a wait began. */
  waitingSeconds: number | null;
  /** When the waiting statement began: with the pid, it tells one wait from the next. */
  statementStartedAt: string | null;
}

/** Servers from this version on record when each lock wait began (pg_locks.waitstart). */
export const WAITSTART_VERSION_NUM = 140_000;

export interface HealthSnapshot {
  ok: true;
  target: string;
  checkedAt: string;
  latencyMs: { connect: number; query: number };
  serverVersion: string;
  serverVersionNum: number;
  serverStartedAt: string;
  /** When the server's background processes last started: after a crash-restart this moves, the postmaster's start time does not. */
  backgroundStartedAt: string | null;
  /** Set when the background processes restarted after the postmaster started: a crash-restart. */
  crashRestartAt: string | null;
  inRecovery: boolean;
  replicationLagSeconds: number | null;
  connections: ConnectionCounts;
  longestIdleSeconds: number;
  longestIdleInTransactionSeconds: number;
  longRunningQueries: number;
  longQueryThresholdSeconds: number;
  longestQuerySeconds: number;
  longestQueryPid: number | null;
  blockedSessions: number;
  /** Pids at the head of each lock chain: blocking others, blocked by nobody. */
  blockingPids: number[];
  /**
   * How long the longest current lock wait has lasted, in seconds (0 when no session waits). Null before
   * PostgreSQL 14: the monitor then judges a wait by seeing it across probes.
   */
  longestLockWaitSeconds: number | null;
  /** Up to 10 blocked sessions, longest wait first. */
  lockWaits: LockWait[];
  oldestTransactionAgeSeconds: number;
  wraparoundAge: number;
  wraparoundPct: number;
}

export interface ProbeFailure {
  ok: false;
  target: string;
  checkedAt: string;
  latencyMs: { connect: number; query: number | null };
  failure: Failure;
}

export type ProbeResult = HealthSnapshot | ProbeFailure;

export interface ProbeDeps extends Omit<CredentialDeps, 'clock'> {
  logger: Logger;
  clock?: Clock;
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export async function probe(
  spec: ConnectionSpec,
  options: ProbeOptions,
  deps: ProbeDeps,
): Promise<ProbeResult> {
  const clock = deps.clock ?? systemClock;
  const label = options.label ?? describeConnection(spec);
  const longQueryThresholdSeconds = options.longQueryThresholdSeconds ?? 300;
  const checkedAt = () => new Date(clock.now()).toISOString();

  let credentials: Awaited<ReturnType<typeof resolveCredentials>>;
  try {
    credentials = await resolveCredentials(spec, { ...deps, clock });
  } catch (error) {
    const message = redact(describeError(error));
    deps.logger.warn('probe could not obtain credentials', { target: label, error: message });
    return {
      ok: false,
      target: label,
      checkedAt: checkedAt(),
      latencyMs: { connect: 0, query: null },
      failure: {
        category: 'auth_failed',
        message,
        retryable: error instanceof CredentialsError,
        phase: 'connect',
      },
    };
  }

  const connectStarted = performance.now();
  let session: DbSession;
  try {
    session = await openSession(spec, credentials, {
      connectTimeoutMs: options.connectTimeoutMs ?? PROBE_TIMEOUTS.connectTimeoutMs,
      statementTimeoutMs: options.statementTimeoutMs ?? PROBE_TIMEOUTS.statementTimeoutMs,
      applicationName: options.applicationName ?? 'pgwarden-probe',
      searchPath: SYSTEM_SEARCH_PATH,
      readLimits: PROBE_READ_LIMITS,
      logger: deps.logger,
    });
  } catch (error) {
    const failure = classifyError(error, 'connect');
    if (failure.category === 'auth_failed') forgetCredentials(spec);
    return {
      ok: false,
      target: label,
      checkedAt: checkedAt(),
      latencyMs: { connect: round(performance.now() - connectStarted), query: null },
      failure,
    };
  }
  const connectMs = round(performance.now() - connectStarted);

  try {
    const { rows, durationMs } = await session.query<SnapshotRow>('health-snapshot', SNAPSHOT_SQL, [
      longQueryThresholdSeconds,
    ]);
    const row = rows[0];
    if (!row) throw new Error('the health snapshot returned no row');
    return toSnapshot(row, { label, connectMs, queryMs: round(durationMs), longQueryThresholdSeconds });
  } catch (error) {
    return {
      ok: false,
      target: label,
      checkedAt: checkedAt(),
      latencyMs: { connect: connectMs, query: null },
      failure: classifyError(error, 'query'),
    };
  } finally {
    await session.close();
  }
}

function iso(value: Date | null): string | null {
  return value ? value.toISOString() : null;
}

function toLockWaits(row: SnapshotRow): { longest: number | null; waits: LockWait[] } {
  const waits: LockWait[] = (row.lock_waits ?? []).map((w) => ({
    pid: w.pid,
    blockedBy: w.blockedBy,
    waitingSeconds: w.waitingSeconds === null ? null : round(Math.max(0, w.waitingSeconds)),
    statementStartedAt: w.statementStartedAt,
  }));
  if (row.server_version_num < WAITSTART_VERSION_NUM) return { longest: null, waits };
  return { longest: waits.reduce((max, w) => Math.max(max, w.waitingSeconds ?? 0), 0), waits };
}

function toSnapshot(
  row: SnapshotRow,
  meta: { label: string; connectMs: number; queryMs: number; longQueryThresholdSeconds: number },
): HealthSnapshot {
  const reserved = row.superuser_reserved + row.reserved + row.rds_reserved;
  const usable = Math.max(1, row.max_connections - reserved);
  const startedAt = row.server_started_at;
  const background = row.background_started_at;
  const crashRestart =
    background && background.getTime() - startedAt.getTime() > RESTART_MARGIN_MS ? background : null;
  const locks = toLockWaits(row);
  return {
    ok: true,
    target: meta.label,
    checkedAt: row.checked_at.toISOString(),
    latencyMs: { connect: meta.connectMs, query: meta.queryMs },
    serverVersion: row.server_version,
    serverVersionNum: row.server_version_num,
    serverStartedAt: startedAt.toISOString(),
    backgroundStartedAt: iso(background),
    crashRestartAt: iso(crashRestart),
    inRecovery: row.in_recovery,
    replicationLagSeconds: row.replication_lag_seconds === null ? null : round(row.replication_lag_seconds),
    connections: {
      total: row.total,
      active: row.active,
      idle: row.idle,
      idleInTransaction: row.idle_in_transaction,
      waiting: row.waiting,
      max: row.max_connections,
      reserved,
      usable,
      utilizationPct: round((row.total / usable) * 100),
    },
    longestIdleSeconds: round(row.longest_idle_seconds),
    longestIdleInTransactionSeconds: round(row.longest_idle_in_transaction_seconds),
    longRunningQueries: row.long_running_queries,
    longQueryThresholdSeconds: meta.longQueryThresholdSeconds,
    longestQuerySeconds: round(row.longest_query_seconds),
    longestQueryPid: row.longest_query_pid,
    blockedSessions: row.blocked_sessions,
    blockingPids: row.blocking_pids,
    longestLockWaitSeconds: locks.longest,
    lockWaits: locks.waits,
    oldestTransactionAgeSeconds: round(row.oldest_transaction_age_seconds),
    wraparoundAge: row.wraparound_age,
    wraparoundPct: round((row.wraparound_age / WRAPAROUND_LIMIT) * 100, 2),
  };
}
