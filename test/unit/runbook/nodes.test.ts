import { describe, expect, it } from 'vitest';
import { evaluateNode } from '../../../functions/runbook/nodes.ts';
import { DEFAULT_REMEDIATION } from '../../../shared/target.ts';
import { failure, snapshot, target } from './fixtures.ts';

const base = { target: target(), probe: snapshot(), startRequested: false };

describe('runbook nodes', () => {
  describe('running', () => {
    it.each([
      ['available', 'ok', 'continue'],
      ['backing-up', 'ok', 'continue'],
      ['rebooting', 'waiting', 'wait'],
      ['failing-over', 'waiting', 'wait'],
      ['storage-full', 'fault', 'unresolved'],
      ['incompatible-parameters', 'fault', 'unresolved'],
      ['stopped', 'fault', 'unresolved'],
    ])('judges RDS status %s as %s, then %s', (status, result, decision) => {
      const outcome = evaluateNode('running', {
        ...base,
        instance: { id: 'orders', kind: 'instance', status },
      });
      expect([outcome.result, outcome.decision]).toEqual([result, decision]);
    });

    it('starts a stopped instance only when the target opted in, and only once', () => {
      const optedIn = target({ remediation: { ...DEFAULT_REMEDIATION, allowStartInstance: true } });
      const stopped = { id: 'orders', kind: 'instance' as const, status: 'stopped' };
      expect(evaluateNode('running', { ...base, target: optedIn, instance: stopped }).decision).toBe(
        'start_instance',
      );
      expect(
        evaluateNode('running', { ...base, target: optedIn, instance: stopped, startRequested: true })
          .decision,
      ).toBe('wait');
    });

    it('keeps waiting while crash-restarts recur, until the server stays up for 15 minutes', () => {
      const available = { id: 'orders', kind: 'instance' as const, status: 'available' };
      const crashes = ['2026-11-26T09:55:00.000Z', '2026-11-26T09:58:00.000Z'];
      const recurring = evaluateNode('running', { ...base, instance: available, crashRestarts: crashes });
      expect(recurring).toMatchObject({ result: 'fault', decision: 'wait' });
      expect(recurring.detail).toContain('crash-restarted 2 times (09:55:00, 09:58:00): it keeps crashing');
      const once = evaluateNode('running', { ...base, instance: available, crashRestarts: crashes.slice(1) });
      const apart = evaluateNode('running', {
        ...base,
        instance: available,
        crashRestarts: ['2026-11-26T07:00:00.000Z', crashes[1] as string],
      });
      expect(apart).toMatchObject({ result: 'ok', decision: 'continue' });
      expect(once).toMatchObject({ result: 'ok', decision: 'continue' });
      const quiet = evaluateNode('running', {
        ...base,
        probe: snapshot({ checkedAt: '2026-11-26T10:13:00.000Z' }),
        instance: available,
        crashRestarts: crashes,
      });
      expect(quiet).toMatchObject({ result: 'ok', decision: 'continue' });
    });

    it('without RDS, reads a refused loopback connection as a server that is not running', () => {
      const local = target({ rds: undefined, connection: { ...target().connection, host: '127.0.0.1' } });
      const outcome = evaluateNode('running', { ...base, target: local, probe: failure('unreachable') });
      expect(outcome).toMatchObject({ result: 'fault', decision: 'wait' });
      expect(outcome.detail).toContain('PostgreSQL is not running');
      expect(evaluateNode('running', { ...base, target: local }).result).toBe('skipped');
    });
  });

  it('accepting_connections waits through start-up, shutdown and dropped connections', () => {
    for (const category of ['starting_up', 'shutting_down', 'connection_lost'] as const) {
      expect(evaluateNode('accepting_connections', { ...base, probe: failure(category) }).decision).toBe(
        'wait',
      );
    }
    expect(evaluateNode('accepting_connections', { ...base, probe: failure('timeout') }).result).toBe(
      'skipped',
    );
    expect(evaluateNode('accepting_connections', { ...base, probe: failure('auth_failed') }).result).toBe(
      'ok',
    );
  });

  it.each(['unreachable', 'timeout', 'dns', 'tls'] as const)(
    'network names the %s failure and cannot fix it',
    (category) => {
      const outcome = evaluateNode('network', { ...base, probe: failure(category) });
      expect(outcome).toMatchObject({ result: 'fault', decision: 'unresolved' });
      expect(outcome.detail).toContain(category);
    },
  );

  it('pool asks for remediation under the escalated policy on 53300 and at high utilization', () => {
    const refused = evaluateNode('pool', { ...base, probe: failure('too_many_connections', '53300') });
    expect(refused).toMatchObject({ decision: 'remediate_pool', pressure: { active: true } });
    const crowded = snapshot({
      connections: { ...snapshot().connections, total: 93, idle: 90, utilizationPct: 95.9 },
    });
    expect(evaluateNode('pool', { ...base, probe: crowded })).toMatchObject({
      decision: 'remediate_pool',
      pressure: { active: true, reason: 'utilization 95.9% ≥ 95%' },
    });
    const busy = snapshot({ connections: { ...snapshot().connections, total: 80, utilizationPct: 82.5 } });
    expect(evaluateNode('pool', { ...base, probe: busy })).toMatchObject({
      decision: 'remediate_pool',
      pressure: { active: false },
    });
    expect(evaluateNode('pool', base).decision).toBe('continue');
  });

  it('keeps the escalated policy after an exhaustion until the pool is back under the alert threshold', () => {
    const halfway = snapshot({
      connections: { ...snapshot().connections, total: 21, idle: 21, usable: 24, utilizationPct: 87.5 },
    });
    expect(evaluateNode('pool', { ...base, probe: halfway }).pressure).toEqual({ active: false });
    const engaged = evaluateNode('pool', { ...base, probe: halfway, pressureEngaged: true });
    expect(engaged).toMatchObject({ decision: 'remediate_pool', pressure: { active: true } });
    expect(engaged.pressure?.reason).toContain(
      'the pool was exhausted in this incident and is still at 87.5%',
    );
    expect(evaluateNode('pool', { ...base, pressureEngaged: true })).toMatchObject({
      result: 'ok',
      decision: 'continue',
    });
  });

  it('treats a busy pool as a warning and stops working on it once a pass found nothing to terminate', () => {
    const busy = snapshot({ connections: { ...snapshot().connections, total: 85, utilizationPct: 87.6 } });
    expect(evaluateNode('pool', { ...base, probe: busy })).toMatchObject({
      decision: 'remediate_pool',
      severity: 'warning',
    });
    expect(evaluateNode('pool', { ...base, probe: busy, fruitless: ['remediate_pool'] })).toMatchObject({
      result: 'fault',
      severity: 'warning',
      decision: 'continue',
    });
    const full = snapshot({ connections: { ...snapshot().connections, total: 97, utilizationPct: 100 } });
    const exhausted = evaluateNode('pool', { ...base, probe: full, fruitless: ['remediate_pool'] });
    expect(exhausted).toMatchObject({ decision: 'remediate_pool', pressure: { active: true } });
    expect(exhausted.severity).toBeUndefined();
  });

  it.each([
    ['auth_failed', '28P01', 'rotated secret'],
    ['permission_denied', '42501', 'pg_monitor'],
    ['database_missing', '3D000', 'does not exist'],
  ] as const)('auth explains %s', (category, sqlstate, hint) => {
    const outcome = evaluateNode('auth', { ...base, probe: failure(category, sqlstate) });
    expect(outcome).toMatchObject({ result: 'fault', decision: 'unresolved' });
    expect(outcome.detail).toContain(hint);
  });

  describe('queries', () => {
    it('terminates the head of a lock chain whose wait passed the threshold, when allowed', () => {
      const probe = snapshot({ blockedSessions: 3, blockingPids: [42], longestLockWaitSeconds: 75 });
      expect(evaluateNode('queries', { ...base, probe })).toMatchObject({
        decision: 'remediate_blockers',
        result: 'fault',
      });
      expect(evaluateNode('queries', { ...base, probe }).severity).toBeUndefined();
      const off = target({ remediation: { ...DEFAULT_REMEDIATION, terminateBlockers: false } });
      expect(evaluateNode('queries', { ...base, target: off, probe }).decision).toBe('unresolved');
    });

    it('leaves lock waits under the threshold alone: ordinary contention', () => {
      const probe = snapshot({ blockedSessions: 6, blockingPids: [42], longestLockWaitSeconds: 0.4 });
      const outcome = evaluateNode('queries', { ...base, probe });
      expect(outcome).toMatchObject({ result: 'ok', decision: 'healthy' });
      expect(outcome.detail).toContain(
        '6 session(s) waiting on locks, the longest for 400ms: under the 1m threshold',
      );
    });

    it('judges lock waits the runbook dated itself when the server cannot (before PostgreSQL 14)', () => {
      const probe = snapshot({ blockedSessions: 1, blockingPids: [42], longestLockWaitSeconds: null });
      expect(evaluateNode('queries', { ...base, probe }).decision).toBe('healthy');
      expect(evaluateNode('queries', { ...base, probe, lockWaitSeconds: 61 }).decision).toBe(
        'remediate_blockers',
      );
    });

    it('cancels long queries only when canceling is on and the query is old enough', () => {
      const probe = snapshot({ longRunningQueries: 1, longestQuerySeconds: 900, longestQueryPid: 7 });
      expect(evaluateNode('queries', { ...base, probe }).decision).toBe('unresolved');
      const on = (after: number) =>
        target({ remediation: { ...DEFAULT_REMEDIATION, cancelQueriesAfterSeconds: after } });
      expect(evaluateNode('queries', { ...base, target: on(600), probe }).decision).toBe('cancel_queries');
      expect(evaluateNode('queries', { ...base, target: on(1_200), probe }).decision).toBe('wait');
    });

    it('terminates a long idle transaction past the remediation threshold, as a warning', () => {
      const old = snapshot({ longestIdleInTransactionSeconds: 700 });
      expect(evaluateNode('queries', { ...base, probe: old })).toMatchObject({
        decision: 'remediate_idle_in_transaction',
        severity: 'warning',
      });
      expect(
        evaluateNode('queries', { ...base, probe: snapshot({ longestIdleInTransactionSeconds: 400 }) }),
      ).toMatchObject({ decision: 'wait', severity: 'warning' });
    });

    it('once terminating found nothing allowed, leaves a warning for people and lets the incident end', () => {
      const outcome = evaluateNode('queries', {
        ...base,
        probe: snapshot({ longestIdleInTransactionSeconds: 700 }),
        fruitless: ['remediate_idle_in_transaction'],
      });
      expect(outcome).toMatchObject({ result: 'fault', severity: 'warning', decision: 'healthy' });
      expect(outcome.detail).toContain('the policy allows terminating none');
    });

    it('calls transaction-id age a warning, and critical from 90 % of the limit', () => {
      const aging = evaluateNode('queries', {
        ...base,
        probe: snapshot({ wraparoundAge: 1_200_000_000, wraparoundPct: 55.9 }),
      });
      expect(aging).toMatchObject({ result: 'fault', severity: 'warning', decision: 'healthy' });
      const danger = evaluateNode('queries', {
        ...base,
        probe: snapshot({ wraparoundAge: 1_950_000_000, wraparoundPct: 90.8 }),
      });
      expect(danger).toMatchObject({ result: 'fault', decision: 'unresolved' });
      expect(danger.severity).toBeUndefined();
    });

    it('escalates an unexplained failure', () => {
      expect(evaluateNode('queries', { ...base, probe: failure('unknown') }).detail).toContain('escalate');
    });

    it('declares health when nothing hangs', () => {
      expect(evaluateNode('queries', base)).toMatchObject({ result: 'ok', decision: 'healthy' });
    });
  });
});
