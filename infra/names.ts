/**
 * The physical names pgwarden gives its resources, in one place. Two rules hold for every name:
 * it carries the stack name, so a second pgwarden stack (staging beside production) in the same
 * account and region never collides with the first; and nothing that outlives the stack (retained
 * log groups, the topics' key) has a name a later deploy would ask for again. Everything else is
 * named by CloudFormation.
 */
import { ArnFormat, Fn, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { ConfigError } from '../shared/errors.ts';
import { DEFAULT_STACK_NAME, STACK_NAME, STACK_NAME_RULE } from '../shared/stack-name.ts';

export { DEFAULT_STACK_NAME };

/**
 * Validates the stack name chosen with `-c stackName=...`. A bad one fails the synth with the value
 * and the fix, before CloudFormation would refuse it.
 */
export function parseStackName(value: unknown): string {
  if (value === undefined || value === null || value === '') return DEFAULT_STACK_NAME;
  const text = String(value);
  if (STACK_NAME.test(text)) return text;
  throw new ConfigError('pgwarden stack name', [
    {
      path: 'context.stackName',
      received: JSON.stringify(text),
      problem: 'is not a CloudFormation stack name',
      fix: `${STACK_NAME_RULE}, e.g. -c stackName=PgWardenStaging.`,
    },
  ]);
}

/**
 * Alarm names are `<stack>/<name>` for pgwarden's own alarms and `<stack>/<target>/<kind>` for a
 * target's. "/" appears in neither a stack name nor a target id, so the stack's prefix can never
 * match another stack's alarms, and a target's alarm can never take the name of a fleet-wide one.
 */
export function alarmName(scope: IConstruct, ...parts: readonly string[]): string {
  return [Stack.of(scope).stackName, ...parts].join('/');
}

/**
 * The ARN pattern of every alarm this stack names: what the topics' policy and key policy let
 * CloudWatch publish for (`aws:SourceArn`). Built from names, not from the alarms themselves, so the
 * topics and their key do not depend on the alarms that depend on them.
 */
export function alarmArnPattern(scope: IConstruct): string {
  return Stack.of(scope).formatArn({
    service: 'cloudwatch',
    resource: 'alarm',
    resourceName: `${Stack.of(scope).stackName}/*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/**
 * The default dashboard name, `<stack>-<region>`: dashboards are global to the account, so the
 * region keeps two regions' stacks of the same name apart.
 */
export function defaultDashboardName(scope: IConstruct): string {
  const stack = Stack.of(scope);
  return `${stack.stackName}-${stack.region}`;
}

/**
 * A suffix unique to one creation of the stack: the first group of the stack id's UUID. It stays the
 * same through every update and changes when the stack is deleted and created again, so a retained
 * resource left by the old stack never blocks the new one.
 */
export function stackInstanceSuffix(scope: IConstruct): string {
  const stack = Stack.of(scope);
  return Fn.select(0, Fn.split('-', Fn.select(2, Fn.split('/', stack.stackId))));
}
