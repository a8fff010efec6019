import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../cli/local/embedded.ts';
import {
  buildLockChain,
  exhaustSlots,
  type FaultHandle,
  type FaultTarget,
  holdIdleInTransaction,
  runLongQuery,
} from '../../cli/local/faults.ts';
import type { ConnectionSpec } from '../../shared/connection.ts';
import { type DbSession, openSession } from '../../shared/db.ts';
import { type Logger, silentLogger } from '../../shared/logger.ts';
import type { RemediationAction } from '../../shared/remediation/policy.ts';
import {
  type RemediateDeps,
  type RemediateRequest,
  type RemediationResult,
  type RemediationSuccess,
  remediate,
} from '../../shared/remediation/remediator.ts';
import { TERMINATE_SQL } from '../../shared/remediation/sessions-sql.ts';
import { DEFAULT_REMEDIATION, type RemediationPolicy } from '../../shared/target.ts';
import { openIdleSessions } from '../helpers/faults.ts';
import {
  createMonitorRole,
  startTestServer,
  superuser,
  type TestServer,
  waitFor,
} from '../helpers/postgres.ts';

/** Thresholds of one second, so a session is "old" after a short wait. */
function policy(overrides: Partial<RemediationPolicy> = {}): RemediationPolicy {
  return {
    ...DEFAULT_REMEDIATION,
    idleAfterSeconds: 1,
    idleInTransactionAfterSeconds: 1,
    pressure: { utilizationPct: 90, idleAfterSeconds: 1 },
    ...overrides,
  };
}

/** Lets sessions age past the one-second thresholds. */
const ageSessions = () => new Promise((resolve) => setTimeout(resolve, 1_200));

const sorted = (pids: readonly number[]) => [...pids].sort((a, b) => a - b);

function expectOk(result: RemediationResult): RemediationSuccess {
  expect(result.ok, JSON.stringify(result)).toBe(true);
  if (!result.ok) throw new Error('unreachable');
  return result;
}

interface LogEntry {
  level: string;
  message: string;
  extra: Record<string, unknown>;
}

function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const log =
    (level: string) =>
    (message: string, extra: Record<string, unknown> = {}) =>
      entries.push({ level, message, extra });
  return { entries, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** Roles, fault tracking and helpers shared by the describes; each describe has its own server. */
function harness(options: { maxConnections: number }) {
  const ctx = {
    server: undefined as unknown as TestServer,
    monitor: undefined as unknown as ConnectionSpec,
    app: undefined as unknown as FaultTarget,
  };
  const faults: FaultHandle[] = [];

  beforeAll(async () => {
    ctx.server = await startTestServer({ maxConnections: options.maxConnections });
    const monitor = await createMonitorRole(ctx.server);
    ctx.monitor = ctx.server.spec({ user: monitor.user, password: monitor.password });
    await ctx.server.admin(`CREATE ROLE app_user LOGIN PASSWORD 'app-pw-123'`);
    await ctx.server.admin('GRANT CREATE ON SCHEMA public TO app_user');
    ctx.app = {
      spec: ctx.server.spec({ user: 'app_user', password: 'app-pw-123' }),
      credentials: { user: 'app_user', password: 'app-pw-123' },
    };
  });
  afterEach(async () => {
    await Promise.all(faults.splice(0).map((f) => f.release()));
  });
  afterAll(async () => {
    await Promise.all(faults.splice(0).map((f) => f.release()));
    await ctx.server?.destroy();
  });

  return {
    ctx,
    track<T extends FaultHandle>(fault: T): T {
      faults.push(fault);
      return fault;
    },
    run(
      overrides: Partial<RemediateRequest> & { actions: RemediationAction[] },
      spec?: ConnectionSpec,
      deps: Partial<RemediateDeps> = {},
    ) {
      return remediate(
        spec ?? ctx.monitor,
        { targetId: 'local', policy: policy(), ...overrides },
        { logger: silentLogger, ...deps },
      );
    },
    async alive(pids: readonly number[]): Promise<number[]> {
      const rows = await ctx.server.admin<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY pid',
        [pids],
      );
      return rows.map((r) => r.pid);
    },
    async gone(pids: readonly number[]): Promise<void> {
      await waitFor(async () => (await this.alive(pids)).length === 0);
    },
  };
}

describe('remediate', () => {
  const h = harness({ maxConnections: 40 });
  const { ctx } = h;

  it('terminates sessions idle past idleAfterSeconds, leaves fresh ones, and audits every action', async () => {
    const old = h.track(await openIdleSessions(ctx.app, 3, 'orders-api'));
    await ageSessions();
    const fresh = h.track(await openIdleSessions(ctx.app, 2, 'orders-api'));
    const logger = memoryLogger();

    const result = expectOk(await h.run({ actions: ['idle'] }, undefined, { logger }));

    expect(sorted(result.terminated.map((r) => r.pid))).toEqual(sorted(old.pids));
    expect(result.canceled).toEqual([]);
    expect(result.dryRun).toBe(false);
    expect(result.thresholds).toEqual({
      idleAfterSeconds: 1,
      pressureIdleAfterSeconds: null,
      idleInTransactionAfterSeconds: null,
      blockerIdleSeconds: null,
      cancelQueriesAfterSeconds: null,
      maxPerRun: 20,
    });
    for (const record of result.terminated) {
      expect(record).toEqual({
        pid: expect.any(Number),
        user: 'app_user',
        application: 'orders-api',
        clientAddr: '127.0.0.1',
        state: 'idle',
        idleSeconds: expect.any(Number),
        transactionSeconds: null,
        querySeconds: expect.any(Number),
        action: 'terminate',
        reason: 'idle',
        outcome: 'terminated',
        query: '[redacted]',
      });
      expect(record.idleSeconds).toBeGreaterThanOrEqual(1);
    }
    const fromFresh = [...result.terminated, ...result.skipped].filter((r) => fresh.pids.includes(r.pid));
    expect(fromFresh).toEqual([]);
    await h.gone(old.pids);
    expect(await h.alive(fresh.pids)).toEqual(sorted(fresh.pids));

    const logged = logger.entries.filter((e) => e.message === 'remediation action');
    expect(logged.map((e) => e.extra.pid).sort()).toEqual(sorted(old.pids));
    for (const entry of logged) {
      expect(entry.extra).toMatchObject({
        targetId: 'local',
        reason: 'idle',
        outcome: 'terminated',
        dryRun: false,
      });
      expect(entry.extra).not.toHaveProperty('query');
    }
    expect(JSON.stringify(logger.entries)).not.toContain('monitor-pw-123');
  });

  it('terminates a session idle in a transaction past its threshold', async () => {
    const tx = h.track(await holdIdleInTransaction(ctx.app, 'rem_tx'));
    await ageSessions();

    const result = expectOk(await h.run({ actions: ['idle_in_transaction'] }));

    expect(result.terminated).toHaveLength(1);
    expect(result.terminated[0]).toMatchObject({
      pid: tx.pids[0],
      state: 'idle in transaction',
      reason: 'idle_in_transaction',
      outcome: 'terminated',
    });
    expect(result.terminated[0]?.transactionSeconds).toBeGreaterThanOrEqual(1);
    await h.gone(tx.pids);
  });

  it('leaves protected users, protected applications and pgwarden sessions alone and lists them as skipped', async () => {
    await ctx.server.admin(`CREATE ROLE batch_user LOGIN PASSWORD 'batch-pw-123'`);
    const batchTarget: FaultTarget = {
      spec: ctx.server.spec({ user: 'batch_user', password: 'batch-pw-123' }),
      credentials: { user: 'batch_user', password: 'batch-pw-123' },
    };
    const batch = h.track(await openIdleSessions(batchTarget, 1, 'nightly'));
    const migrations = h.track(await openIdleSessions(ctx.app, 1, 'migrations'));
    // pgwarden's own: the monitor role with a pgwarden- name (another role's name is only a claim).
    const password = ctx.monitor.auth.kind === 'password' ? ctx.monitor.auth.password : '';
    const asMonitor = { spec: ctx.monitor, credentials: { user: ctx.monitor.user ?? '', password } };
    const pgwarden = h.track(await openIdleSessions(asMonitor, 2, 'pgwarden-probe'));
    const victim = h.track(await openIdleSessions(ctx.app, 1, 'orders-api'));
    await ageSessions();

    const result = expectOk(
      await h.run({
        actions: ['idle'],
        policy: policy({ protectUsers: ['batch_user'], protectApplications: ['migrations'] }),
      }),
    );

    expect(result.terminated.map((r) => r.pid)).toEqual(victim.pids);
    const skipOf = (pid: number | undefined) => result.skipped.find((s) => s.pid === pid);
    expect(skipOf(batch.pids[0])).toEqual({
      pid: batch.pids[0],
      reason: 'protected_user',
      user: 'batch_user',
      application: 'nightly',
      state: 'idle',
      matched: 'idle',
    });
    expect(skipOf(migrations.pids[0])).toMatchObject({
      reason: 'protected_application',
      application: 'migrations',
    });
    for (const pid of pgwarden.pids) expect(skipOf(pid)).toMatchObject({ reason: 'pgwarden_session' });
    const listed = [...result.terminated, ...result.skipped].map((r) => r.pid);
    expect(listed).not.toContain(result.remediatorPid);
    const spared = [...batch.pids, ...migrations.pids, ...pgwarden.pids];
    expect(await h.alive(spared)).toEqual(sorted(spared));
  });

  it('skips superuser sessions when running as the monitor role', async () => {
    const admins = h.track(await openIdleSessions(superuser(ctx.server), 2, 'psql'));
    const victim = h.track(await openIdleSessions(ctx.app, 1, 'orders-api'));
    await ageSessions();

    const result = expectOk(await h.run({ actions: ['idle'] }));

    expect(result.terminated.map((r) => r.pid)).toEqual(victim.pids);
    for (const pid of admins.pids) {
      expect(result.skipped.find((s) => s.pid === pid)).toMatchObject({
        reason: 'superuser',
        user: 'postgres',
      });
    }
    expect(await h.alive(admins.pids)).toEqual(sorted(admins.pids));
  });

  it('terminates at most maxPerRun sessions, the oldest first, and skips the rest as cap_reached', async () => {
    const five = h.track(await openIdleSessions(ctx.app, 5, 'orders-api'));
    await ageSessions();

    const result = expectOk(await h.run({ actions: ['idle'], policy: policy({ maxPerRun: 2 }) }));

    expect(result.terminated.map((r) => r.pid)).toEqual(five.pids.slice(0, 2));
    const capped = result.skipped.filter((s) => s.reason === 'cap_reached');
    expect(capped.map((s) => s.pid)).toEqual(five.pids.slice(2));
    expect(result.skipCounts).toEqual({ cap_reached: 3 });
    expect(result.skippedOmitted).toBe(0);
    await h.gone(five.pids.slice(0, 2));
    expect(await h.alive(five.pids.slice(2))).toEqual(sorted(five.pids.slice(2)));
  });

  it('reports would_terminate in a dry run, signals nothing, and lets policy.dryRun win over the request', async () => {
    const idle = h.track(await openIdleSessions(ctx.app, 3, 'orders-api'));
    await ageSessions();

    const asked = expectOk(await h.run({ actions: ['idle'], dryRun: true, includeQueryText: true }));
    const byPolicy = expectOk(
      await h.run({ actions: ['idle'], dryRun: false, policy: policy({ dryRun: true }) }),
    );

    for (const result of [asked, byPolicy]) {
      expect(result.dryRun).toBe(true);
      expect(sorted(result.terminated.map((r) => r.pid))).toEqual(sorted(idle.pids));
      expect(result.terminated.every((r) => r.outcome === 'would_terminate')).toBe(true);
    }
    expect(asked.terminated.every((r) => r.query === 'SELECT 1')).toBe(true);
    expect(byPolicy.terminated.every((r) => r.query === '[redacted]')).toBe(true);
    expect(await h.alive(idle.pids)).toEqual(sorted(idle.pids));
  });

  it('lists at most maxSkipRecords skips and counts the rest', async () => {
    const idle = h.track(await openIdleSessions(ctx.app, 3, 'orders-api'));
    await ageSessions();

    const result = expectOk(
      await h.run({ actions: ['idle'], dryRun: true, maxSkipRecords: 1, policy: policy({ maxPerRun: 1 }) }),
    );

    expect(result.terminated.map((r) => r.pid)).toEqual(idle.pids.slice(0, 1));
    expect(result.skipped.map((s) => s.pid)).toEqual(idle.pids.slice(1, 2));
    expect(result.skipCounts).toEqual({ cap_reached: 2 });
    expect(result.skippedOmitted).toBe(1);
  });

  it('stops signalling once the invocation deadline has passed and audits the rest as deadline_reached', async () => {
    const idle = h.track(await openIdleSessions(ctx.app, 2, 'orders-api'));
    await ageSessions();

    const result = expectOk(await h.run({ actions: ['idle'] }, undefined, { signal: AbortSignal.abort() }));

    expect(result.terminated).toEqual([]);
    expect(sorted(result.skipped.map((s) => s.pid))).toEqual(sorted(idle.pids));
    expect(result.skipped.every((s) => s.reason === 'deadline_reached' && s.matched === 'idle')).toBe(true);
    expect(await h.alive(idle.pids)).toEqual(sorted(idle.pids));
  });

  it('terminates the idle-in-transaction head of a lock chain, and the waiters proceed', async () => {
    const chain = h.track(await buildLockChain(ctx.app, 2, 'rem_chain'));

    const result = expectOk(
      await h.run({ actions: ['blockers'], policy: policy({ blockerIdleSeconds: 0 }) }),
    );

    expect(result.terminated.map((r) => [r.pid, r.reason])).toEqual([
      [chain.blockerPid, 'lock_chain_blocker'],
    ]);
    await h.gone([chain.blockerPid]);
    await waitFor(async () => {
      const rows = await ctx.server.admin<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND state = 'idle'`,
        [chain.blockedPids],
      );
      return rows[0]?.n === chain.blockedPids.length;
    });
  });

  it('leaves an active lock-chain head alone', async () => {
    const chain = h.track(await activeLockChain(ctx.app, ctx.server));

    const result = expectOk(
      await h.run({
        actions: ['blockers', 'idle_in_transaction'],
        policy: policy({ blockerIdleSeconds: 0 }),
      }),
    );

    const listed = [...result.terminated, ...result.skipped].map((r) => r.pid);
    expect(listed).not.toContain(chain.blockerPid);
    expect(await h.alive([chain.blockerPid])).toEqual([chain.blockerPid]);
  });

  it('cancels a long query only when cancelQueriesAfterSeconds is set, and leaves its session connected', async () => {
    const long = h.track(await runLongQuery(ctx.app, 30));
    const pid = long.pids[0] as number;
    await ageSessions();

    const off = expectOk(await h.run({ actions: ['cancel_queries'] }));
    expect(off.canceled).toEqual([]);
    expect(off.thresholds.cancelQueriesAfterSeconds).toBeNull();

    const on = expectOk(
      await h.run({ actions: ['cancel_queries'], policy: policy({ cancelQueriesAfterSeconds: 1 }) }),
    );
    expect(on.terminated).toEqual([]);
    expect(on.canceled).toHaveLength(1);
    expect(on.canceled[0]).toMatchObject({
      pid,
      state: 'active',
      action: 'cancel',
      reason: 'long_query',
      outcome: 'canceled',
    });
    expect(on.canceled[0]?.querySeconds).toBeGreaterThanOrEqual(1);
    await waitFor(async () => {
      const rows = await ctx.server.admin<{ state: string }>(
        'SELECT state FROM pg_stat_activity WHERE pid = $1',
        [pid],
      );
      return rows[0]?.state === 'idle';
    });
  });

  it('reports signal_failed, and keeps going, when its role may not signal the backend', async () => {
    await ctx.server.admin(`CREATE ROLE watcher LOGIN PASSWORD 'watcher-pw-123' IN ROLE pg_monitor`);
    const victim = h.track(await openIdleSessions(ctx.app, 2, 'orders-api'));
    await ageSessions();

    const result = expectOk(
      await h.run({ actions: ['idle'] }, ctx.server.spec({ user: 'watcher', password: 'watcher-pw-123' })),
    );

    expect(result.terminated).toEqual([]);
    const failed = result.skipped.filter((s) => s.reason === 'signal_failed');
    expect(sorted(failed.map((s) => s.pid))).toEqual(sorted(victim.pids));
    for (const skip of failed) expect(skip.detail).toMatch(/permission denied|must be a member/i);
    expect(await h.alive(victim.pids)).toEqual(sorted(victim.pids));
  });

  it('signals nothing through the re-check when the session ran a statement since it was listed', async () => {
    const s = await openSession(ctx.app.spec, ctx.app.credentials, {
      connectTimeoutMs: 5_000,
      statementTimeoutMs: 0,
      applicationName: 'orders-api',
      logger: silentLogger,
    });
    h.track({ pids: [s.pid], release: () => s.close() });
    await s.query('warm-up', 'SELECT 1');
    const stateChange = async () =>
      (
        await ctx.server.admin<{ at: string }>(
          `SELECT to_json(state_change) #>> '{}' AS at FROM pg_stat_activity WHERE pid = $1`,
          [s.pid],
        )
      )[0]?.at;
    const listedAt = await stateChange();
    await s.query('moves-on', 'SELECT 2');
    const signal = (at: string | undefined) =>
      ctx.server.admin<{ signalled: boolean }>(TERMINATE_SQL, [s.pid, 'idle', at]);

    expect(await signal(listedAt)).toEqual([]);
    expect(await h.alive([s.pid])).toEqual([s.pid]);
    expect(await signal(await stateChange())).toEqual([{ signalled: true }]);
    await h.gone([s.pid]);
  });

  it('returns a classified failure instead of throwing when nothing listens on the port', async () => {
    const spec = { ...ctx.monitor, port: await freePort() };

    const result = await h.run({ actions: ['idle'] }, spec);

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.failure).toMatchObject({ category: 'unreachable', phase: 'connect', retryable: true });
    expect(result.terminated).toEqual([]);
    expect(result.skipped).toEqual([]);
  });
});

describe('remediate under pool pressure', () => {
  // 10 slots, 3 reserved for superusers: 7 usable by the application and the monitor.
  const h = harness({ maxConnections: 10 });
  const { ctx } = h;

  it('terminates sessions past the escalated idle threshold once utilization reaches pressure.utilizationPct', async () => {
    const idle = h.track(await openIdleSessions(ctx.app, 5, 'orders-api'));
    await ageSessions();
    const calm = { idleAfterSeconds: 60, pressure: { utilizationPct: 80, idleAfterSeconds: 1 } };

    const below = expectOk(await h.run({ actions: ['idle'], policy: policy(calm) }));
    expect(below.utilizationPct).toBeCloseTo((5 / 7) * 100, 1);
    expect(below.pressure).toEqual({ active: false });
    expect(below.terminated).toEqual([]);
    expect(below.thresholds.pressureIdleAfterSeconds).toBeNull();

    const measured = expectOk(
      await h.run({
        actions: ['idle'],
        policy: policy({ ...calm, maxPerRun: 2, pressure: { utilizationPct: 70, idleAfterSeconds: 1 } }),
      }),
    );
    expect(measured.pressure).toEqual({ active: true, reason: 'utilization 71.4% ≥ 70%' });
    expect(measured.thresholds).toMatchObject({ idleAfterSeconds: 60, pressureIdleAfterSeconds: 1 });
    expect(measured.terminated.map((r) => r.pid)).toEqual(idle.pids.slice(0, 2));
    expect(measured.terminated.every((r) => r.reason === 'idle_under_pressure')).toBe(true);
    await h.gone(idle.pids.slice(0, 2));

    const reported = expectOk(
      await h.run({
        actions: ['idle'],
        policy: policy(calm),
        pressure: { active: true, reason: 'monitor saw 53300' },
      }),
    );
    expect(reported.pressure).toEqual({ active: true, reason: 'monitor saw 53300' });
    expect(sorted(reported.terminated.map((r) => r.pid))).toEqual(sorted(idle.pids.slice(2)));
    expect(reported.terminated.every((r) => r.reason === 'idle_under_pressure')).toBe(true);
  });

  it('returns too_many_connections, not an error, when every slot its role may use is taken', async () => {
    const flood = h.track(await exhaustSlots(ctx.app));
    expect(flood.refusedWith).toBe('53300');

    const result = await h.run({ actions: ['idle'] });

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.failure).toMatchObject({
      category: 'too_many_connections',
      sqlstate: '53300',
      retryable: true,
    });
  });
});

/**
 * A lock chain whose head is running a statement (a long report inside a transaction), not idle:
 * remediation must wait for it rather than kill work in progress.
 */
async function activeLockChain(
  target: FaultTarget,
  server: TestServer,
): Promise<FaultHandle & { blockerPid: number }> {
  const open = (applicationName: string) =>
    openSession(target.spec, target.credentials, {
      connectTimeoutMs: 5_000,
      statementTimeoutMs: 0,
      lockTimeoutMs: 0,
      applicationName,
      logger: silentLogger,
    });
  const sessions: DbSession[] = [];
  const release = async () => {
    // pg_sleep does not notice a closed client, so end the backends rather than wait out the sleep.
    await server.admin('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1::int[])', [
      sessions.map((s) => s.pid),
    ]);
    await Promise.all(sessions.map((s) => s.close()));
  };
  try {
    const blocker = await open('report-job');
    sessions.push(blocker);
    await blocker.query('table', 'CREATE TABLE IF NOT EXISTS rem_active (id int PRIMARY KEY, v int)');
    await blocker.query('seed', 'INSERT INTO rem_active VALUES (1, 0) ON CONFLICT (id) DO NOTHING');
    await blocker.query('begin', 'BEGIN');
    await blocker.query('lock', 'UPDATE rem_active SET v = v + 1 WHERE id = 1');
    blocker.query('work', 'SELECT pg_sleep(30)').catch(() => undefined);
    const waiter = await open('orders-api');
    sessions.push(waiter);
    waiter.query('wait', 'UPDATE rem_active SET v = v + 1 WHERE id = 1').catch(() => undefined);
    await waitFor(async () => {
      const rows = await server.admin<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE (pid = $1 AND state = 'active') OR (pid = $2 AND wait_event_type = 'Lock')`,
        [blocker.pid, waiter.pid],
      );
      return rows[0]?.n === 2;
    });
    return { pids: sessions.map((s) => s.pid), blockerPid: blocker.pid, release };
  } catch (error) {
    await release();
    throw error;
  }
}
