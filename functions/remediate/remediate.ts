/** The remediate function's core: validate the invocation, run one remediation pass, return its audit. */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Clock } from '../../shared/clock.ts';
import { ValidationError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { REMEDIATION_ACTIONS } from '../../shared/remediation/policy.ts';
import { type RemediationResult, remediate } from '../../shared/remediation/remediate.ts';
import { connectionSchema, remediationSchema, TARGET_ID, toConnectionSpec } from '../../shared/target.ts';
import { array, boolean, object, oneOf, optional, parse, string } from '../../shared/validate.ts';

/** Runbook execution names (`pgw-<target>-<yyyymmdd>-<n>`) and anything else Step Functions accepts as one. */
const INCIDENT_ID = /^[A-Za-z0-9_-]{1,80}$/;

/**
 * A remediation invocation. The connection carries a credential reference only (a literal password is
 * refused: payloads land in execution history), and the policy is the full internal form.
 */
export const remediateEventSchema = object({
  targetId: string({ pattern: TARGET_ID, patternHint: 'a target id' }),
  connection: connectionSchema,
  policy: remediationSchema,
  actions: array(oneOf(REMEDIATION_ACTIONS), { min: 1, max: REMEDIATION_ACTIONS.length }),
  pressure: optional(object({ active: boolean(), reason: optional(string({ maxLength: 200 })) })),
  dryRun: optional(boolean()),
  incidentId: optional(
    string({ pattern: INCIDENT_ID, patternHint: 'an incident id (the runbook execution name)' }),
  ),
  includeQueryText: optional(boolean()),
});

export interface RemediateFunctionConfig {
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

export interface RemediateFunctionDeps {
  logger: Logger;
  secrets: Pick<SecretsManagerClient, 'send'>;
  /** The Secrets Manager client for a secret in another region (its ARN names it). @default - `secrets` */
  secretsIn?: (region: string) => Pick<SecretsManagerClient, 'send'>;
  clock?: Clock;
  signal?: AbortSignal;
}

/** Validates a remediation invocation and runs it. Throws ValidationError only for a malformed event. */
export async function handleRemediate(
  event: unknown,
  config: RemediateFunctionConfig,
  deps: RemediateFunctionDeps,
): Promise<RemediationResult> {
  const request = parse(remediateEventSchema, event, 'remediate event', ValidationError);
  return remediate(
    toConnectionSpec(request.connection),
    {
      targetId: request.targetId,
      policy: request.policy,
      actions: request.actions,
      ...(request.pressure ? { pressure: request.pressure } : {}),
      ...(request.dryRun !== undefined ? { dryRun: request.dryRun } : {}),
      ...(request.incidentId ? { incidentId: request.incidentId } : {}),
      ...(request.includeQueryText !== undefined ? { includeQueryText: request.includeQueryText } : {}),
      connectTimeoutMs: config.connectTimeoutMs,
      statementTimeoutMs: config.statementTimeoutMs,
    },
    deps,
  );
}
