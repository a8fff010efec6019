import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../cli/local/embedded.ts';
import { buildLockChain, exhaustSlots, holdIdleInTransaction, runLongQuery } from '../../cli/local/faults.ts';
import { classifyError } from '../../shared/classify.ts';
import type { ConnectionSpec } from '../../shared/connection.ts';
import { openSession } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';
import { type ProbeResult, probe } from '../../shared/probe/snapshot.ts';
import { openIdleSessions, silentListener } from '../helpers/faults.ts';
import {
  defaultMajor,
  secondMajor,
  startTestServer,
  superuser,
  type TestServer,
  waitFor,
} from '../helpers/postgres.ts';

const deps = { logger: silentLogger };

function expectFailure(result: ProbeResult, category: string) {
  expect(result.ok, JSON.stringify(result)).toBe(false);
  if (result.ok) return;
  expect(result.failure.category).toBe(category);
}

describe.each([defaultMajor(), secondMajor()])('probe on PostgreSQL %i', (major) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ major, maxConnections: 40 });
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('returns a snapshot of a healthy server in one statement', async () => {
    const result = await probe(server.spec(), { label: 'local' }, deps);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.serverVersionNum).toBeGreaterThanOrEqual(major * 10_000);
    expect(result.serverVersionNum).toBeLessThan((major + 1) * 10_000);
    expect(result.connections.max).toBe(40);
    expect(result.connections.reserved).toBe(3);
    expect(result.connections.usable).toBe(37);
    expect(result.target).toBe('local');
    expect(result.latencyMs.connect).toBeGreaterThan(0);
    expect(result.latencyMs.query).toBeGreaterThan(0);
    expect(result.crashRestartAt).toBeNull();
    expect(result.longestLockWaitSeconds).toBe(0);
    expect(result.lockWaits).toEqual([]);
    expect(result.wraparoundAge).toBeGreaterThan(0);
    expect(result.wraparoundPct).toBeCloseTo((result.wraparoundAge / 2 ** 31) * 100, 2);
    expect(Date.parse(result.serverStartedAt)).toBeLessThanOrEqual(Date.parse(result.checkedAt));
  });

  it('counts sessions by state, long queries and lock chains under a crafted load', async () => {
    const target = superuser(server);
    const idle = await openIdleSessions(target, 3);
    const idleTx = await holdIdleInTransaction(target, 'probe_tx');
    const long = await runLongQuery(target, 30);
    const chain = await buildLockChain(target, 2, 'probe_chain');
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const result = await probe(server.spec(), { longQueryThresholdSeconds: 1 }, deps);
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      const c = result.connections;
      // 3 idle + 1 idle-in-tx + 1 long query + chain (1 idle-in-tx blocker + 2 waiting)
      expect(c.total).toBe(8);
      expect(c.idle).toBe(3);
      expect(c.idleInTransaction).toBe(2);
      expect(c.active).toBe(3);
      expect(c.waiting).toBe(2);
      expect(c.utilizationPct).toBeCloseTo((8 / 37) * 100, 1);
      expect(result.longRunningQueries).toBe(3);
      expect(result.longestQuerySeconds).toBeGreaterThanOrEqual(1);
      expect(result.blockedSessions).toBe(2);
      expect(result.blockingPids).toEqual([chain.blockerPid]);
      // Dated by the server (pg_locks.waitstart): the chain has waited about as long as it has existed.
      expect(result.longestLockWaitSeconds).toBeGreaterThanOrEqual(1);
      expect(result.longestLockWaitSeconds).toBeLessThan(30);
      expect(result.lockWaits.map((w) => w.pid).sort()).toEqual([...chain.blockedPids].sort());
      expect(result.lockWaits[0]).toMatchObject({ blockedBy: [chain.blockerPid] });
      expect(result.lockWaits[0]?.waitingSeconds).toBe(result.longestLockWaitSeconds);
      expect(result.lockWaits[0]?.statementStartedAt).toEqual(expect.any(String));
      expect(result.longestIdleInTransactionSeconds).toBeGreaterThanOrEqual(1);
      expect(result.longestIdleSeconds).toBeGreaterThanOrEqual(1);
      expect(result.oldestTransactionAgeSeconds).toBeGreaterThanOrEqual(1);
    } finally {
      await Promise.all([idle.release(), idleTx.release(), long.release(), chain.release()]);
    }
  });

  it('reveals a crash-restart that lasted a fraction of a second', async () => {
    const before = await probe(server.spec(), {}, deps);
    expect(before.ok).toBe(true);
    if (!before.ok) return;
    // A restart is told apart from the server's own start by a margin of one second.
    const upFor = Date.parse(before.checkedAt) - Date.parse(before.serverStartedAt);
    if (upFor < 1_500) await new Promise((resolve) => setTimeout(resolve, 1_500 - upFor));
    await server.crashBackend();
    const after = await waitFor(async () => {
      const r = await probe(server.spec(), {}, deps);
      return r.ok ? r : undefined;
    });
    expect(after.serverStartedAt).toBe(before.serverStartedAt);
    expect(after.crashRestartAt).not.toBeNull();
    expect(Date.parse(after.crashRestartAt ?? '')).toBeGreaterThan(Date.parse(before.checkedAt));
  });

  it('classifies a wrong password as auth_failed', async () => {
    const result = await probe(server.spec({ password: 'wrong-password' }), {}, deps);
    expectFailure(result, 'auth_failed');
    if (result.ok) return;
    expect(result.failure.sqlstate).toBe('28P01');
    expect(result.failure.retryable).toBe(false);
    expect(JSON.stringify(result)).not.toContain('wrong-password');
  });

  it('classifies a missing database as database_missing', async () => {
    const result = await probe(server.spec({ database: 'no_such_db' }), {}, deps);
    expectFailure(result, 'database_missing');
    if (!result.ok) expect(result.failure.sqlstate).toBe('3D000');
  });

  it('classifies a role without CONNECT as permission_denied', async () => {
    await server.admin('CREATE DATABASE locked_db');
    await server.admin('REVOKE CONNECT ON DATABASE locked_db FROM PUBLIC');
    await server.admin(`CREATE ROLE outsider LOGIN PASSWORD 'outsider-pw'`);
    const result = await probe(
      server.spec({ user: 'outsider', password: 'outsider-pw', database: 'locked_db' }),
      {},
      deps,
    );
    expectFailure(result, 'permission_denied');
    if (!result.ok) expect(result.failure.sqlstate).toBe('42501');
  });

  it('classifies TLS required against a server without TLS as tls', async () => {
    const spec: ConnectionSpec = { ...server.spec(), tls: { mode: 'require' } };
    const result = await probe(spec, {}, deps);
    expectFailure(result, 'tls');
  });
});

describe('probe failures that need their own server', () => {
  it('classifies a refused connection as unreachable', async () => {
    const port = await freePort();
    const spec: ConnectionSpec = {
      host: '127.0.0.1',
      port,
      database: 'x',
      user: 'x',
      auth: { kind: 'none' },
      tls: { mode: 'disable' },
    };
    const result = await probe(spec, {}, deps);
    expectFailure(result, 'unreachable');
    if (!result.ok) expect(result.failure.retryable).toBe(true);
  });

  it('classifies a host that accepts and never answers as timeout, within the connect timeout', async () => {
    const listener = await silentListener();
    try {
      const spec: ConnectionSpec = {
        host: '127.0.0.1',
        port: listener.port,
        database: 'x',
        user: 'x',
        auth: { kind: 'none' },
        tls: { mode: 'disable' },
      };
      const started = Date.now();
      const result = await probe(spec, { connectTimeoutMs: 300 }, deps);
      expectFailure(result, 'timeout');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await listener.close();
    }
  });

  it('classifies an unresolvable host as dns', async () => {
    const spec: ConnectionSpec = {
      host: 'db.pgwarden-does-not-exist.invalid',
      port: 5432,
      database: 'x',
      user: 'x',
      auth: { kind: 'none' },
      tls: { mode: 'disable' },
    };
    expectFailure(await probe(spec, {}, deps), 'dns');
  });

  it('classifies exhausted slots as too_many_connections', async () => {
    const server = await startTestServer({ maxConnections: 6 });
    try {
      const flood = await exhaustSlots(superuser(server));
      try {
        expect(flood.refusedWith).toBe('53300');
        const result = await probe(server.spec(), {}, deps);
        expectFailure(result, 'too_many_connections');
        if (!result.ok) expect(result.failure.retryable).toBe(true);
      } finally {
        await flood.release();
      }
      expect((await probe(server.spec(), {}, deps)).ok).toBe(true);
    } finally {
      await server.destroy();
    }
  });

  it('classifies connecting during crash recovery as starting_up', async () => {
    const server = await startTestServer();
    try {
      const seen = new Set<string>();
      await server.crashBackend();
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline) {
        const result = await probe(server.spec(), { connectTimeoutMs: 1_000 }, deps);
        if (result.ok) {
          if (seen.size > 0) break;
          continue;
        }
        seen.add(result.failure.category);
        if (result.failure.category === 'starting_up') break;
      }
      expect([...seen]).toContain('starting_up');
    } finally {
      await server.destroy();
    }
  });

  it('classifies a stopped server as unreachable and recovers when it starts', async () => {
    const server = await startTestServer();
    try {
      await server.stop();
      expectFailure(await probe(server.spec(), {}, deps), 'unreachable');
      await server.start();
      expect((await probe(server.spec(), {}, deps)).ok).toBe(true);
    } finally {
      await server.destroy();
    }
  });
});

describe('failures in the middle of a query, through the same database door', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  async function inFlight(action: (pid: number) => Promise<void>, statementTimeoutMs = 0) {
    const { spec, credentials } = superuser(server);
    const session = await openSession(spec, credentials, {
      connectTimeoutMs: 2_000,
      statementTimeoutMs,
      applicationName: 'test:in-flight',
      logger: silentLogger,
    });
    try {
      const pending = session.query('sleep', 'SELECT pg_sleep(10)').then(
        () => undefined,
        (e: unknown) => e,
      );
      await waitFor(async () => {
        const rows = await server.admin<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`,
          [session.pid],
        );
        return (rows[0]?.n ?? 0) > 0;
      });
      await action(session.pid);
      return classifyError(await pending, 'query');
    } finally {
      await session.close();
    }
  }

  it('classifies pg_terminate_backend as shutting_down (57P01) without crashing the process', async () => {
    const failure = await inFlight(async (pid) => {
      await server.admin('SELECT pg_terminate_backend($1)', [pid]);
    });
    expect(failure.category).toBe('shutting_down');
    expect(failure.sqlstate).toBe('57P01');
  });

  it('classifies pg_cancel_backend as query_canceled (57014)', async () => {
    const failure = await inFlight(async (pid) => {
      await server.admin('SELECT pg_cancel_backend($1)', [pid]);
    });
    expect(failure.category).toBe('query_canceled');
    expect(failure.sqlstate).toBe('57014');
  });

  it('classifies a query that outlives the statement timeout as query_canceled', async () => {
    const failure = await inFlight(async () => undefined, 300);
    expect(failure.category).toBe('query_canceled');
  });

  it('classifies a backend killed by kill -9 as connection_lost', async () => {
    const failure = await inFlight(async (pid) => {
      process.kill(pid, 'SIGKILL');
    });
    expect(failure.category).toBe('connection_lost');
    expect(failure.sqlstate).toBeUndefined();
  });
});
