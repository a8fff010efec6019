import { describe, expect, it } from 'vitest';
import { newTrackerState, observe } from '../../../functions/monitor/tracker.ts';
import type { HealthSnapshot, ProbeFailure } from '../../../shared/probe/snapshot.ts';
import { DEFAULT_THRESHOLDS } from '../../../shared/target.ts';

const T0 = Date.parse('2026-11-26T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1_000).toISOString();

function healthy(s: number, overrides: Partial<HealthSnapshot> = {}): HealthSnapshot {
  return {
    ok: true,
    target: 't',
    checkedAt: at(s),
    latencyMs: { connect: 3, query: 1 },
    serverVersion: '17.10',
    serverVersionNum: 170010,
    serverStartedAt: at(-86_400),
    backgroundStartedAt: at(-86_400),
    crashRestartAt: null,
    inRecovery: false,
    replicationLagSeconds: null,
    connections: {
      total: 10,
      active: 2,
      idle: 8,
      idleInTransaction: 0,
      waiting: 0,
      max: 100,
      reserved: 3,
      usable: 97,
      utilizationPct: 10.3,
    },
    longestIdleSeconds: 10,
    longestIdleInTransactionSeconds: 0,
    longRunningQueries: 0,
    longQueryThresholdSeconds: 300,
    longestQuerySeconds: 0,
    longestQueryPid: null,
    blockedSessions: 0,
    blockingPids: [],
    longestLockWaitSeconds: 0,
    lockWaits: [],
    oldestTransactionAgeSeconds: 0,
    wraparoundAge: 1_000,
    wraparoundPct: 0,
    ...overrides,
  };
}

function failed(s: number, category: ProbeFailure['failure']['category'] = 'unreachable'): ProbeFailure {
  return {
    ok: false,
    target: 't',
    checkedAt: at(s),
    latencyMs: { connect: 1, query: null },
    failure: { category, message: 'connect ECONNREFUSED', retryable: true, phase: 'connect' },
  };
}

const thresholds = DEFAULT_THRESHOLDS;

describe('tracker', () => {
  it('treats one failed probe as suspect, not an outage', () => {
    const state = newTrackerState();
    expect(observe(state, failed(0), thresholds).status).toBe('suspect');
    expect(observe(state, healthy(1), thresholds).status).toBe('healthy');
    expect(state.failures).toBe(0);
  });

  it('declares an outage after the configured consecutive failures, dated from the first', () => {
    const state = newTrackerState();
    observe(state, failed(0), thresholds);
    observe(state, failed(1), thresholds);
    const verdict = observe(state, failed(2, 'unreachable'), thresholds);
    expect(verdict.status).toBe('unhealthy');
    expect(verdict.trigger).toMatchObject({ kind: 'probe', category: 'unreachable', observedAt: at(0) });
    expect(verdict.trigger?.summary).toContain('3 consecutive probes failed: unreachable');
  });

  it('needs repeated threshold breaches before an exhausted pool opens a critical incident', () => {
    const state = newTrackerState();
    const full = (s: number) =>
      healthy(s, { connections: { ...healthy(0).connections, total: 97, idle: 95, utilizationPct: 100 } });
    expect(observe(state, full(0), thresholds).status).toBe('suspect');
    const verdict = observe(state, full(1), thresholds);
    expect(verdict.status).toBe('unhealthy');
    expect(verdict.trigger).toMatchObject({
      findings: ['pool_pressure'],
      severity: 'critical',
      observedAt: at(0),
    });
  });

  it('keeps a busy pool with slots to spare a warning that opens no incident', () => {
    const state = newTrackerState();
    const crowded = (s: number) =>
      healthy(s, { connections: { ...healthy(0).connections, total: 90, idle: 88, utilizationPct: 92.8 } });
    for (const s of [0, 1, 2, 3]) {
      const verdict = observe(state, crowded(s), thresholds);
      expect(verdict.status).toBe('degraded');
      expect(verdict.findings).toEqual([
        expect.objectContaining({ code: 'pool_pressure', condition: 'pool_busy', severity: 'warning' }),
      ]);
      expect(verdict.trigger).toBeUndefined();
    }
  });

  it('opens no incident for lock waits shorter than the threshold, however many sessions wait', () => {
    const state = newTrackerState();
    for (const s of [0, 1, 2, 3, 4]) {
      const busy = healthy(s, { blockedSessions: 7, blockingPids: [4242], longestLockWaitSeconds: 0.3 });
      expect(observe(state, busy, thresholds).status).toBe('healthy');
    }
  });

  it('opens a critical incident for a lock wait past the threshold, confirmed once', () => {
    const state = newTrackerState();
    const stuck = (s: number, wait: number) =>
      healthy(s, { blockedSessions: 2, blockingPids: [42], longestLockWaitSeconds: wait });
    expect(observe(state, stuck(0, 59.5), thresholds).status).toBe('healthy');
    expect(observe(state, stuck(1, 60.5), thresholds).status).toBe('suspect');
    const verdict = observe(state, stuck(2, 61.5), thresholds);
    expect(verdict.status).toBe('unhealthy');
    expect(verdict.trigger).toMatchObject({
      findings: ['blocked_sessions'],
      severity: 'critical',
      observedAt: at(1),
    });
    expect(verdict.trigger?.summary).toContain('the longest for 1m2s (threshold 1m)');
    expect(verdict.trigger?.lockWaitsSeen).toBeUndefined();
  });

  it('opens a warning incident for a long idle transaction', () => {
    const state = newTrackerState();
    const idle = (s: number) => healthy(s, { longestIdleInTransactionSeconds: 400 });
    observe(state, idle(0), thresholds);
    expect(observe(state, idle(1), thresholds).trigger).toMatchObject({
      findings: ['idle_in_transaction'],
      severity: 'warning',
    });
  });

  it('dates a trigger from when its newest condition began, so a lock chain after an idle transaction is not stale', () => {
    const state = newTrackerState();
    const idle = { longestIdleInTransactionSeconds: 400 };
    observe(state, healthy(0, idle), thresholds);
    expect(observe(state, healthy(1, idle), thresholds).trigger?.observedAt).toBe(at(0));
    const chain = { ...idle, blockedSessions: 1, blockingPids: [42], longestLockWaitSeconds: 90 };
    observe(state, healthy(600, chain), thresholds);
    const verdict = observe(state, healthy(601, chain), thresholds);
    expect(verdict.trigger).toMatchObject({ severity: 'critical', observedAt: at(600) });
    expect(verdict.trigger?.findings).toEqual(['blocked_sessions', 'idle_in_transaction']);
  });

  it('reports warnings that open no incident, such as transaction-id age, as degraded', () => {
    const state = newTrackerState();
    const old = healthy(0, { wraparoundAge: 1_100_000_000, wraparoundPct: 51.2 });
    expect(observe(state, old, thresholds)).toMatchObject({
      status: 'degraded',
      findings: [expect.objectContaining({ condition: 'wraparound', severity: 'warning' })],
    });
    const danger = healthy(1, { wraparoundAge: 1_950_000_000, wraparoundPct: 90.8 });
    observe(state, danger, thresholds);
    expect(observe(state, { ...danger, checkedAt: at(2) }, thresholds).trigger).toMatchObject({
      findings: ['wraparound'],
      severity: 'critical',
    });
  });

  it('reports a crash-restart at once, and only once', () => {
    const state = newTrackerState();
    expect(observe(state, healthy(0), thresholds).status).toBe('healthy');
    const crashed = healthy(10, { crashRestartAt: at(5), backgroundStartedAt: at(5) });
    const verdict = observe(state, crashed, thresholds);
    expect(verdict.status).toBe('unhealthy');
    expect(verdict.restarts).toBe(1);
    expect(verdict.trigger).toMatchObject({
      findings: ['crash_restart'],
      observedAt: at(5),
      severity: 'warning',
      crashRestarts: [at(5)],
    });
    const again = observe(
      state,
      healthy(20, { crashRestartAt: at(5), backgroundStartedAt: at(5) }),
      thresholds,
    );
    expect(again.status).toBe('healthy');
    expect(again.restarts).toBe(0);
  });

  it('on first sight reports only a recent crash', () => {
    const old = newTrackerState();
    expect(observe(old, healthy(0, { crashRestartAt: at(-3_600) }), thresholds).status).toBe('healthy');
    const fresh = newTrackerState();
    expect(observe(fresh, healthy(0, { crashRestartAt: at(-30) }), thresholds).status).toBe('unhealthy');
  });

  it('counts a postmaster restart (failover, reboot) as a restart without opening an incident by itself', () => {
    const state = newTrackerState();
    observe(state, healthy(0), thresholds);
    const verdict = observe(state, healthy(10, { serverStartedAt: at(5) }), thresholds);
    expect(verdict).toMatchObject({ status: 'healthy', restarts: 1 });
  });
});

describe('tracker restart detection', () => {
  it('reports a crash-restart from the background processes even right after the server started', () => {
    const state = newTrackerState();
    const started = { serverStartedAt: at(-1), backgroundStartedAt: at(-1) };
    expect(observe(state, healthy(0, started), thresholds).status).toBe('healthy');
    const verdict = observe(state, healthy(2, { ...started, backgroundStartedAt: at(1) }), thresholds);
    expect(verdict).toMatchObject({
      status: 'unhealthy',
      restarts: 1,
      trigger: { findings: ['crash_restart'], observedAt: at(1) },
    });
  });
});

describe('tracker after an outage', () => {
  it('still reports the crash-restart when the probes failed through the recovery', () => {
    const state = newTrackerState();
    const started = { serverStartedAt: at(-3_600), backgroundStartedAt: at(-3_600) };
    observe(state, healthy(0, started), thresholds);
    for (const s of [1, 2, 3]) observe(state, failed(s, 'starting_up'), thresholds);
    const verdict = observe(
      state,
      healthy(4, { ...started, backgroundStartedAt: at(1), crashRestartAt: at(1) }),
      thresholds,
    );
    expect(verdict).toMatchObject({
      status: 'unhealthy',
      restarts: 1,
      trigger: { findings: ['crash_restart'] },
    });
  });
});

describe('tracker across crash-restarts', () => {
  it('makes a second crash-restart within 15 minutes critical, and forgets crashes older than that', () => {
    const state = newTrackerState();
    observe(state, healthy(0), thresholds);
    const first = observe(
      state,
      healthy(10, { crashRestartAt: at(5), backgroundStartedAt: at(5) }),
      thresholds,
    );
    expect(first.trigger?.severity).toBe('warning');
    const second = observe(
      state,
      healthy(310, { crashRestartAt: at(300), backgroundStartedAt: at(300) }),
      thresholds,
    );
    expect(second).toMatchObject({
      status: 'unhealthy',
      findings: [expect.objectContaining({ condition: 'crash_recurring', severity: 'critical' })],
      trigger: { severity: 'critical', crashRestarts: [at(5), at(300)] },
    });
    expect(second.trigger?.summary).toContain('2 times in 15m');
    const muchLater = observe(
      state,
      healthy(2_000, { crashRestartAt: at(1_990), backgroundStartedAt: at(1_990) }),
      thresholds,
    );
    expect(muchLater.trigger).toMatchObject({ severity: 'warning', crashRestarts: [at(1_990)] });
  });
});

describe('tracker on servers before PostgreSQL 14', () => {
  const old = (s: number, pid: number, statementStartedAt: string, blocker = 42) =>
    healthy(s, {
      serverVersion: '13.16',
      serverVersionNum: 130016,
      blockedSessions: 1,
      blockingPids: [blocker],
      longestLockWaitSeconds: null,
      lockWaits: [{ pid, blockedBy: [blocker], waitingSeconds: null, statementStartedAt }],
    });

  it('dates a lock wait from the first probe that saw the same statement blocked by the same session', () => {
    const state = newTrackerState();
    expect(observe(state, old(0, 7, at(-1)), thresholds).status).toBe('healthy');
    expect(observe(state, old(30, 7, at(-1)), thresholds).status).toBe('healthy');
    expect(observe(state, old(60, 7, at(-1)), thresholds).status).toBe('suspect');
    const verdict = observe(state, old(61, 7, at(-1)), thresholds);
    expect(verdict.status).toBe('unhealthy');
    expect(verdict.trigger?.summary).toContain('the longest for 1m1s');
    // The runbook dates the wait as the monitor did.
    expect(Object.values(verdict.trigger?.lockWaitsSeen ?? {})).toEqual([at(0)]);
  });

  it('counts a new statement, or a wait behind another session, as a new wait', () => {
    const state = newTrackerState();
    observe(state, old(0, 7, at(-1)), thresholds);
    // Each probe sees pid 7 blocked again, but never by the same wait: busy, not stuck.
    for (const [s, statement, blocker] of [
      [30, at(29), 42],
      [60, at(59), 42],
      [90, at(59), 43],
      [120, at(119), 43],
    ] as const) {
      expect(observe(state, old(s, 7, statement, blocker), thresholds).status).toBe('healthy');
    }
  });
});
