import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exhaustSlots, type FaultTarget, holdIdleInTransaction } from '../../cli/local/faults.ts';
import { type DbSession, openSession } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';
import { probe } from '../../shared/probe/snapshot.ts';
import { openIdleSessions } from '../helpers/faults.ts';
import { createMonitorRole, startTestServer, type TestServer, waitFor } from '../helpers/postgres.ts';
import { type Outcome, runIncident } from './harness.ts';

const kinds = (messages: Outcome['published']) => messages.map((m) => m.attributes['pgwarden.kind']);
const lines = (message: { message: string } | undefined) => (message?.message ?? '').split('\n');

describe('incident severity: what pages and what resolves, against a real PostgreSQL', () => {
  let server: TestServer;
  let monitor: { username: string; password: string };
  let app: FaultTarget;

  beforeAll(async () => {
    server = await startTestServer({ maxConnections: 14, settings: { reserved_connections: 3 } });
    const role = await createMonitorRole(server);
    monitor = { username: role.user, password: role.password };
    await server.admin(`CREATE ROLE app LOGIN PASSWORD 'app-pw-123'`);
    await server.admin('CREATE TABLE severity_rows (id int PRIMARY KEY, v int)');
    await server.admin('INSERT INTO severity_rows VALUES (1, 0)');
    await server.admin('GRANT ALL ON severity_rows TO app');
    app = {
      spec: server.spec({ user: 'app', password: 'app-pw-123' }),
      credentials: { user: 'app', password: 'app-pw-123' },
    };
  });
  afterAll(async () => {
    await server?.destroy();
  });

  /** Waits until the server answers again and returns the crash-restart time a probe reports. */
  async function crash(after?: string): Promise<string> {
    await server.crashBackend();
    return waitFor(async () => {
      const r = await probe(server.spec(), {}, { logger: silentLogger });
      return r.ok && r.crashRestartAt && r.crashRestartAt !== after ? r.crashRestartAt : undefined;
    }, 30_000);
  }

  it('resolves an incident whose remaining finding is a warning, saying what is still worth a look, without a page', async () => {
    const held = await holdIdleInTransaction(app, 'severity_rows');
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const outcome = await runIncident({
        server,
        credentials: monitor,
        thresholds: { idleInTransactionSeconds: 1 },
        remediation: { idleInTransactionAfterSeconds: 1, protectUsers: ['app'] },
        trigger: { findings: ['idle_in_transaction'], severity: 'warning', summary: 'idle in transaction' },
      });
      expect(outcome.output.status).toBe('resolved');
      expect(outcome.pages).toEqual([]);
      expect(kinds(outcome.notifications)).toEqual(['opened', 'resolved']);
      expect(outcome.notifications[0]?.message).toContain('This is a warning: it never pages on-call.');
      const resolved = outcome.notifications[1];
      expect(resolved?.subject).toMatch(/nothing left to act on after .+; worth a look: queries$/);
      expect(lines(resolved)[1]).toMatch(
        /^ {2}- queries: a session has been idle in transaction for \d+s; the policy allows terminating none/,
      );
      // The runbook tried once, found the session protected, and let the incident end.
      expect(outcome.output.actions).toEqual([
        expect.objectContaining({ kind: 'terminate_idle_in_transaction', ok: true, count: 0 }),
      ]);
      const alive = await server.admin<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1',
        [held.pids[0]],
      );
      expect(alive[0]?.n).toBe(1);
    } finally {
      await held.release();
    }
  });

  it('never pages for a warning, even long past the escalation time', async () => {
    const held = await holdIdleInTransaction(app, 'severity_rows');
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const outcome = await runIncident({
        server,
        credentials: monitor,
        thresholds: { idleInTransactionSeconds: 1 },
        // Its policy time never comes within the incident: the runbook keeps waiting for it.
        remediation: { idleInTransactionAfterSeconds: 3_600 },
        settings: { maxDurationSeconds: 30 * 60 },
        trigger: { findings: ['idle_in_transaction'], severity: 'warning' },
      });
      expect(outcome.output.status).toBe('unresolved');
      expect(outcome.output.paged).toBe(false);
      expect(outcome.pages).toEqual([]);
      expect(kinds(outcome.notifications)).toEqual(['opened', 'final']);
      expect(outcome.notifications[1]?.attributes['pgwarden.severity']).toBe('warning');
      expect(outcome.minuteOf(outcome.notifications[1] as Outcome['published'][number])).toBe(30);
    } finally {
      await held.release();
    }
  });

  it('pages once for a lock chain it cannot clear, with the target, the cause and what was tried first', async () => {
    // The head of the chain is active (asleep inside its transaction), so no policy lets it be terminated.
    const open = () =>
      openSession(app.spec, app.credentials, {
        connectTimeoutMs: 5_000,
        statementTimeoutMs: 0,
        lockTimeoutMs: 0,
        applicationName: 'test:chain',
        logger: silentLogger,
      });
    const head: DbSession = await open();
    const waiter: DbSession = await open();
    try {
      await head.query('begin', 'BEGIN');
      await head.query('lock', 'UPDATE severity_rows SET v = v + 1 WHERE id = 1');
      head.query('sleep', 'SELECT pg_sleep(300)').catch(() => undefined);
      waiter.query('wait', 'UPDATE severity_rows SET v = v + 1 WHERE id = 1').catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      const outcome = await runIncident({
        server,
        credentials: monitor,
        thresholds: { lockWaitSeconds: 1 },
        settings: { maxDurationSeconds: 25 * 60 },
        trigger: { findings: ['blocked_sessions'], severity: 'critical' },
      });
      expect(kinds(outcome.pages)).toEqual(['page', 'final']);
      const page = outcome.pages[0];
      expect(outcome.minuteOf(page as Outcome['published'][number])).toBe(20);
      const [target, cause, tried] = lines(page);
      expect(target).toMatch(/^Target: local-db \(.+\), critical: unhealthy for 20m/);
      expect(cause).toMatch(
        new RegExp(
          `^Cause: queries: 1 session\\(s\\) blocked behind pid\\(s\\) ${head.pid}, the longest for \\d+s \\(threshold 1s\\); the last pass found no session the policy allows terminating`,
        ),
      );
      expect(tried).toMatch(
        /^Tried: found no session the policy allows terminating ×\d+, \d\d:\d\d:\d\d–\d\d:\d\d:\d\d$/,
      );
      const actions = outcome.output.actions as Array<{ times?: number }>;
      expect(actions).toHaveLength(1);
      expect(actions[0]?.times).toBeGreaterThanOrEqual(20);
    } finally {
      await server.admin('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1)', [
        [head.pid, waiter.pid],
      ]);
      await Promise.all([head.close(), waiter.close()]);
    }
  });

  it('pages once for a pool exhausted by sessions it may not terminate', async () => {
    const flood = await exhaustSlots(app);
    try {
      expect(flood.refusedWith).toBe('53300');
      const outcome = await runIncident({
        server,
        credentials: monitor,
        remediation: { protectUsers: ['app'], pressure: { utilizationPct: 95, idleAfterSeconds: 1 } },
        settings: { maxDurationSeconds: 25 * 60 },
        trigger: { findings: ['pool_pressure'], severity: 'critical' },
      });
      expect(kinds(outcome.pages)).toEqual(['page', 'final']);
      expect(lines(outcome.pages[0])[1]).toMatch(/^Cause: pool: \d+ of \d+ usable slots in use \(100%/);
    } finally {
      await flood.release();
    }
  });

  it('resolves an incident for a busy pool once terminating finds nothing, without a page', async () => {
    // 14 slots, 3 for superusers, 3 reserved: 8 usable; 6 in use is 75 %, busy (over 70 %) but two slots free.
    const idle = await openIdleSessions(app, 6);
    try {
      const outcome = await runIncident({
        server,
        credentials: monitor,
        thresholds: { utilizationPct: 70 },
        trigger: { kind: 'alarm', summary: 'pgwarden-local-db-utilization-high is in ALARM' },
      });
      expect(outcome.output.status).toBe('resolved');
      expect(outcome.pages).toEqual([]);
      expect(outcome.notifications[1]?.subject).toMatch(/worth a look: pool$/);
      expect(outcome.output.actions).toEqual([
        expect.objectContaining({ kind: 'terminate_idle', ok: true, count: 0 }),
      ]);
    } finally {
      await idle.release();
    }
  });

  it('names a crash-restart as the cause, whether the failed probes or the crash-restart opened the incident', async () => {
    const crashAt = await crash();
    const outage = await runIncident({
      server,
      credentials: monitor,
      trigger: {
        summary: '3 consecutive probes failed: starting_up (the server is starting up or recovering)',
        category: 'starting_up',
        observedAt: crashAt,
        severity: 'critical',
      },
    });
    const restart = await runIncident({
      server,
      credentials: monitor,
      trigger: {
        summary: 'the server crash-restarted 1s ago',
        findings: ['crash_restart'],
        observedAt: crashAt,
        severity: 'warning',
      },
    });
    for (const outcome of [outage, restart]) {
      expect(outcome.output.status).toBe('resolved');
      expect(outcome.pages).toEqual([]);
      const resolved = outcome.notifications.find((m) => m.attributes['pgwarden.kind'] === 'resolved');
      expect(resolved?.subject).toContain(`: crash-restart at ${crashAt.slice(11, 19)}; healthy again`);
      expect(resolved?.message).toContain(`Cause: crash-restart at ${crashAt.slice(11, 19)}`);
    }
  });

  it('keeps an incident for recurring crash-restarts open and pages once', async () => {
    const first = await crash();
    const second = await crash(first);
    const outcome = await runIncident({
      server,
      credentials: monitor,
      settings: { maxDurationSeconds: 25 * 60 },
      trigger: {
        summary: 'the server crash-restarted again, 2 times in 15m',
        findings: ['crash_restart'],
        observedAt: second,
        severity: 'critical',
        crashRestarts: [first, second],
      },
    });
    expect(kinds(outcome.pages)).toEqual(['page', 'final']);
    expect(lines(outcome.pages[0])[1]).toBe(
      `Cause: crash-restarts ×2 (${first.slice(11, 19)}, ${second.slice(11, 19)}): the server keeps crashing, every session reset each time`,
    );
    const steps = outcome.output.steps as Array<{ node: string; result: string; detail: string }>;
    expect(steps[0]).toMatchObject({ node: 'running', result: 'fault' });
    expect(steps[0]?.detail).toContain('it keeps crashing');
  });
});
