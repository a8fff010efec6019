import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLockChain, exhaustSlots } from '../../cli/local/faults.ts';
import { openSession } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';
import { runIncident } from './harness.ts';

describe('incident runbook, executed locally from its definition', () => {
  let server: TestServer;
  let monitor: { username: string; password: string };

  beforeAll(async () => {
    server = await startTestServer({ maxConnections: 14, settings: { reserved_connections: 3 } });
    const role = await createMonitorRole(server);
    monitor = { username: role.user, password: role.password };
    await server.admin(`CREATE ROLE app LOGIN PASSWORD 'app-pw-123'`);
  });
  afterAll(async () => {
    await server?.destroy();
  });

  const app = () => ({
    spec: server.spec({ user: 'app', password: 'app-pw-123' }),
    credentials: { user: 'app', password: 'app-pw-123' },
  });

  it('frees a pool exhausted by idle sessions and resolves without a page', async () => {
    const flood = await exhaustSlots(app());
    try {
      expect(flood.refusedWith).toBe('53300');
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const outcome = await runIncident({
        server,
        credentials: monitor,
        remediation: { pressure: { utilizationPct: 95, idleAfterSeconds: 1 } },
        trigger: { summary: 'pool exhausted', findings: ['pool_pressure'] },
      });
      expect(outcome.execution.status).toBe('SUCCEEDED');
      expect(outcome.output.status).toBe('resolved');
      expect(outcome.pages).toEqual([]);
      expect(outcome.notifications.map((m) => m.attributes['pgwarden.kind'])).toEqual(['opened', 'resolved']);
      const actions = outcome.output.actions as Array<{ kind: string; count: number; summary: string }>;
      expect(actions[0]?.kind).toBe('terminate_idle');
      expect(actions[0]?.count).toBeGreaterThan(0);
      expect(actions[0]?.summary).toContain('escalated policy');
      // The application can connect again.
      const session = await openSession(app().spec, app().credentials, {
        connectTimeoutMs: 2_000,
        statementTimeoutMs: 2_000,
        applicationName: 'test:app',
        logger: silentLogger,
      });
      await session.close();
      const resolution = outcome.notifications[1]?.message ?? '';
      expect(resolution).toContain('What was done:');
      expect(resolution).toContain('Integrity after the incident:');
      expect(resolution).toMatch(/postgres: xid age [\d,]+ \([\d.]+% of wraparound\), size [\d.]+ MiB/);
    } finally {
      await flood.release();
    }
  });

  it('terminates the idle-in-transaction session at the head of a lock chain and resolves', async () => {
    const chain = await buildLockChain(app(), 2, 'workflow_chain');
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const outcome = await runIncident({
        server,
        credentials: monitor,
        remediation: { blockerIdleSeconds: 1 },
        thresholds: { lockWaitSeconds: 1 },
        trigger: { findings: ['blocked_sessions'] },
      });
      expect(outcome.output.status).toBe('resolved');
      expect(outcome.pages).toEqual([]);
      const actions = outcome.output.actions as Array<{ kind: string; count: number }>;
      expect(actions).toEqual([expect.objectContaining({ kind: 'terminate_blockers', count: 1 })]);
      const alive = await server.admin<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1',
        [chain.blockerPid],
      );
      expect(alive[0]?.n).toBe(0);
    } finally {
      await chain.release();
    }
  });

  it('pages exactly once, at 20 minutes, for a wrong password, and keeps verifying until the maximum', async () => {
    const outcome = await runIncident({
      server,
      credentials: { username: monitor.username, password: 'rotated-away' },
      settings: { maxDurationSeconds: 45 * 60 },
    });
    expect(outcome.execution.status).toBe('SUCCEEDED');
    expect(outcome.output.status).toBe('unresolved');
    const pages = outcome.pages.filter((m) => m.attributes['pgwarden.kind'] === 'page');
    expect(pages).toHaveLength(1);
    expect(outcome.minuteOf(pages[0] as (typeof pages)[number])).toBe(20);
    const page = pages[0]?.message ?? '';
    expect(page.split('\n')[0]).toMatch(/^Target: local-db \(.+\), critical: unhealthy for 20m/);
    expect(page).toMatch(/FAULT auth: auth_failed \(28P01\)/);
    expect(page).toContain('What was tried:');
    expect(page).toContain('What is still wrong:');
    expect(page).toContain(
      'Execution: arn:aws:states:local:000000000000:execution:pgwarden-runbook:pgw-local-db-test-1',
    );
    expect(page).not.toContain('rotated-away');
    expect(pages[0]?.subject.length).toBeLessThanOrEqual(100);
    expect(pages[0]?.document).toMatchObject({ kind: 'page', severity: 'critical', target: 'local-db' });
    // The final notice goes to the pages topic because on-call was paged.
    expect(outcome.pages.map((m) => m.attributes['pgwarden.kind'])).toEqual(['page', 'final']);
  });

  it('sends no page when the server comes back at minute 5', async () => {
    await server.stop();
    const outcome = await runIncident({
      server,
      credentials: monitor,
      at: [{ minute: 5, run: () => server.start() }],
    });
    expect(server.running).toBe(true);
    expect(outcome.output.status).toBe('resolved');
    expect(outcome.pages).toEqual([]);
    const resolved = outcome.notifications.find((m) => m.attributes['pgwarden.kind'] === 'resolved');
    expect(outcome.minuteOf(resolved as NonNullable<typeof resolved>)).toBeGreaterThanOrEqual(5);
    expect(outcome.minuteOf(resolved as NonNullable<typeof resolved>)).toBeLessThan(7);
    expect(resolved?.message).toContain('running: RDS instance local-db is stopped');
  });

  it('starts a stopped instance when the target opted in, and resolves without a page', async () => {
    await server.stop();
    const outcome = await runIncident({
      server,
      credentials: monitor,
      remediation: { allowStartInstance: true },
    });
    expect(server.running).toBe(true);
    expect(outcome.output.status).toBe('resolved');
    expect(outcome.pages).toEqual([]);
    expect(outcome.output.actions).toEqual([
      expect.objectContaining({ kind: 'start_instance', ok: true, summary: 'requested a start of local-db' }),
    ]);
  });

  it('pages once for an outage of 30 minutes, then sends the resolution to on-call too', async () => {
    await server.stop();
    const outcome = await runIncident({
      server,
      credentials: monitor,
      at: [{ minute: 30, run: () => server.start() }],
    });
    expect(outcome.output.status).toBe('resolved');
    const pages = outcome.pages.filter((m) => m.attributes['pgwarden.kind'] === 'page');
    expect(pages).toHaveLength(1);
    expect(outcome.minuteOf(pages[0] as (typeof pages)[number])).toBe(20);
    const resolutions = outcome.published.filter((m) => m.attributes['pgwarden.kind'] === 'resolved');
    expect(resolutions.map((m) => m.topic).sort()).toEqual(['pgwarden-notifications', 'pgwarden-pages']);
    expect(outcome.minuteOf(resolutions[0] as (typeof resolutions)[number])).toBeGreaterThanOrEqual(30);
  });
});

describe('incident runbook when its own tasks fail', () => {
  let server: TestServer;
  let monitor: { username: string; password: string };
  beforeAll(async () => {
    server = await startTestServer();
    const role = await createMonitorRole(server);
    monitor = { username: role.user, password: role.password };
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('retries a throttled probe invocation with backoff and carries on', async () => {
    let calls = 0;
    const outcome = await runIncident({
      server,
      credentials: monitor,
      wrap: (fn, call) => async (payload) => {
        if (fn === 'probe') calls += 1;
        if (fn === 'probe' && calls <= 2) {
          throw Object.assign(new Error('Rate Exceeded.'), { name: 'Lambda.TooManyRequestsException' });
        }
        return call(payload);
      },
    });
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(outcome.output.status).toBe('resolved');
    expect(outcome.pages).toEqual([]);
  });

  it('records a failed remediation and keeps the incident going', async () => {
    await server.admin(`CREATE ROLE app2 LOGIN PASSWORD 'app2-pw-12'`);
    const flood = await exhaustSlots({
      spec: server.spec({ user: 'app2', password: 'app2-pw-12' }),
      credentials: { user: 'app2', password: 'app2-pw-12' },
    });
    let released = false;
    try {
      const outcome = await runIncident({
        server,
        credentials: monitor,
        wrap: (fn, call) => async (payload) => {
          if (fn === 'remediate')
            throw Object.assign(new Error('Task timed out after 30.00 seconds'), {
              name: 'Sandbox.Timedout',
            });
          return call(payload);
        },
        at: [
          {
            minute: 3,
            run: async () => {
              await flood.release();
              released = true;
            },
          },
        ],
      });
      expect(released).toBe(true);
      expect(outcome.output.status).toBe('resolved');
      const actions = outcome.output.actions as Array<{ ok: boolean; summary: string }>;
      expect(actions.length).toBeGreaterThan(0);
      expect(actions[0]).toMatchObject({ ok: false });
      expect(actions[0]?.summary).toContain('Sandbox.Timedout');
    } finally {
      if (!released) await flood.release();
    }
  });

  it('pages that the runbook itself failed when a task keeps failing, and fails the execution', async () => {
    const outcome = await runIncident({
      server,
      credentials: monitor,
      wrap: (fn, call) => async (payload) => {
        if (fn === 'runbook' && (payload as { action: string }).action === 'resolve')
          throw new TypeError('boom');
        return call(payload);
      },
    });
    expect(outcome.execution.status).toBe('FAILED');
    expect(outcome.execution.error).toBe('RunbookFailed');
    expect(outcome.pages).toHaveLength(1);
    expect(outcome.pages[0]?.attributes['pgwarden.kind']).toBe('runbook_failed');
    expect(outcome.pages[0]?.message).toContain('Failure: TypeError: boom');
  });
});

describe('exactly one page per incident', () => {
  let server: TestServer;
  let monitor: { username: string; password: string };
  beforeAll(async () => {
    server = await startTestServer();
    const role = await createMonitorRole(server);
    monitor = { username: role.user, password: role.password };
  });
  afterAll(async () => {
    await server?.destroy();
  });

  /** An incident nothing can fix (a rotated password): it pages at 20 minutes. */
  const unfixable = (wrap: NonNullable<Parameters<typeof runIncident>[0]['wrap']>) =>
    runIncident({
      server,
      credentials: { username: monitor.username, password: 'rotated-away' },
      settings: { maxDurationSeconds: 30 * 60 },
      wrap,
    });
  const timedOut = () =>
    Object.assign(new Error('Task timed out after 60.00 seconds'), { name: 'Sandbox.Timedout' });

  it('pages once when the page task did its work and then timed out, and its retry ran', async () => {
    let attempts = 0;
    const outcome = await unfixable((fn, call) => async (payload) => {
      const result = await call(payload);
      if (fn === 'runbook' && (payload as { action: string }).action === 'page') {
        attempts += 1;
        if (attempts === 1) throw timedOut();
      }
      return result;
    });
    expect(attempts).toBe(2);
    expect(outcome.execution.status).toBe('SUCCEEDED');
    const pages = outcome.pages.filter((m) => m.attributes['pgwarden.kind'] === 'page');
    expect(pages).toHaveLength(1);
    expect(outcome.minuteOf(pages[0] as (typeof pages)[number])).toBe(20);
  });

  it('never publishes the page again when SNS took it and the call then failed; on-call is told the runbook stopped', async () => {
    let publishes = 0;
    const outcome = await unfixable((fn, call) => async (payload) => {
      const result = await call(payload);
      const kind = (payload as { MessageAttributes?: Record<string, { StringValue: string }> })
        .MessageAttributes?.['pgwarden.kind']?.StringValue;
      if (fn === 'sns' && kind === 'page') {
        publishes += 1;
        throw Object.assign(new Error('Connection reset after the request was sent'), {
          name: 'SNS.SdkClientException',
        });
      }
      return result;
    });
    expect(publishes).toBe(1);
    expect(outcome.pages.map((m) => m.attributes['pgwarden.kind'])).toEqual(['page', 'runbook_failed']);
    expect(outcome.pages[1]?.message).toContain('The page for this incident could not be confirmed as sent');
    expect(outcome.execution.status).toBe('FAILED');
  });

  it('pages that the runbook failed, instead of nothing, when composing the page keeps failing', async () => {
    const outcome = await unfixable((fn, call) => async (payload) => {
      if (fn === 'runbook' && (payload as { action: string }).action === 'page') throw timedOut();
      return call(payload);
    });
    expect(outcome.pages.map((m) => m.attributes['pgwarden.kind'])).toEqual(['runbook_failed']);
    expect(outcome.pages[0]?.message).toContain('Failure: Sandbox.Timedout');
  });
});
