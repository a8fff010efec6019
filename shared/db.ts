/**
 * The one door to PostgreSQL: the only module that imports `pg`. Every session has connect, statement
 * and query timeouts, TCP keepalive, and an `error` listener (a backend terminated under us must never
 * crash the process), and is always closed in `finally`. Queries are logged by name, duration and row
 * count, never by parameters.
 *
 * The server is not trusted either: a session reads at most `ReadLimits` from it (time is bounded by
 * the timeouts, memory by these), and a password is never sent in cleartext except an RDS IAM token
 * over TLS.
 */
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type pg from 'pg';
import Client from 'pg/lib/client.js';
import TypeOverrides from 'pg/lib/type-overrides.js';
import type { ConnectionSpec } from './connection.ts';
import type { ResolvedCredentials } from './credentials.ts';
import { AuthenticationRefusedError, ReadLimitError } from './errors.ts';
import type { Logger } from './logger.ts';

// Return timestamps as Date and 64-bit integers as numbers (counts, ages, sizes never approach 2^53).
const TYPES = new TypeOverrides();
const INT8 = 20;
const NUMERIC = 1700;
TYPES.setTypeParser(INT8, 'text', (value: string) => Number(value));
TYPES.setTypeParser(NUMERIC, 'text', (value: string) => Number(value));

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
  /** What the session may read from the server. @default DEFAULT_READ_LIMITS */
  readLimits?: Partial<ReadLimits>;
  logger: Logger;
}

/**
 * How much one session reads from the server before it hangs up: a hostile or broken server can
 * declare a 2 GB message or stream rows and notices until the timeout; this keeps memory bounded too.
 */
export interface ReadLimits {
  /** The largest single protocol message (a row, an error, a notice), as its header declares it. */
  maxMessageBytes: number;
  /** Everything the session reads, over its whole life. */
  maxTotalBytes: number;
  /** Data rows over the session's life. */
  maxRows: number;
  /** Notices over the session's life (the first NOTICES_KEPT are kept). */
  maxNotices: number;
}

const MiB = 1024 * 1024;

/** Generous enough for the remediator's listing of tens of thousands of sessions. */
export const DEFAULT_READ_LIMITS: ReadLimits = {
  maxMessageBytes: 16 * MiB,
  maxTotalBytes: 64 * MiB,
  maxRows: 100_000,
  maxNotices: 1_000,
};

/** Notices kept on a session for callers to read; later ones are counted against the limit only. */
export const NOTICES_KEPT = 20;

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
  // node-postgres asks this function for the password whatever the method (cleartext, MD5, SCRAM), and
  // never reads a pgpass file once it is set. The connection tells us first which method it is.
  let cleartextRequested = false;
  const cleartextAllowed = credentials.iamToken === true && ssl !== undefined;
  const password = () => {
    if (cleartextRequested && !cleartextAllowed)
      throw new AuthenticationRefusedError(
        `the server at ${spec.host}:${spec.port} asked for the password in cleartext; pgwarden sends a password only through SCRAM or MD5 (an RDS IAM token only over TLS). Use scram-sha-256 in pg_hba.conf`,
      );
    if (credentials.password === undefined)
      throw new AuthenticationRefusedError(
        `the server at ${spec.host}:${spec.port} asked for a password and none is configured for ${credentials.user}`,
      );
    return credentials.password;
  };
  const client = new Client({
    types: TYPES,
    host: spec.host,
    port: spec.port,
    database: spec.database,
    user: credentials.user,
    password,
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
    if (notices.length < NOTICES_KEPT)
      notices.push({ ...(notice.code ? { code: notice.code } : {}), message: notice.message ?? '' });
  });
  client.connection.on('authenticationCleartextPassword', () => {
    cleartextRequested = true;
  });
  meterReads(client.connection, ssl !== undefined, { ...DEFAULT_READ_LIMITS, ...options.readLimits });

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
        // A session cut off for reading too much fails every later query with node-postgres's generic
        // "not queryable"; the cut-off is what happened.
        throw lostWith instanceof ReadLimitError ? lostWith : error;
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

/**
 * Counts what the server sends, message by message, and closes the connection with a ReadLimitError
 * the moment a header declares a message over the limit or a total runs over. It reads the plaintext
 * protocol: the socket itself without TLS, the TLS socket once node-postgres has upgraded to it.
 */
function meterReads(connection: pg.Connection, tls: boolean, limits: ReadLimits): void {
  const meter = new ReadMeter(limits);
  const watch = (stream: Duplex) =>
    stream.on('data', (chunk: Buffer) => {
      const problem = meter.take(chunk);
      if (problem) stream.destroy(new ReadLimitError(`${problem}; pgwarden closed the connection`));
    });
  if (tls) connection.once('sslconnect', () => watch(connection.stream));
  else watch(connection.stream);
}

const size = (bytes: number) =>
  bytes >= MiB ? `${Math.round((bytes / MiB) * 10) / 10} MiB` : `${bytes.toLocaleString('en-US')} bytes`;

/** Follows the message framing (a type byte, a 4-byte length) of the bytes a server sends. */
class ReadMeter {
  private readonly limits: ReadLimits;
  private total = 0;
  private rows = 0;
  private notices = 0;
  /** Bytes of the current message's body still to come. */
  private remaining = 0;
  private readonly header = Buffer.alloc(5);
  private headerBytes = 0;

  constructor(limits: ReadLimits) {
    this.limits = limits;
  }

  /** Accounts for one chunk; returns what was exceeded, if anything. */
  take(chunk: Buffer): string | undefined {
    this.total += chunk.length;
    if (this.total > this.limits.maxTotalBytes)
      return `the server sent more than the ${size(this.limits.maxTotalBytes)} one session may read`;
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, chunk.length - at);
        this.remaining -= skip;
        at += skip;
        continue;
      }
      this.header[this.headerBytes++] = chunk[at++] as number;
      if (this.headerBytes < 5) continue;
      this.headerBytes = 0;
      const type = String.fromCharCode(this.header[0] as number);
      const length = this.header.readUInt32BE(1);
      if (length < 4) return `the server sent a malformed message (length ${length})`;
      if (length + 1 > this.limits.maxMessageBytes)
        return `the server announced a ${size(length + 1)} message, more than the ${size(this.limits.maxMessageBytes)} pgwarden reads in one message`;
      if (type === 'D' && ++this.rows > this.limits.maxRows)
        return `the server sent more than ${this.limits.maxRows.toLocaleString('en-US')} rows`;
      if (type === 'N' && ++this.notices > this.limits.maxNotices)
        return `the server sent more than ${this.limits.maxNotices.toLocaleString('en-US')} notices`;
      this.remaining = length - 4;
    }
    return undefined;
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
