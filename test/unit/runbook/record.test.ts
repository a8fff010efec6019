import { describe, expect, it } from 'vitest';
import type { IncidentRecord } from '../../../functions/runbook/incident.ts';
import { handleRunbook, type RunbookDeps } from '../../../functions/runbook/runbook.ts';
import { ManualClock } from '../../../shared/clock.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { target } from './fixtures.ts';

const refuse = { send: async () => Promise.reject(new Error('no AWS call expected')) };
const deps = (clock: ManualClock): RunbookDeps => ({
  catalog: { targets: [target()], defaults: {} },
  sfn: refuse,
  rds: refuse,
  cloudwatch: refuse,
  topics: {
    pages: 'arn:aws:sns:eu-west-1:123456789012:p',
    notifications: 'arn:aws:sns:eu-west-1:123456789012:n',
  },
  clock,
  logger: silentLogger,
});

function record(pressure: boolean): IncidentRecord {
  return {
    incidentId: 'pgw-orders-20261126-1',
    targetId: 'orders',
    status: 'open',
    openedAt: '2026-11-26T10:00:00.000Z',
    escalateAt: '2026-11-26T10:20:00.000Z',
    endAt: '2026-11-26T14:00:00.000Z',
    cycle: 1,
    steps: [],
    found: [],
    actions: [],
    timeline: [],
    decision: 'remediate_pool',
    pressure: pressure
      ? { active: true, reason: 'the server refused connections with 53300' }
      : { active: false },
    waitSeconds: 0,
    paged: false,
  };
}

const nothingDone = {
  ok: true,
  targetId: 'orders',
  dryRun: false,
  terminated: [],
  canceled: [],
  skipped: [],
  skipCounts: {},
  skippedOmitted: 0,
  startedAt: '2026-11-26T10:00:05.000Z',
  durationMs: 12,
  pressure: { active: true },
  utilizationPct: 100,
  thresholds: {},
  remediatorPid: 1,
};

async function recordWith(pressure: boolean) {
  const clock = new ManualClock('2026-11-26T10:00:05Z');
  const state = {
    incidentId: 'pgw-orders-20261126-1',
    target: target(),
    trigger: { kind: 'probe', summary: 'pool exhausted', observedAt: '2026-11-26T10:00:00Z' },
    settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
    incident: record(pressure),
    remediation: nothingDone,
  };
  return handleRunbook({ action: 'record', state }, deps(clock));
}

describe('runbook record action', () => {
  it('looks again within 10 s while the pool is exhausted, even when nothing could be terminated yet', async () => {
    const out = await recordWith(true);
    expect(out.waitSeconds).toBe(10);
    expect(out.actions[0]?.summary).toContain('found no session the policy allows terminating');
  });

  it('waits the normal recheck interval when nothing was done and there is no pressure', async () => {
    expect((await recordWith(false)).waitSeconds).toBe(60);
  });
});

describe('runbook pool node across cycles', () => {
  const connections = (total: number) => ({
    total,
    active: 0,
    idle: total,
    idleInTransaction: 0,
    waiting: 0,
    max: 30,
    reserved: 6,
    usable: 24,
    utilizationPct: Math.round((total / 24) * 1_000) / 10,
  });

  async function poolNode(incident: IncidentRecord, total: number) {
    const { snapshot } = await import('./fixtures.ts');
    const state = {
      incidentId: incident.incidentId,
      target: target(),
      trigger: { kind: 'probe', summary: 'pool exhausted', observedAt: '2026-11-26T10:00:00Z' },
      settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
      incident,
      probe: snapshot({ connections: connections(total) }),
    };
    return handleRunbook(
      { action: 'node', node: 'pool', state },
      deps(new ManualClock('2026-11-26T10:00:10Z')),
    );
  }

  it('engages the escalated policy on exhaustion, keeps it while above the alert threshold, and drops it once healthy', async () => {
    const exhausted = await poolNode(record(false), 24);
    expect(exhausted.pressure.active).toBe(true);
    expect(exhausted.pressureEngagedAt).toBe('2026-11-26T10:00:10.000Z');

    const halfway = await poolNode(exhausted, 21);
    expect(halfway).toMatchObject({ decision: 'remediate_pool', pressure: { active: true } });

    const healthy = await poolNode(halfway, 4);
    expect(healthy.decision).toBe('continue');
    expect(healthy.pressureEngagedAt).toBeUndefined();
  });
});
