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
    it('terminates the head of a lock chain when allowed', () => {
      const probe = snapshot({ blockedSessions: 3, blockingPids: [42] });
      expect(evaluateNode('queries', { ...base, probe }).decision).toBe('remediate_blockers');
      const off = target({ remediation: { ...DEFAULT_REMEDIATION, terminateBlockers: false } });
      expect(evaluateNode('queries', { ...base, target: off, probe }).decision).toBe('unresolved');
    });

    it('cancels long queries only when canceling is on and the query is old enough', () => {
      const probe = snapshot({ longRunningQueries: 1, longestQuerySeconds: 900, longestQueryPid: 7 });
      expect(evaluateNode('queries', { ...base, probe }).decision).toBe('unresolved');
      const on = (after: number) =>
        target({ remediation: { ...DEFAULT_REMEDIATION, cancelQueriesAfterSeconds: after } });
      expect(evaluateNode('queries', { ...base, target: on(600), probe }).decision).toBe('cancel_queries');
      expect(evaluateNode('queries', { ...base, target: on(1_200), probe }).decision).toBe('wait');
    });

    it('terminates a long idle transaction past the remediation threshold', () => {
      expect(
        evaluateNode('queries', { ...base, probe: snapshot({ longestIdleInTransactionSeconds: 700 }) })
          .decision,
      ).toBe('remediate_idle_in_transaction');
      expect(
        evaluateNode('queries', { ...base, probe: snapshot({ longestIdleInTransactionSeconds: 400 }) })
          .decision,
      ).toBe('wait');
    });

    it('escalates wraparound risk and an unexplained failure', () => {
      expect(
        evaluateNode('queries', {
          ...base,
          probe: snapshot({ wraparoundAge: 1_200_000_000, wraparoundPct: 55.9 }),
        }).decision,
      ).toBe('unresolved');
      expect(evaluateNode('queries', { ...base, probe: failure('unknown') }).detail).toContain('escalate');
    });

    it('declares health when nothing hangs', () => {
      expect(evaluateNode('queries', base)).toMatchObject({ result: 'ok', decision: 'healthy' });
    });
  });
});
