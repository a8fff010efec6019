import type { FailureCategory } from '../../../shared/classify.ts';
import type { HealthSnapshot, ProbeFailure } from '../../../shared/probe/snapshot.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Target } from '../../../shared/target.ts';

export const target = (overrides: Partial<Target> = {}): Target => ({
  id: 'orders',
  connection: {
    host: 'orders.abc.eu-west-1.rds.amazonaws.com',
    port: 5432,
    database: 'orders',
    user: 'mon',
    auth: { kind: 'iam', region: 'eu-west-1' },
    tls: { mode: 'verify-full' },
  },
  rds: { instanceId: 'orders', region: 'eu-west-1' },
  thresholds: DEFAULT_THRESHOLDS,
  remediation: DEFAULT_REMEDIATION,
  ...overrides,
});

export function snapshot(overrides: Partial<HealthSnapshot> = {}): HealthSnapshot {
  return {
    ok: true,
    target: 'orders',
    checkedAt: '2026-11-26T10:00:00.000Z',
    latencyMs: { connect: 4, query: 1 },
    serverVersion: '17.10',
    serverVersionNum: 170010,
    serverStartedAt: '2026-11-01T00:00:00.000Z',
    backgroundStartedAt: '2026-11-01T00:00:00.000Z',
    crashRestartAt: null,
    inRecovery: false,
    replicationLagSeconds: null,
    connections: {
      total: 20,
      active: 5,
      idle: 15,
      idleInTransaction: 0,
      waiting: 0,
      max: 100,
      reserved: 3,
      usable: 97,
      utilizationPct: 20.6,
    },
    longestIdleSeconds: 30,
    longestIdleInTransactionSeconds: 0,
    longRunningQueries: 0,
    longQueryThresholdSeconds: 300,
    longestQuerySeconds: 0.2,
    longestQueryPid: null,
    blockedSessions: 0,
    blockingPids: [],
    longestLockWaitSeconds: 0,
    lockWaits: [],
    oldestTransactionAgeSeconds: 0,
    wraparoundAge: 10_000,
    wraparoundPct: 0,
    ...overrides,
  };
}

export function failure(category: FailureCategory, sqlstate?: string): ProbeFailure {
  return {
    ok: false,
    target: 'orders',
    checkedAt: '2026-11-26T10:00:00.000Z',
    latencyMs: { connect: 2, query: null },
    failure: {
      category,
      ...(sqlstate ? { sqlstate } : {}),
      message: `${category} happened`,
      retryable: true,
      phase: 'connect',
    },
  };
}
