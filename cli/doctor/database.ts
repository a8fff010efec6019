/**
 * The database side of `pgwarden doctor`: connect as the probe does, as the role pgwarden will use, and
 * say whether that role and server will hold up when it matters: the role's grants, its way in when
 * the pool is full, the settings that make the evidence useful, TLS, and the margin left right now.
 */
import { classifyError, explainCategory, type Failure } from '../../shared/classify.ts';
import { systemClock } from '../../shared/clock.ts';
import { type ConnectionSpec, describeConnection } from '../../shared/connection.ts';
import { resolveCredentials } from '../../shared/credentials.ts';
import { SYSTEM_SEARCH_PATH, withSession } from '../../shared/db.ts';
import { formatDuration } from '../../shared/duration.ts';
import {
  PROBE_READ_LIMITS,
  PROBE_TIMEOUTS,
  type ProbeDeps,
  type ProbeResult,
  probe,
} from '../../shared/probe/snapshot.ts';
import { DOCTOR_SQL, type DoctorRow } from './database-sql.ts';
import { type Check, fail, ok, warn } from './report.ts';

/** The probe's own timeouts: the doctor connects as the deployed probe does. */
const PROBE_CONNECT_TIMEOUT_MS = PROBE_TIMEOUTS.connectTimeoutMs;
const PROBE_STATEMENT_TIMEOUT_MS = PROBE_TIMEOUTS.statementTimeoutMs;

/** Shows in pg_stat_activity; the `pgwarden-` prefix marks it as pgwarden's own session. */
export const DOCTOR_APPLICATION = 'pgwarden-doctor';

/** Below this the health snapshot cannot run (backend_type in pg_stat_activity). */
const MIN_VERSION_NUM = 100_000;
/** From this version the server dates lock waits (pg_locks.waitstart). */
const WAITSTART_VERSION_NUM = 140_000;
/** What the monitor and remediation may need at once: a probe, a remediation, the runbook's probe. */
const SLOTS_WANTED = 3;

const RDS_CA_BUNDLE = 'https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem';

export interface DatabaseCheckOptions {
  /** @default PROBE_CONNECT_TIMEOUT_MS */
  connectTimeoutMs?: number;
  /** @default PROBE_STATEMENT_TIMEOUT_MS */
  statementTimeoutMs?: number;
}

/** A host on this machine: plaintext to it never crosses a network. */
export function isLocalHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h.startsWith('/');
}

/** A role name as SQL takes it: bare when it is a plain lower-case identifier, quoted otherwise. */
export function sqlRole(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/**
 * Runs every database check as the role `spec` names. Never throws for a database fault: a connection
 * that fails is the `connect` check failing, with the category and its fix.
 */
export async function databaseChecks(
  spec: ConnectionSpec,
  deps: ProbeDeps,
  options: DatabaseCheckOptions = {},
): Promise<Check[]> {
  const connectTimeoutMs = options.connectTimeoutMs ?? PROBE_CONNECT_TIMEOUT_MS;
  const statementTimeoutMs = options.statementTimeoutMs ?? PROBE_STATEMENT_TIMEOUT_MS;
  const result = await probe(
    spec,
    { connectTimeoutMs, statementTimeoutMs, applicationName: DOCTOR_APPLICATION },
    deps,
  );
  if (!result.ok && result.failure.phase === 'connect')
    return [connectFailed(spec, result.failure), tlsCheck(spec, { failure: result.failure })];

  let row: DoctorRow;
  try {
    const credentials = await resolveCredentials(spec, { ...deps, clock: deps.clock ?? systemClock });
    row = await withSession(
      spec,
      credentials,
      {
        connectTimeoutMs,
        statementTimeoutMs,
        applicationName: DOCTOR_APPLICATION,
        searchPath: SYSTEM_SEARCH_PATH,
        readLimits: PROBE_READ_LIMITS,
        logger: deps.logger,
      },
      async (session) => {
        const rows = (await session.query<DoctorRow>('doctor', DOCTOR_SQL)).rows;
        if (!rows[0]) throw new Error('the doctor statement returned no row');
        return rows[0];
      },
    );
  } catch (error) {
    const failure = classifyError(error, 'query');
    return [connectFailed(spec, failure), tlsCheck(spec, { failure })];
  }

  const user = row.role;
  return [
    ok(
      'connect',
      `connected to ${describeConnection({ ...spec, user })} as the probe does in ${Math.round(result.latencyMs.connect)} ms`,
    ),
    tlsCheck(spec, { row }),
    readSessions(row),
    signalBackends(row),
    superuser(row),
    reservedSlot(row),
    serverVersion(row),
    trackActivities(row),
    logSetting(row, 'log_lock_waits', row.log_lock_waits, 'which session blocked which, and for how long'),
    logSetting(
      row,
      'log_connections',
      row.log_connections,
      'who connected, from where, when the pool filled',
    ),
    ...(result.ok ? [marginSlots(result, row)] : []),
    probeTime(result, statementTimeoutMs),
  ];
}

function connectFailed(spec: ConnectionSpec, failure: Failure): Check {
  const where = describeConnection(spec);
  const code = failure.sqlstate
    ? ` (SQLSTATE ${failure.sqlstate})`
    : failure.errno
      ? ` (${failure.errno})`
      : '';
  return fail(
    'connect',
    `could not connect to ${where}: ${failure.category}${code}: ${explainCategory(failure.category)}. The server said: ${failure.message}`,
    connectFix(spec, failure),
  );
}

function connectFix(spec: ConnectionSpec, failure: Failure): string {
  const role = sqlRole(spec.user ?? 'pgwarden_monitor');
  switch (failure.category) {
    case 'auth_failed':
      return /cleartext/i.test(failure.message)
        ? `Make the server ask for SCRAM: set password_encryption = 'scram-sha-256', ALTER ROLE ${role} PASSWORD '...'; and use scram-sha-256 for this host in pg_hba.conf.`
        : `Check the password (the URL or PGPASSWORD) and set it if needed: ALTER ROLE ${role} WITH LOGIN PASSWORD '...'; make sure pg_hba.conf admits ${role} from this host with scram-sha-256 (on RDS with IAM: GRANT rds_iam TO ${role};).`;
    case 'database_missing':
      return `Point the URL at an existing database (SELECT datname FROM pg_database;), or CREATE DATABASE ${sqlRole(spec.database)};`;
    case 'too_many_connections':
      return `Every slot is taken, and this role has none kept for it: GRANT pg_use_reserved_connections TO ${role}; with reserved_connections > 0 (PostgreSQL 16+), or GRANT rds_reserved TO ${role}; on RDS.`;
    case 'unreachable':
      return `Check that PostgreSQL listens on ${spec.host}:${spec.port} (listen_addresses, port) and that security groups and firewalls admit this machine (and the probe's security group) on port ${spec.port}.`;
    case 'timeout':
      return `Nothing answered within ${formatDuration(PROBE_CONNECT_TIMEOUT_MS)}: open port ${spec.port} to this machine (and to the probe's security group), and check the route to ${spec.host}.`;
    case 'dns':
      return `Check the host name ${spec.host}: use the instance or cluster endpoint RDS shows (aws rds describe-db-instances --query 'DBInstances[].Endpoint.Address').`;
    case 'tls':
      return tlsFix(failure.message);
    case 'starting_up':
    case 'shutting_down':
    case 'connection_lost':
      return 'The server is restarting or dropped the connection: run the doctor again once it accepts connections.';
    case 'permission_denied':
      return `GRANT CONNECT ON DATABASE ${sqlRole(spec.database)} TO ${role};`;
    case 'query_canceled':
      return `The statement ran past its ${formatDuration(PROBE_STATEMENT_TIMEOUT_MS)} timeout: check the server's load.`;
    default:
      return 'Run `pgwarden probe --url ...` to see the full failure, and set PGWARDEN_LOG_LEVEL=debug for the session log.';
  }
}

function tlsFix(message: string): string {
  if (/does not support ssl/i.test(message))
    return `The server has TLS off: turn it on (ssl = on with ssl_cert_file and ssl_key_file; RDS always offers TLS). For a server on this machine only, sslmode=disable.`;
  return `Trust the server's CA: add sslrootcert=/path/to/ca.pem to the URL (RDS: the global bundle, ${RDS_CA_BUNDLE}) or set NODE_EXTRA_CA_CERTS, and use the host name the certificate names.`;
}

function tlsCheck(spec: ConnectionSpec, seen: { row?: DoctorRow; failure?: Failure }): Check {
  const { failure, row } = seen;
  if (failure?.category === 'tls')
    return fail(
      'tls',
      `TLS could not be set up with ${spec.host}: ${failure.message}`,
      tlsFix(failure.message),
    );
  const verifyFull = `Connect with sslmode=verify-full&sslrootcert=/path/to/ca.pem (RDS: the global bundle, ${RDS_CA_BUNDLE}).`;
  const session = row?.session_ssl
    ? ` (${row.tls_version ?? 'TLS'}, ${row.tls_cipher ?? 'cipher unknown'})`
    : '';
  switch (spec.tls.mode) {
    case 'disable':
      return isLocalHost(spec.host)
        ? ok('tls', `plaintext (sslmode=disable) to ${spec.host}, a server on this machine`)
        : fail(
            'tls',
            `plaintext (sslmode=disable) to ${spec.host}: the password and every query cross the network unencrypted`,
            `Turn TLS on in the server (RDS has it on) and ${verifyFull.charAt(0).toLowerCase()}${verifyFull.slice(1)}`,
          );
    case 'require':
      return warn(
        'tls',
        `encrypted${session} but the server's certificate is not verified (sslmode=require): whoever can intercept the connection can pose as the server`,
        verifyFull,
      );
    case 'verify-ca':
      return warn(
        'tls',
        `encrypted${session}, the certificate's CA is verified but not its host name (sslmode=verify-ca)`,
        verifyFull,
      );
    case 'verify-full':
      return ok('tls', `encrypted and verified${session} (sslmode=verify-full)`);
  }
}

function readSessions(row: DoctorRow): Check {
  if (row.superuser) return ok('role.read_sessions', 'a superuser: reads every session');
  if (row.read_all_stats)
    return ok('role.read_sessions', 'reads every session (pg_read_all_stats, part of pg_monitor)');
  return fail(
    'role.read_sessions',
    `${row.role} sees only its own sessions: pg_stat_activity hides other roles' states and queries, so pgwarden would miscount the pool and never see their idle transactions or lock chains`,
    `GRANT pg_monitor TO ${sqlRole(row.role)};`,
  );
}

function signalBackends(row: DoctorRow): Check {
  if (row.superuser) return ok('role.signal_backends', 'a superuser: may signal any session');
  if (row.signal_backend)
    return ok(
      'role.signal_backends',
      'may cancel and terminate other roles’ sessions (pg_signal_backend; never a superuser’s)',
    );
  return fail(
    'role.signal_backends',
    `${row.role} may signal only its own sessions: remediation could not terminate an idle or blocking session of any other role`,
    `GRANT pg_signal_backend TO ${sqlRole(row.role)};`,
  );
}

function superuser(row: DoctorRow): Check {
  const dedicated = `Create a role with only what pgwarden needs and use it instead: CREATE ROLE pgwarden_monitor WITH LOGIN PASSWORD '...'; GRANT pg_monitor, pg_signal_backend TO pgwarden_monitor; (and its reserved-slot grant, see role.reserved_slot).`;
  if (row.superuser)
    return warn(
      'role.superuser',
      `${row.role} is a superuser: far more than pgwarden needs, and a leaked credential would own the server`,
      dedicated,
    );
  if (row.rds_superuser)
    return warn(
      'role.superuser',
      `${row.role} is a member of rds_superuser: far more than pgwarden needs`,
      dedicated,
    );
  return ok('role.superuser', `${row.role} is not a superuser (least privilege)`);
}

function reservedSlot(row: DoctorRow): Check {
  const role = sqlRole(row.role);
  const reserved = row.reserved_connections ?? 0;
  if (row.superuser) {
    const slots = (row.superuser_reserved ?? 0) + reserved;
    return slots > 0
      ? ok(
          'role.reserved_slot',
          `a superuser: may use the ${slots} slot(s) kept for superusers and reserved roles`,
        )
      : warn(
          'role.reserved_slot',
          'a superuser, but superuser_reserved_connections is 0: no slot is kept for it when the pool is full',
          'ALTER SYSTEM SET superuser_reserved_connections = 3; then restart the server.',
        );
  }
  if (row.on_rds && row.rds_reserved !== null) {
    if (!row.rds_reserved)
      return fail(
        'role.reserved_slot',
        `${row.role} cannot use the reserved slots: when the pool is full the monitor is refused with 53300 like every application`,
        `GRANT rds_reserved TO ${role};${reserved > 0 ? '' : ' and set reserved_connections to 3 in the DB parameter group (static: reboot the instance).'}`,
      );
    if (reserved <= 0)
      return fail(
        'role.reserved_slot',
        `${row.role} is in rds_reserved, but reserved_connections is 0: no slot is kept for it`,
        'Set reserved_connections to 3 in the DB parameter group (static: reboot the instance).',
      );
    return ok('role.reserved_slot', `${reserved} slot(s) kept for rds_reserved, and ${row.role} is a member`);
  }
  if (row.use_reserved !== null) {
    const restart = 'ALTER SYSTEM SET reserved_connections = 3; then restart the server';
    const parameterGroup = 'set reserved_connections to 3 in the DB parameter group (static: reboot)';
    if (!row.use_reserved)
      return fail(
        'role.reserved_slot',
        `${row.role} cannot use the ${reserved} reserved slot(s): when the pool is full the monitor is refused with 53300 like every application`,
        `GRANT pg_use_reserved_connections TO ${role};${reserved > 0 ? '' : ` and ${row.on_rds ? parameterGroup : restart}.`}`,
      );
    if (reserved <= 0)
      return fail(
        'role.reserved_slot',
        `${row.role} may use reserved slots, but reserved_connections is 0: none is kept`,
        `${row.on_rds ? parameterGroup : restart}.`,
      );
    return ok(
      'role.reserved_slot',
      `${reserved} slot(s) kept for pg_use_reserved_connections, and ${row.role} is a member`,
    );
  }
  return warn(
    'role.reserved_slot',
    `PostgreSQL ${row.version} keeps no slot for roles that are not superusers: when the pool is full the monitor sees 53300 like everyone else, and reports too_many_connections instead of what fills the pool`,
    `Upgrade to PostgreSQL 16 or later, then GRANT pg_use_reserved_connections TO ${role}; with reserved_connections > 0 (on RDS: GRANT rds_reserved TO ${role};). Until then keep the applications' pools below max_connections.`,
  );
}

function serverVersion(row: DoctorRow): Check {
  if (row.version_num < MIN_VERSION_NUM)
    return fail(
      'server.version',
      `PostgreSQL ${row.version} is too old for the health snapshot (it needs pg_stat_activity.backend_type, PostgreSQL 10)`,
      'Upgrade to a supported PostgreSQL (16 or later keeps a reserved slot for the monitor).',
    );
  if (row.version_num < WAITSTART_VERSION_NUM)
    return warn(
      'server.version',
      `PostgreSQL ${row.version}: supported, but the server does not date lock waits (14 and later do), so pgwarden times a lock chain from the probes that see it`,
      'Upgrade to PostgreSQL 16 or later.',
    );
  return ok('server.version', `PostgreSQL ${row.version}`);
}

/** A boolean setting's fix: ALTER SYSTEM on a server of one's own, the parameter group on RDS. */
function settingFix(row: DoctorRow, name: string): string {
  return row.on_rds
    ? `Set ${name} to 1 in the DB parameter group (dynamic: no reboot).`
    : `ALTER SYSTEM SET ${name} = on; SELECT pg_catalog.pg_reload_conf();`;
}

function isOff(value: string | null): boolean {
  return value === null || value === '' || value === 'off' || value === 'false' || value === '0';
}

function trackActivities(row: DoctorRow): Check {
  if (row.track_activities === 'on')
    return ok('server.track_activities', 'on: pg_stat_activity shows what each session is doing');
  return fail(
    'server.track_activities',
    `track_activities is ${row.track_activities ?? 'not readable by this role'}: pg_stat_activity shows no state, so pgwarden sees neither idle nor blocked sessions`,
    settingFix(row, 'track_activities'),
  );
}

function logSetting(row: DoctorRow, name: string, value: string | null, why: string): Check {
  const id = `server.${name}`;
  if (value === null)
    return warn(
      id,
      `${name} is not readable by ${row.role}`,
      `GRANT pg_monitor TO ${sqlRole(row.role)}; (it includes pg_read_all_settings)`,
    );
  if (isOff(value))
    return warn(
      id,
      `${name} is off: the database log, which the runbook quotes as evidence, will not say ${why}`,
      settingFix(row, name),
    );
  return ok(id, `${name} is ${value === 'on' ? 'on' : `"${value}"`}: the log says ${why}`);
}

function marginSlots(result: ProbeResult & { ok: true }, row: DoctorRow): Check {
  const c = result.connections;
  // The snapshot leaves out the probe's own session, which held a slot too.
  const free = Math.max(0, c.usable - c.total - 1);
  const reserved = row.reserved_connections ?? 0;
  const kept = row.superuser
    ? (row.superuser_reserved ?? 0) + reserved
    : row.use_reserved || row.rds_reserved
      ? reserved
      : 0;
  const available = free + kept;
  const summary = `${free} of ${c.usable} usable slot(s) free (${c.total} client session(s) besides the probe), ${kept} reserved slot(s) ${row.role} may use: ${available} for the monitor and remediation right now`;
  const fix = `Give the role a reserved slot (see role.reserved_slot), or lower the applications' pool sizes, or raise max_connections (now ${c.max}).`;
  if (available === 0) return fail('margin.slots', summary, fix);
  if (available < SLOTS_WANTED)
    return warn(
      'margin.slots',
      `${summary}; the monitor, remediation and the runbook can need ${SLOTS_WANTED} at once`,
      fix,
    );
  return ok('margin.slots', summary);
}

function probeTime(result: ProbeResult, statementTimeoutMs: number): Check {
  const limit = formatDuration(statementTimeoutMs);
  if (!result.ok) {
    const f = result.failure;
    return fail(
      'margin.probe_time',
      `the probe's statement failed: ${f.category}${f.sqlstate ? ` (SQLSTATE ${f.sqlstate})` : ''}: ${f.message}`,
      f.category === 'query_canceled'
        ? `It ran past its ${limit} statement timeout: look for what slows pg_stat_activity and pg_locks on this server (thousands of sessions, an overloaded server).`
        : f.category === 'permission_denied'
          ? 'GRANT pg_monitor TO the role pgwarden uses.'
          : `Run pgwarden probe --url ... for the full failure.`,
    );
  }
  const ms = result.latencyMs.query;
  const summary = `the probe's statement took ${Math.round(ms)} ms of its ${limit} timeout (connect ${Math.round(result.latencyMs.connect)} ms of ${formatDuration(PROBE_CONNECT_TIMEOUT_MS)})`;
  if (ms > statementTimeoutMs / 2)
    return warn(
      'margin.probe_time',
      `${summary}: more than half, so a busier moment would cancel it and count as a failed probe`,
      'Find what slows the snapshot: thousands of idle sessions (put a connection pooler in front), or an overloaded server.',
    );
  return ok('margin.probe_time', summary);
}
