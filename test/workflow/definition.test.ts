import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { LOCAL_FUNCTIONS, substitute } from '../../cli/local/workflow.ts';
import {
  NOT_PUBLISHED,
  RUNBOOK_NODES,
  RUNBOOK_PLACEHOLDERS,
  runbookDefinition,
  SNS_PUBLISH,
} from '../../shared/runbook/definition.ts';
import { deployedDefinition } from './harness.ts';

type States = Record<string, Record<string, unknown>>;

function successors(state: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (typeof state.Next === 'string') out.push(state.Next);
  if (typeof state.Default === 'string') out.push(state.Default);
  for (const choice of (state.Choices as Array<{ Next: string }>) ?? []) out.push(choice.Next);
  for (const c of (state.Catch as Array<{ Next: string }>) ?? []) out.push(c.Next);
  return out;
}

describe('runbook definition', () => {
  const definition = runbookDefinition();
  const states = definition.States as States;

  it('is valid Amazon States Language once the function ARNs are substituted', () => {
    const result = aslValidator(substitute(definition, LOCAL_FUNCTIONS) as never);
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it('reaches every state from the start, and every path ends', () => {
    const seen = new Set<string>();
    const queue = [definition.StartAt as string];
    while (queue.length > 0) {
      const name = queue.shift() as string;
      if (seen.has(name)) continue;
      seen.add(name);
      const state = states[name];
      expect(state, `state ${name} is referenced but not defined`).toBeDefined();
      queue.push(...successors(state as Record<string, unknown>));
    }
    expect([...seen].sort()).toEqual(Object.keys(states).sort());
    const terminal = Object.entries(states).filter(
      ([, s]) => s.Type === 'Succeed' || s.Type === 'Fail' || s.End === true,
    );
    expect(terminal.map(([n]) => n).sort()).toEqual([
      'IncidentContinued',
      'IncidentResolved',
      'IncidentUnresolved',
      'RunbookCrashed',
    ]);
  });

  it('has one recorded state per node of the decision tree, in the runbook order', () => {
    const nodeStates = Object.entries(states)
      .filter(([, s]) => (s.Parameters as { action?: string } | undefined)?.action === 'node')
      .map(([, s]) => (s.Parameters as { node: string }).node);
    expect(nodeStates).toEqual([...RUNBOOK_NODES]);
  });

  it('retries every function task with backoff and catches every failure', () => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type !== 'Task' || state.Resource === SNS_PUBLISH) continue;
      const retry = state.Retry as Array<{ ErrorEquals: string[]; BackoffRate: number; MaxAttempts: number }>;
      expect(retry?.[0]?.ErrorEquals, name).toContain('Lambda.TooManyRequestsException');
      expect(retry?.[0]?.BackoffRate, name).toBeGreaterThan(1);
      expect((state.Catch as Array<{ ErrorEquals: string[] }>)?.[0]?.ErrorEquals, name).toEqual([
        'States.ALL',
      ]);
    }
  });

  it('publishes every message from the state machine, retrying only what SNS refused', () => {
    const publishing = Object.entries(states).filter(([, s]) => s.Resource === SNS_PUBLISH);
    expect(publishing.map(([name]) => name).sort()).toEqual([
      'PageOnCall',
      'PublishAnnouncement',
      'PublishFailure',
      'PublishFinalNotice',
      'PublishOpened',
      'PublishResolution',
      'PublishResolutionToOnCall',
    ]);
    for (const [name, state] of publishing) {
      const retry = state.Retry as Array<{ ErrorEquals: string[]; BackoffRate: number }>;
      expect(retry.flatMap((r) => r.ErrorEquals).sort(), name).toEqual([...NOT_PUBLISHED].sort());
      expect(retry[0]?.BackoffRate, name).toBeGreaterThan(1);
      expect((state.Catch as Array<{ ErrorEquals: string[] }>)?.[0]?.ErrorEquals, name).toEqual([
        'States.ALL',
      ]);
    }
  });

  it('names functions only through the substitution placeholders', () => {
    const resources = new Set(
      Object.values(states)
        .filter((s) => s.Type === 'Task' && s.Resource !== SNS_PUBLISH)
        .map((s) => s.Resource),
    );
    expect([...resources].sort()).toEqual(
      Object.values(RUNBOOK_PLACEHOLDERS)
        .map((p) => `\${${p}}`)
        .sort(),
    );
  });

  it('is exactly what CDK deploys: local mode runs the same document', () => {
    expect(deployedDefinition()).toEqual(substitute(definition, LOCAL_FUNCTIONS));
  });

  it('never reads the execution start time: the runbook keeps its own clock', () => {
    expect(JSON.stringify(definition)).not.toContain('StartTime');
  });
});
