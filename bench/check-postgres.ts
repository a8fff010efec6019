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

export async function runCheckPostgres(
  command: string,
  connection: { host: string; port: number; user: string; password: string; database: string },
  action: (typeof CHECK_POSTGRES_ACTIONS)[number],
): Promise<CheckPostgresRun> {
  const result = await run(
    command,
    [
      `--action=${action.action}`,
      ...action.args,
      `--host=${connection.host}`,
      `--port=${connection.port}`,
      `--dbuser=${connection.user}`,
      `--dbname=${connection.database}`,
      '--showtime=0',
    ],
    {
      env: {
        ...process.env,
        PGPASSWORD: connection.password,
        PGSSLMODE: 'disable',
        PGCONNECT_TIMEOUT: '5',
      },
      timeoutMs: 60_000,
    },
  );
  const firstLine = (result.stdout || result.stderr).split('\n')[0] ?? '';
  const status = /\b(OK|WARNING|CRITICAL|UNKNOWN)\b/.exec(firstLine)?.[1] ?? 'ERROR';
  return { action: action.action, wallMs: result.wallMs, status, exitCode: result.code };
}
