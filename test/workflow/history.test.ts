/**
 * A long incident, run in the local engine from the deployed definition: Step Functions would fail an
 * execution at 25,000 history events, so the runbook continues the incident in new executions. Counts
 * the history events of each execution from the states it entered and the retries it ran.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalExecution } from '../../cli/local/step-functions.ts';
import { LOCAL_STATE_MACHINE } from '../../cli/local/workflow.ts';
import { type OpenOutcome, openIncident } from '../../shared/incidents.ts';
import { silentLogger } from '../../shared/logger.ts';
import { HISTORY_BUDGET, RUNBOOK_HISTORY, stateEvents } from '../../shared/runbook/history.ts';
import type { IncidentRecord } from '../../shared/runbook/record.ts';
import { ManualClock } from '../helpers/clock.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';
import { testTarget } from '../helpers/targets.ts';
import { deployedDefinition, runIncident } from './harness.ts';

type States = Record<string, { Type: string; Retry?: Array<{ MaxAttempts?: number }> }>;

/** History events of one local execution: what it entered, what it retried, its start and end. */
function historyEvents(execution: LocalExecution): number {
  const states = deployedDefinition().States as States;
  const entered = execution.history.reduce(
    (n, h) => n + stateEvents(states[h.state] as States[string], { retries: false }),
    0,
  );
  return 2 + entered + 3 * execution.retries.length;
}

/** Verification cycles an execution walked: each starts at CheckRunning. */
const cycles = (execution: LocalExecution) =>
  execution.history.filter((h) => h.state === 'CheckRunning').length;

describe('a long incident', () => {
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

  it('re-checking every second for 7 minutes, goes on in new executions each under 80 % of the history limit, with one incident and one page', async () => {
    const outcome = await runIncident({
      server,
      credentials: { username: monitor.username, password: 'rotated-away' },
      settings: { escalateAfterSeconds: 2 * 60, recheckSeconds: 1, maxDurationSeconds: 7 * 60 },
    });
    const { executions } = outcome;
    // About 420 cycles: in one execution, more than 80 % of the history limit (49 events a cycle).
    const totalCycles = executions.reduce((n, e) => n + cycles(e), 0);
    expect(totalCycles).toBeGreaterThan(HISTORY_BUDGET / 49);
    expect(executions.length).toBeGreaterThanOrEqual(
      Math.floor(totalCycles / (RUNBOOK_HISTORY.cyclesPerExecution + 1)),
    );
    for (const execution of executions) {
      expect(historyEvents(execution), execution.name).toBeLessThan(HISTORY_BUDGET);
      expect(cycles(execution), execution.name).toBeLessThanOrEqual(RUNBOOK_HISTORY.cyclesPerExecution + 1);
      expect(execution.status, execution.name).toBe('SUCCEEDED');
    }
    expect(executions.map((e) => e.name).slice(0, 3)).toEqual([
      'pgw-local-db-test-1',
      'pgw-local-db-test-1-part2',
      'pgw-local-db-test-1-part3',
    ]);

    // One incident: one opening notice, one page at 2 minutes, one final notice at the maximum.
    const kinds = outcome.published.map((m) => m.attributes['pgwarden.kind']);
    expect(kinds).toEqual(['opened', 'page', 'final']);
    expect(outcome.minuteOf(outcome.pages[0] as (typeof outcome.pages)[number])).toBe(2);
    expect(new Set(outcome.published.map((m) => m.attributes['pgwarden.incident']))).toEqual(
      new Set(['pgw-local-db-test-1']),
    );

    // The record travels: the last execution reports the whole incident.
    const first = executions[0]?.output as IncidentRecord;
    const last = outcome.output as unknown as IncidentRecord;
    expect(first.continuedAs).toBe('pgw-local-db-test-1-part2');
    expect(last).toMatchObject({
      incidentId: 'pgw-local-db-test-1',
      status: 'unresolved',
      openedAt: first.openedAt,
      escalateAt: first.escalateAt,
      paged: true,
      part: executions.length,
    });
    expect(last.cycle).toBe(totalCycles);
    expect(last.timeline[0]?.text).toBe('opened by probe: test trigger');
    expect(last.timeline.map((t) => t.text)).toContain('paged on-call');
    expect(Date.parse(last.endedAt as string) - Date.parse(last.openedAt)).toBe(7 * 60_000);
  }, 180_000);

  it('keeps one incident while it changes executions: a trigger at the hand-over joins it', async () => {
    const joins: OpenOutcome[] = [];
    let sfn: Parameters<typeof openIncident>[0]['sfn'] | undefined;
    const trigger = async () => {
      if (!sfn) return;
      const clock = new ManualClock(Date.now() + 3_600_000);
      joins.push(
        await openIncident(
          { sfn, stateMachineArn: LOCAL_STATE_MACHINE, clock, logger: silentLogger },
          testTarget('local-db'),
          { kind: 'probe', summary: 'still down', observedAt: new Date(clock.now()).toISOString() },
          { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
        ),
      );
    };
    const outcome = await runIncident({
      server,
      credentials: { username: monitor.username, password: 'rotated-away' },
      settings: { escalateAfterSeconds: 20 * 60, recheckSeconds: 10, maxDurationSeconds: 30 * 60 },
      incidentId: 'pgw-local-db-20260101-1',
      onWorkflow: (workflow) => {
        sfn = workflow.sfn;
      },
      wrap: (fn, call) => async (payload) => {
        const action = (payload as { action?: string }).action;
        const resumed = action === 'open' && (payload as { state: { incident?: unknown } }).state.incident;
        const result = await call(payload);
        // Both executions run: the one handing over has started its successor and not yet ended.
        if (fn === 'runbook' && action === 'continue') await trigger();
        // The successor has taken over, whether or not the last one has ended yet.
        if (fn === 'runbook' && resumed) await trigger();
        return result;
      },
    });
    expect(outcome.executions.length).toBeGreaterThan(1);
    expect(joins.length).toBe(2 * (outcome.executions.length - 1));
    expect(joins.every((j) => j.outcome === 'joined' && j.incidentId === 'pgw-local-db-20260101-1')).toBe(
      true,
    );
    expect(outcome.published.filter((m) => m.attributes['pgwarden.kind'] === 'opened')).toHaveLength(1);
  });
});
