import { DescribeExecutionCommand, ListExecutionsCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalStepFunctions } from '../../cli/local/step-functions.ts';
import {
  continuationName,
  incidentIdOf,
  isIncidentOf,
  openIncident,
  partOf,
} from '../../shared/incidents.ts';
import { silentLogger } from '../../shared/logger.ts';
import type { Trigger } from '../../shared/runbook/types.ts';
import { DEFAULT_RUNBOOK_SETTINGS } from '../../shared/runbook/types.ts';
import type { Target } from '../../shared/target.ts';
import { ManualClock } from '../helpers/clock.ts';
import { testTarget } from '../helpers/targets.ts';

const HOLD = 'arn:aws:lambda:eu-west-1:123456789012:function:hold';

/** A workflow that stays RUNNING until the test lets it finish. */
function harness() {
  const releases: Array<() => void> = [];
  const clock = new ManualClock('2026-11-26T10:00:00Z');
  const sfn = new LocalStepFunctions({
    definition: { StartAt: 'Hold', States: { Hold: { Type: 'Task', Resource: HOLD, End: true } } },
    functions: { [HOLD]: () => new Promise((resolve) => releases.push(() => resolve({}))) },
    clock,
  });
  const deps = { sfn, stateMachineArn: sfn.stateMachineArn, clock, logger: silentLogger };
  const finishAll = async () => {
    for (const release of releases.splice(0)) release();
    await Promise.all([...sfn.executions.values()].map((e) => e.done));
  };
  return { sfn, deps, clock, finishAll };
}

const target: Target = testTarget('orders-prod');

const trigger = (kind: Trigger['kind'], observedAt: string): Trigger => ({
  kind,
  summary: `${kind} saw trouble`,
  observedAt,
});

describe('openIncident', () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
  });

  it('opens one incident for many concurrent triggers of the same outage', async () => {
    const h = harness();
    cleanup = h.finishAll;
    const kinds: Trigger['kind'][] = [
      'probe',
      'probe',
      'rds-event',
      'alarm',
      'probe',
      'rds-event',
      'alarm',
      'probe',
    ];
    const outcomes = await Promise.all(
      kinds.map((kind) =>
        openIncident(h.deps, target, trigger(kind, '2026-11-26T09:59:50Z'), DEFAULT_RUNBOOK_SETTINGS),
      ),
    );
    expect(h.sfn.executions.size).toBe(1);
    expect(outcomes.filter((o) => o.outcome === 'opened')).toHaveLength(1);
    expect(outcomes.filter((o) => o.outcome === 'joined')).toHaveLength(kinds.length - 1);
    expect(new Set(outcomes.map((o) => o.incidentId))).toEqual(new Set(['pgw-orders-prod-20261126-1']));
  });

  it('passes the target, trigger and settings to the workflow', async () => {
    const h = harness();
    cleanup = h.finishAll;
    const outcome = await openIncident(
      h.deps,
      target,
      trigger('alarm', '2026-11-26T09:59:00Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    const input = JSON.parse(h.sfn.executions.get(outcome.incidentId)?.input ?? '{}');
    expect(input).toEqual({
      incidentId: outcome.incidentId,
      requestId: expect.any(String),
      target,
      trigger: trigger('alarm', '2026-11-26T09:59:00Z'),
      settings: DEFAULT_RUNBOOK_SETTINGS,
    });
  });

  it('opens a new incident, with the next name, for an outage after the last one ended', async () => {
    const h = harness();
    cleanup = h.finishAll;
    await openIncident(h.deps, target, trigger('probe', '2026-11-26T09:59:00Z'), DEFAULT_RUNBOOK_SETTINGS);
    await h.finishAll();
    h.clock.advance(600_000);
    const second = await openIncident(
      h.deps,
      target,
      trigger('probe', '2026-11-26T10:09:00Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    expect(second).toMatchObject({ outcome: 'opened', incidentId: 'pgw-orders-prod-20261126-2' });
  });

  it('ignores a late trigger observed before the last incident ended', async () => {
    const h = harness();
    cleanup = h.finishAll;
    await openIncident(h.deps, target, trigger('probe', '2026-11-26T09:59:00Z'), DEFAULT_RUNBOOK_SETTINGS);
    h.clock.advance(120_000);
    await h.finishAll();
    const late = await openIncident(
      h.deps,
      target,
      trigger('rds-event', '2026-11-26T10:00:30Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    expect(late.outcome).toBe('stale');
    expect(h.sfn.executions.size).toBe(1);
  });

  it('keeps targets apart', async () => {
    const h = harness();
    cleanup = h.finishAll;
    const a = await openIncident(
      h.deps,
      target,
      trigger('probe', '2026-11-26T09:59:00Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    const b = await openIncident(
      h.deps,
      { ...target, id: 'billing' },
      trigger('probe', '2026-11-26T09:59:00Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    expect(a.outcome).toBe('opened');
    expect(b.outcome).toBe('opened');
    expect(b.incidentId).toBe('pgw-billing-20261126-1');
  });
});

/**
 * Step Functions as ListExecutions may show it just after a hand-over: eventually consistent, it lists
 * what `listed` holds; DescribeExecution and StartExecution see everything in `actual`.
 */
function laggingSfn(
  listed: Array<{ name: string; status: string; startDate: Date; stopDate?: Date }>,
  actual: Array<{ name: string; status: string; startDate: Date; stopDate?: Date }> = listed,
) {
  const arn = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgwarden-runbook';
  const arnOf = (name: string) => `${arn.replace(':stateMachine:', ':execution:')}:${name}`;
  const started: string[] = [];
  const sfn = {
    async send(command: unknown): Promise<unknown> {
      if (command instanceof ListExecutionsCommand)
        return {
          executions: listed
            .filter((e) => !command.input.statusFilter || e.status === command.input.statusFilter)
            .map((e) => ({ ...e, executionArn: arnOf(e.name) })),
        };
      if (command instanceof DescribeExecutionCommand) {
        const e = actual.find((x) => arnOf(x.name) === command.input.executionArn);
        if (!e) throw Object.assign(new Error('Execution Does Not Exist'), { name: 'ExecutionDoesNotExist' });
        return { ...e, executionArn: arnOf(e.name) };
      }
      if (command instanceof StartExecutionCommand) {
        const name = command.input.name as string;
        if (actual.some((e) => e.name === name))
          throw Object.assign(new Error('exists'), { name: 'ExecutionAlreadyExists' });
        started.push(name);
        return { executionArn: arnOf(name), startDate: new Date() };
      }
      throw new Error('unexpected command');
    },
  };
  const clock = new ManualClock('2026-11-26T12:00:00Z');
  return { deps: { sfn: sfn as never, stateMachineArn: arn, clock, logger: silentLogger }, started };
}

describe('openIncident with an incident carried by several executions', () => {
  const at = (iso: string) => new Date(iso);

  it('names parts after the incident, and reads the incident back from any part', () => {
    expect(continuationName('pgw-orders-prod-20261126-1', 1)).toBe('pgw-orders-prod-20261126-1');
    expect(continuationName('pgw-orders-prod-20261126-1', 7)).toBe('pgw-orders-prod-20261126-1-part7');
    expect(incidentIdOf('pgw-orders-prod-20261126-1-part7')).toBe('pgw-orders-prod-20261126-1');
    expect(partOf('pgw-orders-prod-20261126-1-part7')).toBe(7);
    expect(partOf('pgw-orders-prod-20261126-1')).toBe(1);
    expect(isIncidentOf('pgw-orders-prod-20261126-1-part7', 'orders-prod')).toBe(true);
    expect(isIncidentOf('pgw-orders-prod-1795962256657-part2', 'orders-prod')).toBe(true);
  });

  it('fits the longest name in the 80 characters Step Functions allows', () => {
    const id = 'a'.repeat(40);
    // The timestamp name a target falls back to, in its millionth part.
    expect(continuationName(`pgw-${id}-${Date.parse('2286-01-01')}`, 1_000_000).length).toBeLessThanOrEqual(
      80,
    );
  });

  it('joins the running part of an incident, as that incident', async () => {
    const { deps, started } = laggingSfn([
      { name: 'pgw-orders-prod-20261126-1-part3', status: 'RUNNING', startDate: at('2026-11-26T11:50:00Z') },
      {
        name: 'pgw-orders-prod-20261126-1-part2',
        status: 'SUCCEEDED',
        startDate: at('2026-11-26T11:00:00Z'),
        stopDate: at('2026-11-26T11:50:00Z'),
      },
    ]);
    const outcome = await openIncident(
      deps,
      target,
      trigger('probe', '2026-11-26T11:59:00Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    expect(outcome).toMatchObject({ outcome: 'joined', incidentId: 'pgw-orders-prod-20261126-1' });
    expect(started).toEqual([]);
  });

  it('joins the part a hand-over just started even when ListExecutions does not show it yet', async () => {
    const handedOver = {
      name: 'pgw-orders-prod-20261126-1-part2',
      status: 'SUCCEEDED',
      startDate: at('2026-11-26T11:00:00Z'),
      stopDate: at('2026-11-26T11:59:59Z'),
    };
    const successor = {
      name: 'pgw-orders-prod-20261126-1-part3',
      status: 'RUNNING',
      startDate: at('2026-11-26T11:59:59Z'),
    };
    const { deps, started } = laggingSfn([handedOver], [handedOver, successor]);
    // Observed after the listed part ended: only the successor says the incident is still open.
    const outcome = await openIncident(
      deps,
      target,
      trigger('probe', '2026-11-26T12:00:00Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    expect(outcome).toMatchObject({ outcome: 'joined', incidentId: 'pgw-orders-prod-20261126-1' });
    expect(started).toEqual([]);
  });

  it('judges a late trigger against the end of the incident, its last part', async () => {
    const { deps, started } = laggingSfn([
      {
        name: 'pgw-orders-prod-20261126-1-part2',
        status: 'SUCCEEDED',
        startDate: at('2026-11-26T11:00:00Z'),
        stopDate: at('2026-11-26T11:30:00Z'),
      },
      {
        name: 'pgw-orders-prod-20261126-1',
        status: 'SUCCEEDED',
        startDate: at('2026-11-26T10:00:00Z'),
        stopDate: at('2026-11-26T11:00:00Z'),
      },
    ]);
    const late = await openIncident(
      deps,
      target,
      trigger('rds-event', '2026-11-26T11:10:00Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    expect(late).toMatchObject({ outcome: 'stale', incidentId: 'pgw-orders-prod-20261126-1' });
    expect(started).toEqual([]);
  });

  it("numbers the day's incidents, not their executions", async () => {
    const { deps, started } = laggingSfn([
      {
        name: 'pgw-orders-prod-20261126-1-part3',
        status: 'SUCCEEDED',
        startDate: at('2026-11-26T11:00:00Z'),
        stopDate: at('2026-11-26T11:30:00Z'),
      },
      {
        name: 'pgw-orders-prod-20261126-1-part2',
        status: 'SUCCEEDED',
        startDate: at('2026-11-26T10:30:00Z'),
        stopDate: at('2026-11-26T11:00:00Z'),
      },
      {
        name: 'pgw-orders-prod-20261126-1',
        status: 'SUCCEEDED',
        startDate: at('2026-11-26T10:00:00Z'),
        stopDate: at('2026-11-26T10:30:00Z'),
      },
    ]);
    const outcome = await openIncident(
      deps,
      target,
      trigger('probe', '2026-11-26T11:59:00Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    expect(outcome).toMatchObject({ outcome: 'opened', incidentId: 'pgw-orders-prod-20261126-2' });
    expect(started).toEqual(['pgw-orders-prod-20261126-2']);
  });

  it("never joins another target's incident whose id starts the same", async () => {
    const { deps, started } = laggingSfn([
      { name: 'pgw-orders-prod-eu-20261126-1', status: 'RUNNING', startDate: at('2026-11-26T11:50:00Z') },
    ]);
    const outcome = await openIncident(
      deps,
      target,
      trigger('probe', '2026-11-26T11:59:00Z'),
      DEFAULT_RUNBOOK_SETTINGS,
    );
    expect(outcome).toMatchObject({ outcome: 'opened', incidentId: 'pgw-orders-prod-20261126-1' });
    expect(started).toEqual(['pgw-orders-prod-20261126-1']);
  });
});
