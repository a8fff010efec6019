/**
 * check_postgres, the Nagios plugin most teams run today, asked for the information one pgwarden probe
 * returns: one action per question, each its own psql process and connection.
 */
import { run } from './support.ts';

/** The actions that together cover the snapshot's connection, session, lock and wraparound fields. */
export const CHECK_POSTGRES_ACTIONS: ReadonlyArray<{ action: string; args: string[]; covers: string }> = [
  { action: 'connection', args: [], covers: 'ok (can connect)' },
  { action: 'backends', args: ['--warning=80%', '--critical=95%'], covers: 'connections.total / max' },
  {
    action: 'txn_idle',
    args: ['--warning=300', '--critical=600'],
    covers: 'idleInTransaction, longestIdleInTransactionSeconds',
  },
  { action: 'txn_time', args: ['--warning=300', '--critical=600'], covers: 'oldestTransactionAgeSeconds' },
  {
    action: 'query_time',
    args: ['--warning=300', '--critical=600'],
    covers: 'longRunningQueries, longestQuerySeconds',
  },
  { action: 'locks', args: ['--warning=100', '--critical=200'], covers: 'locks held and waiting' },
  {
    action: 'txn_wraparound',
    args: ['--warning=1000000000', '--critical=1400000000'],
    covers: 'wraparoundAge',
  },
];

export interface CheckPostgresRun {
  action: string;
  wallMs: number;
  /** Nagios status word from the first line (OK, WARNING, CRITICAL, UNKNOWN). */
  status: string;
  exitCode: number | null;
}

/** The command line and environment of one check_postgres action, as Nagios would run it. */
export function checkPostgresInvocation(
  connection: { host: string; port: number; user: string; password: string; database: string },
  action: (typeof CHECK_POSTGRES_ACTIONS)[number],
): { args: string[]; env: Record<string, string> } {
  return {
    args: [
      `--action=${action.action}`,
      ...action.args,
      `--host=${connection.host}`,
      `--port=${connection.port}`,
      `--dbuser=${connection.user}`,
      `--dbname=${connection.database}`,
      '--showtime=0',
    ],
    env: { PGPASSWORD: connection.password, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '5' },
  };
}

/** The Nagios status word on the first line of check_postgres's output (ERROR when there is none). */
export function nagiosStatus(output: string): string {
  const firstLine = output.split('\n')[0] ?? '';
  return /\b(OK|WARNING|CRITICAL|UNKNOWN)\b/.exec(firstLine)?.[1] ?? 'ERROR';
}

export async function runCheckPostgres(
  command: string,
  connection: { host: string; port: number; user: string; password: string; database: string },
  action: (typeof CHECK_POSTGRES_ACTIONS)[number],
): Promise<CheckPostgresRun> {
  const invocation = checkPostgresInvocation(connection, action);
  const result = await run(command, invocation.args, {
    env: { ...process.env, ...invocation.env },
    timeoutMs: 60_000,
  });
  const status = nagiosStatus(result.stdout || result.stderr);
  return { action: action.action, wallMs: result.wallMs, status, exitCode: result.code };
}
