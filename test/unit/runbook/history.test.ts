import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type RunbookDeps, runRunbook } from '../../../functions/runbook/runbook.ts';
import { continuationName } from '../../../shared/incidents.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { runbookDefinition } from '../../../shared/runbook/definition.ts';
import {
  HISTORY_BUDGET,
  HISTORY_EVENT_LIMIT,
  historyBudget,
  RUNBOOK_HISTORY,
  stateEvents,
} from '../../../shared/runbook/history.ts';
import type { IncidentRecord } from '../../../shared/runbook/record.ts';
import { RUNBOOK_CLOCK } from '../../../shared/runbook/settings.ts';
import { ManualClock } from '../../helpers/clock.ts';
import { target } from './fixtures.ts';

type States = Record<string, { Type: string; Retry?: Array<{ MaxAttempts?: number }> }>;
const states = runbookDefinition().States as States;

/**
 * Events per state as the Step Functions API reference lists them (HistoryEvent types), written out
 * here independently of the budget code: TaskStateEntered, LambdaFunctionScheduled, ...Started,
 * ...Succeeded, TaskStateExited; ChoiceStateEntered/Exited; WaitStateEntered/Exited.
 */
const DOCUMENTED: Record<string, number> = { Task: 5, Choice: 2, Wait: 2, Pass: 2, Succeed: 2, Fail: 1 };
const walk = (path: string[]) =>
  path.reduce((n, name) => {
    const state = states[name];
    if (!state) throw new Error(`no state ${name}`);
    return n + (DOCUMENTED[state.Type] as number);
  }, 0);

describe('history budget of a runbook execution', () => {
  it('counts the events of each state as the Step Functions history records them', () => {
    for (const state of Object.values(states)) {
      expect(stateEvents(state, { retries: false })).toBe(DOCUMENTED[state.Type]);
      if (state.Type !== 'Task') continue;
      // Every failed attempt adds Scheduled, Started and Failed (or TimedOut).
      const attempts = (state.Retry ?? []).reduce((n, r) => n + (r.MaxAttempts ?? 3), 0);
      expect(stateEvents(state, { retries: true })).toBe(5 + 3 * attempts);
    }
  });

  it('finds the 47-event cycle of an exhausted pool re-checked every 10 s within its worst cycle', () => {
    const pressure = walk([
      'ProbeDatabase',
      'CheckRunning',
      'AfterRunning',
      'CheckAcceptingConnections',
      'AfterAcceptingConnections',
      'CheckNetwork',
      'AfterNetwork',
      'CheckPool',
      'AfterPool',
      'RemediatePool',
      'RecordRemediation',
      'AfterEvaluation',
      'WaitToRecheck',
    ]);
    expect(pressure).toBe(47);
    expect(RUNBOOK_HISTORY.cycle).toBeGreaterThanOrEqual(pressure);
    expect(RUNBOOK_HISTORY.cycleWorst).toBeGreaterThan(RUNBOOK_HISTORY.cycle);
  });

  it('hands over after a number of cycles that keeps every execution under 80 % of the limit, retries and all', () => {
    expect(HISTORY_BUDGET).toBe(0.8 * HISTORY_EVENT_LIMIT);
    const { start, end, cycleWorst, cyclesPerExecution, worstExecution } = RUNBOOK_HISTORY;
    expect(worstExecution).toBe(2 + start + cyclesPerExecution * cycleWorst + end);
    expect(worstExecution).toBeLessThan(HISTORY_BUDGET);
    // One cycle more would not fit: the budget is used, not wasted.
    expect(worstExecution + cycleWorst).toBeGreaterThan(HISTORY_BUDGET);
    expect(cyclesPerExecution).toBeGreaterThanOrEqual(50);
  });

  it('carries an incident of the worst allowed clock (re-check 1 s for 7 days) in executions whose names fit', () => {
    // No cycle is shorter than its wait, and no wait shorter than the re-check interval or a second.
    const cycles = RUNBOOK_CLOCK.maxDuration.maxMs / Math.max(1_000, RUNBOOK_CLOCK.recheckEvery.minMs);
    const parts = Math.ceil(cycles / RUNBOOK_HISTORY.cyclesPerExecution);
    const longestId = `pgw-${'a'.repeat(40)}-${Date.parse('2286-01-01')}`;
    expect(continuationName(longestId, parts).length).toBeLessThanOrEqual(80);
  });

  it('is what the README says', () => {
    const readme = readFileSync(join(import.meta.dirname, '../../../README.md'), 'utf8').replace(/\s+/g, ' ');
    const { cyclesPerExecution, cycleWorst, worstExecution } = RUNBOOK_HISTORY;
    expect(readme).toContain(`runbook walks at most ${cyclesPerExecution} verification cycles per execution`);
    expect(readme).toContain(
      `(${cycleWorst} events a cycle, ${worstExecution.toLocaleString('en-US')} an execution at worst;`,
    );
  });

  it('refuses a definition whose loop does not go through the wait: its history could not be bounded', () => {
    const definition = structuredClone(runbookDefinition()) as {
      States: Record<string, { Default?: string }>;
    };
    (definition.States.AfterEvaluation as { Default: string }).Default = 'ProbeDatabase';
    expect(() => historyBudget(definition)).toThrow('loops through');
  });
});

describe('runbook clock and the hand-over', () => {
  const deps = (clock: ManualClock): RunbookDeps => {
    const refuse = { send: async () => Promise.reject(new Error('no AWS call expected')) };
    return {
      catalog: { targets: [target()], defaults: {} },
      sfn: refuse,
      rds: refuse,
      cloudwatch: refuse,
      topics: { pages: 'arn:pages', notifications: 'arn:notifications' },
      clock,
      logger: silentLogger,
    };
  };
  const record = (cycle: number, extra: Partial<IncidentRecord> = {}): IncidentRecord => ({
    incidentId: 'pgw-orders-20261126-1',
    targetId: 'orders',
    status: 'open',
    openedAt: '2026-11-26T10:00:00.000Z',
    escalateAt: '2026-11-26T10:20:00.000Z',
    endAt: '2026-11-26T14:00:00.000Z',
    cycle,
    steps: [],
    found: [],
    actions: [],
    timeline: [],
    decision: 'unresolved',
    pressure: { active: false },
    waitSeconds: 0,
    paged: true,
    ...extra,
  });
  const evaluate = (incident: IncidentRecord, at = '2026-11-26T11:00:00Z') =>
    runRunbook(
      {
        action: 'evaluate',
        state: {
          incidentId: 'pgw-orders-20261126-1',
          target: target(),
          trigger: { kind: 'probe', summary: 'down', observedAt: '2026-11-26T10:00:00Z' },
          settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
          incident,
        },
      },
      deps(new ManualClock(at)),
    );
  const max = RUNBOOK_HISTORY.cyclesPerExecution;

  it('waits until this execution has walked its share of cycles, then hands over with the wait it was due', async () => {
    expect((await evaluate(record(max - 1))).decision).toBe('wait');
    const out = await evaluate(record(max));
    expect(out.decision).toBe('continue_as_new');
    expect(out.waitSeconds).toBe(60);
    expect(out.wakeAt).toBe('2026-11-26T11:01:00.000Z');
  });

  it('counts only the cycles of this execution', async () => {
    expect((await evaluate(record(3 * max + 5, { part: 4, partStartCycle: 3 * max }))).decision).toBe('wait');
    expect((await evaluate(record(4 * max, { part: 4, partStartCycle: 3 * max }))).decision).toBe(
      'continue_as_new',
    );
  });

  it('pages before handing over, and ends at the maximum duration rather than hand over', async () => {
    // Only something critical pages (shared/health.ts): here, the database refusing the monitor.
    const critical = {
      paged: false,
      steps: [
        {
          node: 'auth' as const,
          result: 'fault' as const,
          detail: 'auth_failed',
          at: '2026-11-26T11:00:00.000Z',
        },
      ],
    };
    expect((await evaluate(record(max, critical))).decision).toBe('page');
    expect((await evaluate(record(max), '2026-11-26T14:00:00Z')).decision).toBe('final');
  });
});

describe('runbook hand-over to a new execution', () => {
  const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgwarden-runbook';
  const sent: Array<{ name?: string; input?: string; stateMachineArn?: string }> = [];
  const sfnAnswering = (answer: () => Promise<unknown>) => ({
    send: async (command: unknown) => {
      sent.push((command as { input: { name?: string; input?: string; stateMachineArn?: string } }).input);
      return answer();
    },
  });
  const deps = (sfn: RunbookDeps['sfn'], at = '2026-11-26T11:00:00Z'): RunbookDeps => {
    const refuse = { send: async () => Promise.reject(new Error('no AWS call expected')) };
    return {
      catalog: { targets: [target()], defaults: {} },
      sfn,
      rds: refuse,
      cloudwatch: refuse,
      topics: { pages: 'arn:pages', notifications: 'arn:notifications' },
      clock: new ManualClock(at),
      logger: silentLogger,
    };
  };
  const incident: IncidentRecord = {
    incidentId: 'pgw-orders-20261126-1',
    targetId: 'orders',
    status: 'open',
    openedAt: '2026-11-26T10:00:00.000Z',
    escalateAt: '2026-11-26T10:20:00.000Z',
    endAt: '2026-11-26T14:00:00.000Z',
    cycle: 150,
    part: 2,
    partStartCycle: 75,
    steps: [],
    found: ['auth: auth_failed'],
    actions: [],
    timeline: [{ at: '2026-11-26T10:00:00.000Z', text: 'opened by probe: down' }],
    decision: 'continue_as_new',
    pressure: { active: false },
    waitSeconds: 60,
    wakeAt: '2026-11-26T11:01:00.000Z',
    paged: true,
    pagedAt: '2026-11-26T10:20:00.000Z',
  };
  const state = {
    incidentId: 'pgw-orders-20261126-1',
    requestId: 'r-1',
    target: target(),
    trigger: { kind: 'probe', summary: 'down', observedAt: '2026-11-26T10:00:00Z' },
    settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
    incident,
  };
  const handOver = (sfn: RunbookDeps['sfn']) =>
    runRunbook({ action: 'continue', stateMachineArn: STATE_MACHINE, state }, deps(sfn));

  it('starts the next part with the incident record as it is, and says which', async () => {
    sent.length = 0;
    const out = await handOver(sfnAnswering(async () => ({ executionArn: 'x' })));
    expect(out.continuedAs).toBe('pgw-orders-20261126-1-part3');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ stateMachineArn: STATE_MACHINE, name: 'pgw-orders-20261126-1-part3' });
    const input = JSON.parse(sent[0]?.input ?? '{}');
    expect(input).toMatchObject({
      incidentId: 'pgw-orders-20261126-1',
      requestId: 'r-1',
      trigger: state.trigger,
      settings: state.settings,
      incident: { ...incident, part: 3, partStartCycle: 150 },
    });
    expect(input.target.id).toBe('orders');
  });

  it('sends the very same request when its task is retried, and takes "already exists" as done', async () => {
    sent.length = 0;
    await handOver(sfnAnswering(async () => ({ executionArn: 'x' })));
    const taken = await handOver(
      sfnAnswering(async () =>
        Promise.reject(
          Object.assign(new Error('Execution Already Exists'), { name: 'ExecutionAlreadyExists' }),
        ),
      ),
    );
    expect(sent[1]).toEqual(sent[0]);
    expect(taken.continuedAs).toBe('pgw-orders-20261126-1-part3');
  });

  it('fails the task, for its retry or the failure notice, when the next part cannot be started', async () => {
    const denied = Object.assign(new Error('not authorized to perform: states:StartExecution'), {
      name: 'AccessDeniedException',
    });
    await expect(handOver(sfnAnswering(async () => Promise.reject(denied)))).rejects.toThrow(
      'states:StartExecution',
    );
  });

  it('resumes in the new execution without a second opening notice, waiting what was left of the wait', async () => {
    const next = { ...incident, part: 3, partStartCycle: 150, decision: 'continue_as_new' as const };
    const out = await runRunbook(
      { action: 'open', state: { ...state, incident: next } },
      deps(
        sfnAnswering(async () => ({})),
        '2026-11-26T11:00:01.500Z',
      ),
    );
    expect(out.decision).toBe('resume');
    expect(out.waitSeconds).toBe(59);
    expect(out.outbox).toBeUndefined();
    expect(out).toMatchObject({ part: 3, cycle: 150, paged: true, openedAt: incident.openedAt });
  });

  it("refuses to resume another incident's record", async () => {
    await expect(
      runRunbook(
        { action: 'open', state: { ...state, incidentId: 'pgw-orders-20261126-2' } },
        deps(sfnAnswering(async () => ({}))),
      ),
    ).rejects.toThrow('state.incident.incidentId: is not the incident this execution carries');
  });
});
