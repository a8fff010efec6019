import { describe, expect, it } from 'vitest';
import { newTrackerState, observe } from '../../../functions/monitor/tracker.ts';
import type { HealthSnapshot, ProbeFailure } from '../../../shared/probe/probe.ts';
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

  it('needs repeated threshold breaches before a degraded verdict', () => {
    const state = newTrackerState();
    const crowded = (s: number) =>
      healthy(s, { connections: { ...healthy(0).connections, total: 90, idle: 88, utilizationPct: 92.8 } });
    expect(observe(state, crowded(0), thresholds).status).toBe('suspect');
    const verdict = observe(state, crowded(1), thresholds);
    expect(verdict.status).toBe('unhealthy');
    expect(verdict.trigger?.findings).toEqual(['pool_pressure']);
    expect(verdict.trigger?.observedAt).toBe(at(0));
  });

  it('reports a crash-restart at once, and only once', () => {
    const state = newTrackerState();
    expect(observe(state, healthy(0), thresholds).status).toBe('healthy');
    const crashed = healthy(10, { crashRestartAt: at(5), backgroundStartedAt: at(5) });
    const verdict = observe(state, crashed, thresholds);
    expect(verdict.status).toBe('unhealthy');
    expect(verdict.restarts).toBe(1);
    expect(verdict.trigger).toMatchObject({ findings: ['crash_restart'], observedAt: at(5) });
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
