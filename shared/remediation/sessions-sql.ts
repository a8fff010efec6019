/**
 * The remediator's view of the server: one statement that lists the sessions a remediation rule could
 * apply to, plus the pool numbers utilization is computed from. Like the health snapshot it reads
 * pg_stat_activity once (materialized) and calls pg_blocking_pids() only for sessions waiting on a
 * heavyweight lock, so it stays cheap at thousands of sessions.
 *
 * Only sessions past the loosest threshold of a requested rule are returned, so a leaking pool of
 * fresh connections does not inflate the result. Non-client backends (walsenders, autovacuum, parallel
 * and other background workers) are returned too when they pass a bound: the planner refuses them, and
 * the audit says so. The caller's own backend is never returned.
 */

/** Lower bounds a session must pass to be listed; `null` leaves that kind of session out entirely. */
export interface CandidateBounds {
  /** `idle` sessions idle at least this long. */
  idleSeconds: number | null;
  /** Sessions idle in transaction at least this long. */
  idleInTransactionSeconds: number | null;
  /** Sessions idle in transaction at least this long that head a lock chain. */
  blockerIdleSeconds: number | null;
  /** `active` sessions whose statement has run at least this long. */
  activeSeconds: number | null;
}

/**
 * Parameters: $1 idle, $2 idle-in-transaction, $3 lock-chain blocker, $4 active bound in seconds (each
 * nullable), $5 whether to read query text at all (it stays on the server unless the caller asked).
 *
 * `stateChange` comes back as JSON text with microsecond precision: a JavaScript Date keeps only
 * milliseconds, and the re-check before each signal compares it for equality.
 */
export const SESSIONS_SQL = `
WITH a AS MATERIALIZED (
  SELECT pid, usename, usesysid, application_name, client_addr, state, backend_type, wait_event_type,
         state_change, xact_start, query_start, query
  FROM pg_catalog.pg_stat_activity
  WHERE pid <> pg_catalog.pg_backend_pid()
),
w AS (
  SELECT pid, pg_catalog.pg_blocking_pids(pid) AS blockers
  FROM a WHERE backend_type = 'client backend' AND wait_event_type = 'Lock'
),
blocked AS (
  SELECT pid, blockers FROM w WHERE cardinality(blockers) > 0
),
heads AS (
  SELECT DISTINCT h AS pid FROM blocked, unnest(blocked.blockers) AS h
  WHERE h NOT IN (SELECT pid FROM blocked)
),
t AS (
  SELECT a.*,
    extract(epoch FROM now() - a.state_change)::float8 AS idle_seconds,
    extract(epoch FROM now() - a.xact_start)::float8 AS transaction_seconds,
    extract(epoch FROM now() - a.query_start)::float8 AS query_seconds,
    a.pid IN (SELECT pid FROM heads) AS lock_chain_head
  FROM a
),
candidates AS (
  SELECT t.*, coalesce(r.rolsuper, false) AS superuser
  FROM t LEFT JOIN pg_catalog.pg_roles r ON r.oid = t.usesysid
  WHERE (t.state = 'idle' AND t.idle_seconds >= $1::float8)
     OR (t.state IN ('idle in transaction', 'idle in transaction (aborted)')
         AND (t.idle_seconds >= $2::float8 OR (t.lock_chain_head AND t.idle_seconds >= $3::float8)))
     OR (t.state = 'active' AND t.query_seconds >= $4::float8)
)
SELECT
  SESSION_USER AS own_user,
  pg_catalog.current_setting('max_connections')::int AS max_connections,
  pg_catalog.current_setting('superuser_reserved_connections')::int AS superuser_reserved,
  coalesce(nullif(pg_catalog.current_setting('reserved_connections', true), ''), '0')::int AS reserved,
  coalesce(nullif(pg_catalog.current_setting('rds.rds_superuser_reserved_connections', true), ''), '0')::int AS rds_reserved,
  (SELECT count(*) FROM a WHERE backend_type = 'client backend')::int AS client_backends,
  coalesce((
    SELECT json_agg(json_build_object(
      'pid', pid,
      'user', usename,
      'application', application_name,
      'clientAddr', host(client_addr),
      'state', state,
      'backendType', backend_type,
      'waitEventType', wait_event_type,
      'idleSeconds', idle_seconds,
      'transactionSeconds', transaction_seconds,
      'querySeconds', query_seconds,
      'stateChange', state_change,
      'superuser', superuser,
      'lockChainHead', lock_chain_head,
      'query', CASE WHEN $5::boolean THEN left(query, 200) END
    ) ORDER BY pid)
    FROM candidates
  ), '[]'::json) AS sessions
`;

/** One session as listed by SESSIONS_SQL (the JSON keys are built in the statement). */
export interface SessionInfo {
  pid: number;
  /** usename; null for background processes without a role. */
  user: string | null;
  /** application_name; '' when the client set none. */
  application: string;
  /** Client IP; null for Unix-socket and background sessions. */
  clientAddr: string | null;
  /** 'active', 'idle', 'idle in transaction', 'idle in transaction (aborted)', ...; null for background processes. */
  state: string | null;
  /** 'client backend' for application sessions; anything else is a server process. */
  backendType: string;
  waitEventType: string | null;
  /** Seconds since the last state change: how long an idle session has been idle. */
  idleSeconds: number | null;
  /** Seconds since the open transaction began; null outside a transaction. */
  transactionSeconds: number | null;
  /** Seconds since the current (or last) statement began. */
  querySeconds: number | null;
  /** state_change as ISO text with microseconds; the re-check before acting compares it exactly. */
  stateChange: string | null;
  /** The session's role is a superuser (pg_roles.rolsuper). */
  superuser: boolean;
  /** Blocks other sessions and is not blocked itself: the head of a lock chain. */
  lockChainHead: boolean;
  /** The first 200 characters of the statement; null unless query text was requested. */
  query: string | null;
}

export interface SessionsRow {
  /** The role the remediator logged in as: with the `pgwarden-` name, what marks pgwarden's own sessions. */
  own_user: string;
  max_connections: number;
  superuser_reserved: number;
  reserved: number;
  rds_reserved: number;
  /** Client backends, the caller's own session excluded. */
  client_backends: number;
  sessions: SessionInfo[];
}

/** Parameters for SESSIONS_SQL, in order. */
export function sessionsParams(bounds: CandidateBounds, includeQueryText: boolean): unknown[] {
  return [
    bounds.idleSeconds,
    bounds.idleInTransactionSeconds,
    bounds.blockerIdleSeconds,
    bounds.activeSeconds,
    includeQueryText,
  ];
}

/**
 * Signals one session only if it is still in the state it was listed in, unchanged since the same
 * state_change: a session that ran a statement in the meantime is no longer the one the plan judged.
 * No row means it changed or is gone; `false` means the server could not signal it.
 *
 * Parameters: $1 pid, $2 state, $3 state_change (ISO text).
 */
export const TERMINATE_SQL = `
SELECT pg_catalog.pg_terminate_backend(pid) AS signalled
FROM pg_catalog.pg_stat_activity
WHERE pid = $1 AND backend_type = 'client backend' AND state = $2 AND state_change = $3::timestamptz
`;

/** As TERMINATE_SQL, but cancels the running statement and leaves the session connected. */
export const CANCEL_SQL = `
SELECT pg_catalog.pg_cancel_backend(pid) AS signalled
FROM pg_catalog.pg_stat_activity
WHERE pid = $1 AND backend_type = 'client backend' AND state = $2 AND state_change = $3::timestamptz
`;

export interface SignalRow {
  signalled: boolean;
}
