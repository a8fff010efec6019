/**
 * The health snapshot: one statement, one round trip. pg_stat_activity is read once (materialized) and
 * pg_blocking_pids() runs only for sessions that wait on a heavyweight lock, so the cost stays linear
 * and small at thousands of sessions. pg_locks is read (once) only when a session is blocked: the
 * CASE leaves its sub-select, an init plan, unevaluated otherwise.
 *
 * How long each blocked session has waited comes from pg_locks.waitstart (PostgreSQL 14 and later). The
 * column is read through to_jsonb so the same statement parses on older servers, where it is null:
 * there the monitor judges a wait by seeing the same statement blocked across probes.
 *
 * Parameters: $1 long-query threshold in seconds.
 * Counts cover client backends and exclude the probe's own session.
 */
export const SNAPSHOT_SQL = `
WITH a AS MATERIALIZED (
  SELECT pid, backend_type, state, wait_event_type, backend_start, xact_start, query_start, state_change
  FROM pg_catalog.pg_stat_activity
),
c AS (
  SELECT * FROM a WHERE backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid()
),
w AS (
  SELECT pid, query_start, pg_catalog.pg_blocking_pids(pid) AS blockers FROM c WHERE wait_event_type = 'Lock'
),
blocked AS (
  SELECT pid, query_start, blockers FROM w WHERE cardinality(blockers) > 0
),
q AS (
  SELECT pid, extract(epoch FROM now() - query_start)::float8 AS seconds
  FROM c WHERE state = 'active' AND query_start IS NOT NULL
)
SELECT
  now() AS checked_at,
  pg_catalog.current_setting('server_version') AS server_version,
  pg_catalog.current_setting('server_version_num')::int AS server_version_num,
  pg_catalog.current_setting('max_connections')::int AS max_connections,
  pg_catalog.current_setting('superuser_reserved_connections')::int AS superuser_reserved,
  coalesce(nullif(pg_catalog.current_setting('reserved_connections', true), ''), '0')::int AS reserved,
  coalesce(nullif(pg_catalog.current_setting('rds.rds_superuser_reserved_connections', true), ''), '0')::int AS rds_reserved,
  (SELECT count(*) FROM c)::int AS total,
  (SELECT count(*) FROM c WHERE state = 'active')::int AS active,
  (SELECT count(*) FROM c WHERE state = 'idle')::int AS idle,
  (SELECT count(*) FROM c WHERE state IN ('idle in transaction', 'idle in transaction (aborted)'))::int AS idle_in_transaction,
  (SELECT count(*) FROM c WHERE wait_event_type = 'Lock')::int AS waiting,
  (SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0)::float8 FROM c WHERE state = 'idle') AS longest_idle_seconds,
  (SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0)::float8
     FROM c WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')) AS longest_idle_in_transaction_seconds,
  (SELECT count(*) FROM q WHERE seconds > $1::float8)::int AS long_running_queries,
  (SELECT coalesce(max(seconds), 0) FROM q) AS longest_query_seconds,
  (SELECT pid FROM q ORDER BY seconds DESC LIMIT 1) AS longest_query_pid,
  (SELECT count(*) FROM blocked)::int AS blocked_sessions,
  (SELECT coalesce(array_agg(DISTINCT h ORDER BY h), '{}')
     FROM blocked, unnest(blocked.blockers) AS h
     WHERE h NOT IN (SELECT pid FROM blocked)) AS blocking_pids,
  CASE WHEN EXISTS (SELECT 1 FROM blocked) THEN (
    SELECT json_agg(json_build_object(
      'pid', x.pid,
      'blockedBy', x.blockers,
      'waitingSeconds', extract(epoch FROM now() - x.wait_start)::float8,
      'statementStartedAt', x.query_start
    ) ORDER BY x.n)
    FROM (
      SELECT b.pid, b.blockers, b.query_start, l.wait_start,
             row_number() OVER (ORDER BY coalesce(l.wait_start, b.query_start), b.pid) AS n
      FROM blocked b
      LEFT JOIN (
        -- waitstart is briefly null just after a wait begins: such a wait counts from now.
        SELECT pid, min(coalesce((pg_catalog.to_jsonb(pl) ->> 'waitstart')::timestamptz, now())) AS wait_start
        FROM pg_catalog.pg_locks pl
        WHERE NOT granted AND pg_catalog.to_jsonb(pl) ? 'waitstart'
        GROUP BY pid
      ) l ON l.pid = b.pid
    ) x
    WHERE x.n <= 10
  ) END AS lock_waits,
  (SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float8 FROM c WHERE xact_start IS NOT NULL)
    AS oldest_transaction_age_seconds,
  (SELECT max(age(datfrozenxid))::bigint FROM pg_catalog.pg_database) AS wraparound_age,
  pg_catalog.pg_postmaster_start_time() AS server_started_at,
  (SELECT min(backend_start) FROM a WHERE backend_type = 'checkpointer') AS background_started_at,
  pg_catalog.pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_catalog.pg_is_in_recovery()
    THEN extract(epoch FROM now() - pg_catalog.pg_last_xact_replay_timestamp())::float8 END AS replication_lag_seconds
`;

export interface SnapshotRow {
  checked_at: Date;
  server_version: string;
  server_version_num: number;
  max_connections: number;
  superuser_reserved: number;
  reserved: number;
  rds_reserved: number;
  total: number;
  active: number;
  idle: number;
  idle_in_transaction: number;
  waiting: number;
  longest_idle_seconds: number;
  longest_idle_in_transaction_seconds: number;
  long_running_queries: number;
  longest_query_seconds: number;
  longest_query_pid: number | null;
  blocked_sessions: number;
  blocking_pids: number[];
  /** Up to 10 blocked sessions, longest wait first; null when none is blocked. */
  lock_waits: Array<{
    pid: number;
    blockedBy: number[];
    waitingSeconds: number | null;
    statementStartedAt: string | null;
  }> | null;
  oldest_transaction_age_seconds: number;
  wraparound_age: number;
  server_started_at: Date;
  background_started_at: Date | null;
  in_recovery: boolean;
  replication_lag_seconds: number | null;
}
