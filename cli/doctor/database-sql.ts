/**
 * What `pgwarden doctor --url` asks the server, in one statement, as the role pgwarden will use. Every
 * built-in is schema-qualified and the session's search_path is pinned (as for the probe), so nothing a
 * database user created runs with the role's privileges.
 *
 * Roles are looked up by name in pg_roles before pg_has_role is asked about them: a role that does not
 * exist on this server or version (pg_use_reserved_connections before 16, rds_reserved off RDS) gives
 * null instead of an error. Settings come from pg_settings, which hides (rather than refuses) what the
 * role may not read.
 */
export const DOCTOR_SQL = `
WITH member AS (
  SELECT r.rolname, pg_catalog.pg_has_role(current_user, r.oid, 'USAGE') AS usable
  FROM pg_catalog.pg_roles r
  WHERE r.rolname IN ('pg_read_all_stats', 'pg_signal_backend', 'pg_use_reserved_connections',
                      'rds_reserved', 'rds_superuser', 'rdsadmin')
),
setting AS (
  SELECT name, setting FROM pg_catalog.pg_settings
  WHERE name IN ('track_activities', 'log_lock_waits', 'log_connections', 'ssl', 'reserved_connections',
                 'superuser_reserved_connections', 'rds.extensions')
)
SELECT
  current_user::text AS role,
  (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser,
  (SELECT usable FROM member WHERE rolname = 'pg_read_all_stats') AS read_all_stats,
  (SELECT usable FROM member WHERE rolname = 'pg_signal_backend') AS signal_backend,
  (SELECT usable FROM member WHERE rolname = 'pg_use_reserved_connections') AS use_reserved,
  (SELECT usable FROM member WHERE rolname = 'rds_reserved') AS rds_reserved,
  (SELECT usable FROM member WHERE rolname = 'rds_superuser') AS rds_superuser,
  (EXISTS (SELECT 1 FROM member WHERE rolname IN ('rdsadmin', 'rds_superuser'))
    OR EXISTS (SELECT 1 FROM setting WHERE name = 'rds.extensions')) AS on_rds,
  pg_catalog.current_setting('server_version_num')::int AS version_num,
  pg_catalog.current_setting('server_version') AS version,
  (SELECT setting FROM setting WHERE name = 'track_activities') AS track_activities,
  (SELECT setting FROM setting WHERE name = 'log_lock_waits') AS log_lock_waits,
  (SELECT setting FROM setting WHERE name = 'log_connections') AS log_connections,
  (SELECT setting FROM setting WHERE name = 'ssl') AS server_ssl,
  (SELECT setting::int FROM setting WHERE name = 'reserved_connections') AS reserved_connections,
  (SELECT setting::int FROM setting WHERE name = 'superuser_reserved_connections') AS superuser_reserved,
  s.ssl AS session_ssl,
  s.version AS tls_version,
  s.cipher AS tls_cipher
FROM (SELECT 1) AS one
LEFT JOIN pg_catalog.pg_stat_ssl s ON s.pid = pg_catalog.pg_backend_pid()
`;

export interface DoctorRow {
  role: string;
  superuser: boolean;
  /** Null when the server has no such role. */
  read_all_stats: boolean | null;
  signal_backend: boolean | null;
  use_reserved: boolean | null;
  rds_reserved: boolean | null;
  rds_superuser: boolean | null;
  on_rds: boolean;
  version_num: number;
  version: string;
  /** Null when the role may not read the setting (or the server has none). */
  track_activities: string | null;
  log_lock_waits: string | null;
  log_connections: string | null;
  server_ssl: string | null;
  reserved_connections: number | null;
  superuser_reserved: number | null;
  session_ssl: boolean | null;
  tls_version: string | null;
  tls_cipher: string | null;
}
