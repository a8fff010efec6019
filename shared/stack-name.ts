/**
 * The name of a pgwarden stack: what `cdk deploy -c stackName=...` accepts and what the CLI's `--stack`
 * looks for. One definition for the CDK app and the CLI (which must not load the CDK to check a flag).
 */

/** The stack name when none is chosen: `cdk deploy` creates the stack `PgWarden`. */
export const DEFAULT_STACK_NAME = 'PgWarden';

/** What CloudFormation accepts as a stack name. */
export const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;

/** How to write one, for error messages. */
export const STACK_NAME_RULE =
  'Start with a letter and use only letters, digits and "-", at most 128 characters';
