import { describe, expect, it } from 'vitest';
import { type RunbookDeps, runRunbook } from '../../../functions/runbook/runbook.ts';
import { silentLogger } from '../../../shared/logger.ts';
import type { IncidentRecord } from '../../../shared/runbook/record.ts';
import { ManualClock } from '../../helpers/clock.ts';
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
  return runRunbook({ action: 'record', state }, deps(clock));
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
    return runRunbook({ action: 'node', node: 'pool', state }, deps(new ManualClock('2026-11-26T10:00:10Z')));
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

describe('runbook cycle observations', () => {
  async function runningNode(
    trigger: Record<string, unknown>,
    probe: Record<string, unknown>,
    incident = record(false),
  ) {
    const { snapshot } = await import('./fixtures.ts');
    const state = {
      incidentId: incident.incidentId,
      target: target(),
      trigger: { kind: 'probe', summary: 'test', observedAt: '2026-11-26T10:00:00Z', ...trigger },
      settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
      incident,
      probe: snapshot(probe),
    };
    return runRunbook(
      { action: 'node', node: 'running', state },
      deps(new ManualClock('2026-11-26T10:01:00Z')),
    );
  }

  it('names an outage a crash-restart when the background processes restarted under the same server', async () => {
    // Within a second of the server's own start, the snapshot cannot call it a crash-restart by itself.
    const started = '2026-11-26T09:59:59.000Z';
    const out = await runningNode(
      {
        category: 'starting_up',
        startedBefore: { serverStartedAt: started, backgroundStartedAt: started },
      },
      {
        serverStartedAt: started,
        backgroundStartedAt: '2026-11-26T09:59:59.600Z',
        crashRestartAt: null,
      },
    );
    expect(out.crashRestarts).toEqual(['2026-11-26T09:59:59.600Z']);
    expect(out.found).toContain(
      'crash-restart: the server crash-restarted at 2026-11-26T09:59:59.600Z: its background processes restarted and every session was reset',
    );
  });

  it('counts for an incident opened by a threshold only the crash-restarts after it opened', async () => {
    const before = await runningNode(
      { findings: ['blocked_sessions'] },
      { crashRestartAt: '2026-11-26T09:55:00.000Z', backgroundStartedAt: '2026-11-26T09:55:00.000Z' },
    );
    expect(before.crashRestarts).toBeUndefined();
    const during = await runningNode(
      { findings: ['blocked_sessions'] },
      { crashRestartAt: '2026-11-26T10:00:30.000Z', backgroundStartedAt: '2026-11-26T10:00:30.000Z' },
    );
    expect(during.crashRestarts).toEqual(['2026-11-26T10:00:30.000Z']);
  });

  it('dates lock waits on servers before PostgreSQL 14 from when the monitor first saw them', async () => {
    const key = '7@2026-11-26T09:58:00Z<42';
    const trigger = {
      kind: 'probe',
      summary: 'a lock chain',
      observedAt: '2026-11-26T09:59:50Z',
      findings: ['blocked_sessions'],
      lockWaitsSeen: { [key]: '2026-11-26T09:58:50.000Z' },
    };
    const opened = await runRunbook(
      {
        action: 'open',
        state: {
          incidentId: 'pgw-orders-20261126-1',
          target: target(),
          trigger,
          settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
        },
      },
      deps(new ManualClock('2026-11-26T10:00:00Z')),
    );
    expect(opened.lockWaits).toEqual({ [key]: '2026-11-26T09:58:50.000Z' });
    const out = await runningNode(
      trigger,
      {
        serverVersionNum: 130016,
        blockedSessions: 1,
        blockingPids: [42],
        longestLockWaitSeconds: null,
        lockWaits: [
          { pid: 7, blockedBy: [42], waitingSeconds: null, statementStartedAt: '2026-11-26T09:58:00Z' },
        ],
      },
      opened,
    );
    expect(out.lockWaitSeconds).toBe(70);
    expect(out.lockWaits).toEqual({ [key]: '2026-11-26T09:58:50.000Z' });
  });
});

describe('runbook escalation clock', () => {
  async function evaluate(severity: 'critical' | 'warning') {
    const incident: IncidentRecord = {
      ...record(false),
      decision: 'unresolved',
      steps: [
        {
          node: 'queries',
          result: 'fault',
          detail: 'something',
          at: '2026-11-26T10:20:00.000Z',
          severity,
        },
      ],
    };
    const state = {
      incidentId: incident.incidentId,
      target: target(),
      trigger: { kind: 'probe', summary: 'test', observedAt: '2026-11-26T10:00:00Z' },
      settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
      incident,
    };
    return runRunbook({ action: 'evaluate', state }, deps(new ManualClock('2026-11-26T10:21:00Z')));
  }

  it('pages past the escalation time only while something critical is wrong', async () => {
    expect((await evaluate('critical')).decision).toBe('page');
    const warned = await evaluate('warning');
    expect(warned.decision).toBe('wait');
    expect(warned.waitSeconds).toBe(60);
  });
});

describe('runbook remediation record', () => {
  it('marks a remedy that acted on nothing as fruitless, and clears it once a pass acts', async () => {
    const empty = await recordWith(false);
    expect(empty.fruitless).toEqual(['remediate_pool']);
  });
});

describe('runbook payloads from before thresholds.lockWait', () => {
  it('judges lock waits by the default 60 s when the incident was opened without the setting', async () => {
    const { snapshot } = await import('./fixtures.ts');
    const { lockWaitSeconds: _, ...older } = target().thresholds;
    const state = {
      incidentId: 'pgw-orders-20261126-1',
      target: { ...target(), thresholds: older },
      trigger: { kind: 'probe', summary: 'blocked', observedAt: '2026-11-26T10:00:00Z' },
      settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
      incident: record(false),
    };
    const judge = (wait: number) =>
      runRunbook(
        {
          action: 'node',
          node: 'queries',
          state: {
            ...state,
            probe: snapshot({ blockedSessions: 1, blockingPids: [42], longestLockWaitSeconds: wait }),
          },
        },
        deps(new ManualClock('2026-11-26T10:01:00Z')),
      );
    expect((await judge(59)).decision).toBe('healthy');
    expect((await judge(61)).decision).toBe('remediate_blockers');
  });
});
