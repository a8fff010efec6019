import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../cli/local/embedded.ts';
import { exhaustSlots } from '../../cli/local/faults.ts';
import { runSweep } from '../../functions/sweep/sweep.ts';
import { FAILURE_CATEGORIES } from '../../shared/classify.ts';
import { type DbSession, openSession } from '../../shared/db.ts';
import { type Logger, silentLogger } from '../../shared/logger.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import { type RemediationResult, remediate } from '../../shared/remediation/remediator.ts';
import { DEFAULT_REMEDIATION, type Target } from '../../shared/target.ts';
import { openIdleSessions, silentListener } from '../helpers/faults.ts';
import { captureOutput, coldStart, lambdaContext } from '../helpers/lambda.ts';
import {
  createMonitorRole,
  startTestServer,
  superuser,
  type TestServer,
  waitFor,
} from '../helpers/postgres.ts';
import { type PgProxy, startPgProxy } from '../helpers/proxy.ts';
import { fleetEnvironmentFor } from '../helpers/targets.ts';
import { recordUnhandled } from '../helpers/unhandled.ts';

/** The probe and remediate functions' configured timeouts in this file. */
const CONNECT_TIMEOUT_MS = 1_000;
const STATEMENT_TIMEOUT_MS = 500;
/** Scheduling slack on a busy two-core machine. */
const MARGIN_MS = 2_000;
/** Connect-phase faults: the connect timeout bounds them. */
const CONNECT_BOUND_MS = CONNECT_TIMEOUT_MS + MARGIN_MS;
/**
 * Query-phase faults: connect, the statement timeout plus the client's 500 ms over it, and the 1 s
 * grace for closing a session whose peer went silent.
 */
const QUERY_BOUND_MS = CONNECT_TIMEOUT_MS + STATEMENT_TIMEOUT_MS + 500 + 1_000 + MARGIN_MS;

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

const secretsMock = mockClient(SecretsManagerClient);
const secrets = new Map<string, string>();
let secretCount = 0;

/** A fresh secret id per call: resolved credentials are cached per secret for five minutes. */
function secretFor(username: string, password: string): string {
  secretCount += 1;
  const id = `arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/fault-${secretCount}`;
  secrets.set(id, JSON.stringify({ username, password }));
  return id;
}

const unhandled = recordUnhandled();

let server: TestServer;
let monitor: { user: string; password: string };
beforeAll(async () => {
  vi.stubEnv('PGWARDEN_CONNECT_TIMEOUT', `${CONNECT_TIMEOUT_MS}ms`);
  vi.stubEnv('PGWARDEN_STATEMENT_TIMEOUT', `${STATEMENT_TIMEOUT_MS}ms`);
  secretsMock.on(GetSecretValueCommand).callsFake(async (input: { SecretId?: string }) => {
    const value = secrets.get(input.SecretId ?? '');
    if (value === undefined)
      throw Object.assign(new Error(`no secret ${input.SecretId}`), { name: 'ResourceNotFoundException' });
    return { SecretString: value };
  });
  // PostgreSQL 17: reserved_connections lets the monitor in when applications hold every other slot.
  server = await startTestServer({ major: 17, maxConnections: 20, settings: { reserved_connections: 3 } });
  monitor = await createMonitorRole(server);
  await server.admin(`CREATE ROLE app LOGIN PASSWORD 'app-pw-123'`);
  // A role like the monitor but without a reserved slot.
  await server.admin(`CREATE ROLE watcher LOGIN PASSWORD 'watcher-pw-1'`);
  await server.admin('GRANT pg_monitor TO watcher');
  await server.admin('CREATE DATABASE closed_db');
  await server.admin('REVOKE CONNECT ON DATABASE closed_db FROM PUBLIC');
});

afterEach(() => {
  expect(unhandled.errors).toEqual([]);
});

afterAll(async () => {
  unhandled.stop();
  secretsMock.restore();
  vi.unstubAllEnvs();
  await server?.destroy();
});

interface Timed<T> {
  result: T;
  ms: number;
}

async function timed<T>(work: () => Promise<T>): Promise<Timed<T>> {
  const started = performance.now();
  const result = await work();
  return { result, ms: performance.now() - started };
}

function probeEvent(
  overrides: { host?: string; port?: number; database?: string; tls?: string } = {},
  credentials: { user: string; password: string } = monitor,
) {
  return {
    targetId: 'fault-db',
    connection: {
      host: overrides.host ?? '127.0.0.1',
      port: overrides.port ?? server.port,
      database: overrides.database ?? 'postgres',
      auth: { kind: 'secret', secretId: secretFor(credentials.user, credentials.password) },
      tls: { mode: overrides.tls ?? 'disable' },
    },
  };
}

/**
 * A handler deployed for this one target: handlers read the fleet from their environment once, at
 * cold start, and a payload only names the target.
 */
function deployedFor(name: 'probe' | 'remediate', event: ReturnType<typeof probeEvent>): Promise<Handler> {
  return coldStart(name, fleetEnvironmentFor([{ id: event.targetId, connection: event.connection }]));
}

async function invokeProbe(
  overrides: Parameters<typeof probeEvent>[0] = {},
  credentials?: { user: string; password: string },
): Promise<Timed<ProbeResult>> {
  const event = probeEvent(overrides, credentials);
  const handler = await deployedFor('probe', event);
  return timed(async () => (await handler(event, lambdaContext('pgwarden-probe', 15_000))) as ProbeResult);
}

function expectFailure(result: ProbeResult, category: string, phase?: 'connect' | 'query') {
  expect(result.ok, JSON.stringify(result)).toBe(false);
  if (result.ok) return;
  expect(result.failure.category, JSON.stringify(result.failure)).toBe(category);
  if (phase) expect(result.failure.phase).toBe(phase);
  expect(result.target).toBe('fault-db');
}

function expectClassified(result: ProbeResult) {
  if (result.ok) return;
  expect(FAILURE_CATEGORIES, JSON.stringify(result.failure)).toContain(result.failure.category);
  expect(result.failure.category, JSON.stringify(result.failure)).not.toBe('unknown');
}

function postmasterPid(): number {
  return Number(readFileSync(join(server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** Runs one SQL statement as the superuser through the real door, for the proxy hooks. */
async function adminSession(): Promise<DbSession> {
  const { spec, credentials } = superuser(server);
  return openSession(spec, credentials, {
    connectTimeoutMs: 5_000,
    statementTimeoutMs: 0,
    applicationName: 'test:admin',
    logger: silentLogger,
  });
}

describe('probe function: every failure category from its real cause, within the deadline', () => {
  it('returns unreachable within the connect deadline when nothing listens on the port', async () => {
    const { result, ms } = await invokeProbe({ port: await freePort() });
    expectFailure(result, 'unreachable', 'connect');
    expect(ms).toBeLessThan(CONNECT_BOUND_MS);
  });

  it('returns timeout in under connect timeout + 2 s when the host accepts TCP and never answers', async () => {
    const listener = await silentListener();
    try {
      const { result, ms } = await invokeProbe({ port: listener.port });
      expectFailure(result, 'timeout', 'connect');
      expect(ms).toBeLessThan(CONNECT_BOUND_MS);
    } finally {
      await listener.close();
    }
  });

  it('returns timeout within the connect deadline when the server process is frozen', async () => {
    const pid = postmasterPid();
    process.kill(pid, 'SIGSTOP');
    try {
      const { result, ms } = await invokeProbe();
      expectFailure(result, 'timeout', 'connect');
      expect(ms).toBeLessThan(CONNECT_BOUND_MS);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect((await invokeProbe()).result.ok).toBe(true);
  });

  it('returns dns when the host name does not resolve', async () => {
    const { result, ms } = await invokeProbe({ host: 'db.pgwarden-does-not-exist.invalid' });
    expectFailure(result, 'dns', 'connect');
    expect(ms).toBeLessThan(CONNECT_BOUND_MS);
  });

  it.each(['verify-full', 'require'])(
    'returns tls when sslmode=%s meets a server without TLS',
    async (tls) => {
      const { result, ms } = await invokeProbe({ tls });
      expectFailure(result, 'tls', 'connect');
      expect(ms).toBeLessThan(CONNECT_BOUND_MS);
    },
  );

  it('returns auth_failed (28P01) when the secret holds a wrong password', async () => {
    const { result, ms } = await invokeProbe({}, { user: monitor.user, password: 'not-the-password' });
    expectFailure(result, 'auth_failed', 'connect');
    if (!result.ok) expect(result.failure.sqlstate).toBe('28P01');
    expect(ms).toBeLessThan(CONNECT_BOUND_MS);
  });

  it('returns database_missing (3D000) for a database that does not exist', async () => {
    const { result } = await invokeProbe({ database: 'no_such_db' });
    expectFailure(result, 'database_missing', 'connect');
    if (!result.ok) expect(result.failure.sqlstate).toBe('3D000');
  });

  it('returns permission_denied (42501) when the role may not connect to the database', async () => {
    const { result } = await invokeProbe({ database: 'closed_db' });
    expectFailure(result, 'permission_denied', 'connect');
    if (!result.ok) expect(result.failure.sqlstate).toBe('42501');
  });

  it('returns starting_up while the server recovers from a crash, and a snapshot once it is back', async () => {
    // Recovery takes tens of milliseconds; probes in a tight loop may straddle it, so crash again
    // until one lands inside.
    const seen: ProbeResult[] = [];
    for (let crash = 0; crash < 5; crash++) {
      await server.crashBackend();
      const probes: ProbeResult[] = [];
      while (!probes.some((r) => r.ok) || probes.every((r) => r.ok)) {
        const { result, ms } = await invokeProbe();
        expect(ms).toBeLessThan(CONNECT_BOUND_MS);
        probes.push(result);
        if (probes.length > 500) break;
      }
      seen.push(...probes);
      if (seen.some((r) => !r.ok && r.failure.category === 'starting_up')) break;
    }
    for (const result of seen) expectClassified(result);
    const starting = seen.find((r) => !r.ok && r.failure.category === 'starting_up');
    expect(starting, JSON.stringify(seen.filter((r) => !r.ok))).toBeDefined();
    if (starting && !starting.ok)
      expect(starting.failure).toMatchObject({ sqlstate: '57P03', retryable: true });
    expect(seen[seen.length - 1]?.ok).toBe(true);
  });
});

describe('probe function: faults between connecting and the answer', () => {
  let proxy: PgProxy;
  beforeAll(async () => {
    proxy = await startPgProxy(server.port);
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('returns shutting_down (57P01) when the backend is terminated before it answers', async () => {
    proxy.onQuery = async () => {
      const admin = await adminSession();
      try {
        await admin.query(
          'terminate-probe',
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgwarden-probe'`,
        );
      } finally {
        await admin.close();
      }
      return 'forward';
    };
    const { result, ms } = await invokeProbe({ port: proxy.port });
    expectFailure(result, 'shutting_down', 'query');
    if (!result.ok) expect(result.failure.sqlstate).toBe('57P01');
    expect(ms).toBeLessThan(QUERY_BOUND_MS);
  });

  it('returns connection_lost when the network resets the connection mid-conversation', async () => {
    proxy.onQuery = async () => 'reset';
    const { result, ms } = await invokeProbe({ port: proxy.port });
    expectFailure(result, 'connection_lost', 'query');
    expect(ms).toBeLessThan(QUERY_BOUND_MS);
  });

  it('returns query_canceled (57014) when the health statement outlives the statement timeout', async () => {
    // Behind an exclusive lock on a catalog the snapshot reads, the statement waits until the server
    // cancels it (the 500 ms statement timeout comes before the 1 s lock timeout).
    const locker = await adminSession();
    proxy.onQuery = async () => {
      await locker.query('begin', 'BEGIN');
      await locker.query('lock', 'LOCK TABLE pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE');
      return 'forward';
    };
    try {
      const { result, ms } = await invokeProbe({ port: proxy.port });
      expectFailure(result, 'query_canceled', 'query');
      if (!result.ok) expect(result.failure.sqlstate).toBe('57014');
      expect(ms).toBeLessThan(QUERY_BOUND_MS);
    } finally {
      await locker.query('rollback', 'ROLLBACK');
      await locker.close();
    }
  });

  it('returns timeout within the query deadline when the network goes silent after connecting', async () => {
    proxy.onQuery = async () => 'hold';
    const { result, ms } = await invokeProbe({ port: proxy.port });
    expectFailure(result, 'timeout', 'query');
    expect(ms).toBeLessThan(QUERY_BOUND_MS);
  });
});

describe('probe function when every slot is taken (53300)', () => {
  it('gets in through a reserved slot with the documented role, and reports too_many_connections without one', async () => {
    const app = {
      spec: server.spec({ user: 'app', password: 'app-pw-123' }),
      credentials: { user: 'app', password: 'app-pw-123' },
    };
    const flood = await exhaustSlots(app);
    try {
      expect(flood.refusedWith).toBe('53300');
      const reserved = await invokeProbe();
      expect(reserved.result.ok, JSON.stringify(reserved.result)).toBe(true);
      if (reserved.result.ok) expect(reserved.result.connections.utilizationPct).toBeGreaterThanOrEqual(100);

      const { result, ms } = await invokeProbe({}, { user: 'watcher', password: 'watcher-pw-1' });
      expectFailure(result, 'too_many_connections', 'connect');
      if (!result.ok) {
        expect(result.failure.sqlstate).toBe('53300');
        expect(result.failure.retryable).toBe(true);
      }
      expect(ms).toBeLessThan(CONNECT_BOUND_MS);
    } finally {
      await flood.release();
    }
  });
});

describe('faults in the middle of work', () => {
  it('returns only snapshots or classified failures from probe loops running through a backend crash', async () => {
    const results: ProbeResult[] = [];
    let crashed = false;
    const loop = async () => {
      const until = Date.now() + 60_000;
      while (Date.now() < until) {
        const { result, ms } = await invokeProbe();
        expect(ms).toBeLessThan(QUERY_BOUND_MS);
        results.push(result);
        // Once the crash was seen and the server answers again, this loop is done.
        if (crashed && result.ok && results.some((r) => !r.ok)) return;
      }
    };
    const loops = [loop(), loop(), loop()];
    await new Promise((resolve) => setTimeout(resolve, 100));
    await server.crashBackend();
    crashed = true;
    await Promise.all(loops);
    expect(results.some((r) => !r.ok)).toBe(true);
    for (const result of results) expectClassified(result);
  });

  it('stops within its bound when asked to right after a crash, and starts again', async () => {
    await server.crashBackend();
    await waitFor(async () => {
      const { result } = await invokeProbe();
      return !result.ok;
    });
    const { ms } = await timed(() => server.stop());
    // A fast shutdown lost during crash recovery turns into an immediate one after 5 s.
    expect(ms).toBeLessThan(5_000 + MARGIN_MS + 1_000);
    expect(server.running).toBe(false);
    await server.start();
    await waitFor(async () => (await invokeProbe()).result.ok, 15_000);
  });

  it('returns a classified ok:false, with the audit so far, when the server stops during a remediation', async () => {
    const app = {
      spec: server.spec({ user: 'app', password: 'app-pw-123' }),
      credentials: { user: 'app', password: 'app-pw-123' },
    };
    const idle = await openIdleSessions(app, 3, 'fault:idle');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    let stopping: Promise<void> | undefined;
    // Stops the server after the first session was terminated, before the next signal is sent.
    const logger: Logger = {
      ...silentLogger,
      info(message) {
        if (message === 'remediation action' && !stopping) stopping = stopBlocking(server);
      },
    };
    let result: RemediationResult;
    try {
      result = await remediate(
        server.spec({ user: monitor.user, password: monitor.password }),
        {
          targetId: 'fault-db',
          policy: { ...DEFAULT_REMEDIATION, idleAfterSeconds: 1 },
          actions: ['idle'],
          connectTimeoutMs: CONNECT_TIMEOUT_MS,
          statementTimeoutMs: STATEMENT_TIMEOUT_MS,
        },
        { logger },
      );
    } finally {
      await stopping;
      await idle.release();
      await server.start();
    }
    expect(stopping).toBeDefined();
    expect(result.ok, JSON.stringify(result)).toBe(false);
    if (result.ok) return;
    expect(['connection_lost', 'shutting_down']).toContain(result.failure.category);
    expect(result.failure.retryable).toBe(true);
    expect(result.terminated).toHaveLength(1);
    expect(idle.pids).toContain(result.terminated[0]?.pid);
  });

  it('returns ok:false from the remediate function and a failed sweep summary, never a throw, when the server is down', async () => {
    await server.stop();
    try {
      const event = {
        ...probeEvent(),
        policy: DEFAULT_REMEDIATION,
        actions: ['idle', 'idle_in_transaction'],
      };
      const remediateHandler = await deployedFor('remediate', event);
      const output = captureOutput();
      let timing: Timed<RemediationResult>;
      let summaries: Awaited<ReturnType<typeof runSweep>>;
      const target = {
        id: 'fault-db',
        connection: probeEvent().connection,
        remediation: DEFAULT_REMEDIATION,
      } as unknown as Target;
      try {
        timing = await timed(
          async () =>
            (await remediateHandler(event, lambdaContext('pgwarden-remediate'))) as RemediationResult,
        );
        summaries = await runSweep([target], {
          remediate: (request) => remediateHandler(request, lambdaContext('pgwarden-remediate')),
          logger: silentLogger,
        });
      } finally {
        output.restore();
      }
      const { result, ms } = timing;
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.failure).toMatchObject({ category: 'unreachable', phase: 'connect' });
      expect(ms).toBeLessThan(CONNECT_BOUND_MS);

      expect(summaries).toEqual([
        { targetId: 'fault-db', ok: false, error: expect.stringMatching(/^unreachable: /) },
      ]);
    } finally {
      await server.start();
    }
  });
});

/**
 * Asks the server to stop and blocks the event loop until it is down, so the caller's very next
 * statement meets a stopped server. Returns the pending stop to await later.
 */
function stopBlocking(target: TestServer): Promise<void> {
  const stopping = target.stop();
  const pidFile = join(target.dataDir, 'postmaster.pid');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 10_000;
  while (existsSync(pidFile) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 10);
  return stopping;
}
