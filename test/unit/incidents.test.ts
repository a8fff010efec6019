import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../shared/clock.ts';
import { openIncident } from '../../shared/incidents.ts';
import { LocalStepFunctions } from '../../shared/local/step-functions.ts';
import { silentLogger } from '../../shared/logger.ts';
import type { Trigger } from '../../shared/runbook/types.ts';
import { DEFAULT_RUNBOOK_SETTINGS } from '../../shared/runbook/types.ts';
import type { Target } from '../../shared/target.ts';
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
