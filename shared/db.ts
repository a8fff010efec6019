/**
 * The one door to PostgreSQL: the only module that imports `pg`. Every session has connect, statement
 * and query timeouts, TCP keepalive, and an `error` listener (a backend terminated under us must never
 * crash the process), and is always closed in `finally`. Queries are logged by name, duration and row
 * count, never by parameters.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import pg from 'pg';
import type { ConnectionSpec } from './connection.ts';
import type { ResolvedCredentials } from './credentials.ts';
import type { Logger } from './logger.ts';

// Return timestamps as Date and 64-bit integers as numbers (counts, ages, sizes never approach 2^53).
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value: string) => Number(value));

export interface SessionOptions {
  /** Abort the TCP/TLS/startup handshake after this long. */
  connectTimeoutMs: number;
  /** Server-side `statement_timeout`; 0 disables it (fault drills only). */
  statementTimeoutMs: number;
  /** Client-side bound on waiting for a result; defaults to the statement timeout plus a margin. */
  queryTimeoutMs?: number;
  /** Server-side `lock_timeout`, so a health check never queues behind a lock. @default 1000 */
  lockTimeoutMs?: number;
  /** Shows in pg_stat_activity; the remediator recognises its own sessions by it. */
  applicationName: string;
  /**
   * Pins `search_path` for the session, over any database or role default. pgwarden's own statements
   * run with SYSTEM_SEARCH_PATH, so no function or operator a database user creates can stand in for a
   * built-in and run with the monitor's privileges (the CVE-2018-1058 pattern). Unset, the server's
   * defaults apply (fault drills run application SQL).
   */
  searchPath?: string;
  logger: Logger;
}

/** Built-ins only: what the probe, the integrity summary and the remediator run with. */
export const SYSTEM_SEARCH_PATH = 'pg_catalog,pg_temp';

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
  durationMs: number;
}

export interface DbSession {
  /** The backend's process id (pg_backend_pid()). */
  readonly pid: number;
  /** Set when the server or network dropped the session; further queries fail. */
  readonly lostWith: Error | undefined;
  /** Server notices received (e.g. 57P02 before a crash-restart). */
  readonly notices: ReadonlyArray<{ code?: string; message: string }>;
  query<R = Record<string, unknown>>(
    name: string,
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<R>>;
  close(): Promise<void>;
}

/** Builds node-postgres TLS options from the spec; `undefined` means plaintext. */
export function tlsOptions(spec: ConnectionSpec): TlsOptions | undefined {
  const { mode, caFile } = spec.tls;
  if (mode === 'disable') return undefined;
  if (mode === 'require') return { rejectUnauthorized: false };
  const options: TlsOptions = { rejectUnauthorized: true, servername: spec.host };
  if (caFile) options.ca = readFileSync(caFile, 'utf8');
  if (mode === 'verify-ca') options.checkServerIdentity = () => undefined;
  return options;
}

const CLOSE_GRACE_MS = 1_000;

/**
 * Opens a fresh session. Rejects with node-postgres's error (classify it with `classifyError`); the
 * half-open client is always torn down.
 */
export async function openSession(
  spec: ConnectionSpec,
  credentials: ResolvedCredentials,
  options: SessionOptions,
): Promise<DbSession> {
  const { logger } = options;
  const statementTimeout = options.statementTimeoutMs;
  const queryTimeout = options.queryTimeoutMs ?? (statementTimeout > 0 ? statementTimeout + 500 : undefined);
  const ssl = tlsOptions(spec);
  const client = new pg.Client({
    host: spec.host,
    port: spec.port,
    database: spec.database,
    user: credentials.user,
    ...(credentials.password !== undefined ? { password: credentials.password } : {}),
    ssl: ssl ?? false,
    connectionTimeoutMillis: options.connectTimeoutMs,
    ...(statementTimeout > 0 ? { statement_timeout: statementTimeout } : {}),
    ...(queryTimeout ? { query_timeout: queryTimeout } : {}),
    lock_timeout: options.lockTimeoutMs ?? 1_000,
    idle_in_transaction_session_timeout: statementTimeout > 0 ? Math.max(statementTimeout * 2, 5_000) : 0,
    application_name: options.applicationName,
    ...(options.searchPath ? { options: `-c search_path=${options.searchPath}` } : {}),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });

  let lostWith: Error | undefined;
  const notices: Array<{ code?: string; message: string }> = [];
  client.on('error', (error: Error) => {
    lostWith = error;
    logger.debug('database session lost', { error: error.message, code: (error as { code?: string }).code });
  });
  client.on('notice', (notice) => {
    notices.push({ ...(notice.code ? { code: notice.code } : {}), message: notice.message ?? '' });
  });

  try {
    await client.connect();
  } catch (error) {
    destroy(client);
    throw error;
  }
  const pid = (client as unknown as { processID: number }).processID;

  let closed = false;
  return {
    pid,
    get lostWith() {
      return lostWith;
    },
    notices,
    async query<R>(name: string, sql: string, params?: readonly unknown[]) {
      const started = performance.now();
      try {
        const result = await client.query({ text: sql, values: params ? [...params] : [] });
        const durationMs = performance.now() - started;
        logger.debug('query', {
          query: name,
          durationMs: Math.round(durationMs * 10) / 10,
          rows: result.rowCount ?? 0,
        });
        return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length, durationMs };
      } catch (error) {
        logger.debug('query failed', {
          query: name,
          durationMs: Math.round(performance.now() - started),
          code: (error as { code?: string }).code,
        });
        throw error;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await endWithin(client, CLOSE_GRACE_MS);
    },
  };
}

/** Runs `work` in a fresh session that is closed however `work` ends. */
export async function withSession<T>(
  spec: ConnectionSpec,
  credentials: ResolvedCredentials,
  options: SessionOptions,
  work: (session: DbSession) => Promise<T>,
): Promise<T> {
  const session = await openSession(spec, credentials, options);
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}

async function endWithin(client: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().catch(() => undefined);
  const expired = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => resolve('expired'), ms);
    timer.unref();
  });
  const outcome = await Promise.race([ended, expired]);
  clearTimeout(timer);
  if (outcome === 'expired') destroy(client);
}

/** Drops the socket without the goodbye handshake (the peer may be gone or silent). */
function destroy(client: pg.Client): void {
  const connection = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection;
  connection?.stream?.destroy();
}
