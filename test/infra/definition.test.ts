import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { SNS_PUBLISH } from '../../shared/runbook/definition.ts';
import { SYNTHESIZED_FUNCTION_ARNS, synthesizedRunbookDefinition } from './definition.ts';

describe('synthesized runbook definition', () => {
  const definition = synthesizedRunbookDefinition();
  const states = Object.values(definition.States as Record<string, Record<string, unknown>>);

  it('is valid Amazon States Language', () => {
    const result = aslValidator(definition);
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it('binds every task to one of the three runbook functions or SNS, with no placeholder left', () => {
    const resources = new Set(states.filter((s) => s.Type === 'Task').map((s) => s.Resource));
    expect([...resources].sort()).toEqual([...Object.values(SYNTHESIZED_FUNCTION_ARNS), SNS_PUBLISH].sort());
    expect(JSON.stringify(definition)).not.toContain('${');
  });
});
