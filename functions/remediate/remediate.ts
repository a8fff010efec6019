/**
 * The remediate function's core: bind the invocation to its configured target and policy, run one
 * remediation pass, return its audit.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { bindTarget, connectionDifferences, narrowPolicy, type TargetCatalog } from '../../shared/binding.ts';
import type { Clock } from '../../shared/clock.ts';
import { ValidationError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { REMEDIATION_ACTIONS } from '../../shared/remediation/policy.ts';
import { type RemediationResult, remediate } from '../../shared/remediation/remediator.ts';
import { connectionSchema, remediationSchema, TARGET_ID, toConnectionSpec } from '../../shared/target.ts';
import { array, boolean, object, oneOf, optional, parse, string } from '../../shared/validate.ts';

/** Runbook execution names (`pgw-<target>-<yyyymmdd>-<n>`) and anything else Step Functions accepts as one. */
const INCIDENT_ID = /^[A-Za-z0-9_-]{1,80}$/;

/**
 * A remediation invocation. It names its target by id: the connection is used only for a discovered
 * target (see shared/binding.ts), and the policy, when sent, can only narrow the configured one (more
 * dry-run, higher thresholds, a lower cap, more protection, fewer actions).
 */
export const remediateEventSchema = object({
  targetId: string({ pattern: TARGET_ID, patternHint: 'a target id' }),
  connection: optional(connectionSchema),
  policy: optional(remediationSchema),
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
  /** The deployed fleet: what a target id may stand for, and its policy. */
  catalog: TargetCatalog;
}

export interface RemediateFunctionDeps {
  logger: Logger;
  secrets: Pick<SecretsManagerClient, 'send'>;
  /** The Secrets Manager client for a secret in another region (its ARN names it). @default - `secrets` */
  secretsIn?: (region: string) => Pick<SecretsManagerClient, 'send'>;
  clock?: Clock;
  signal?: AbortSignal;
}

/**
 * Validates a remediation invocation, binds it to its target and runs it. Throws ValidationError only
 * for a malformed event or a target outside the configuration.
 */
export async function runRemediate(
  event: unknown,
  config: RemediateFunctionConfig,
  deps: RemediateFunctionDeps,
): Promise<RemediationResult> {
  const request = parse(remediateEventSchema, event, 'remediate event', ValidationError);
  const requested = request.connection ? toConnectionSpec(request.connection) : undefined;
  const { target, source } = bindTarget(
    config.catalog,
    { targetId: request.targetId, ...(requested ? { connection: requested } : {}) },
    'remediate event',
  );
  if (source === 'configured' && requested) {
    const ignored = connectionDifferences(target.connection, requested);
    if (ignored.length > 0)
      deps.logger.warn('payload connection differs from the configured target; using the configuration', {
        targetId: target.id,
        ignored,
      });
  }
  const policy = narrowPolicy(target.remediation, request.policy);
  return remediate(
    target.connection,
    {
      targetId: target.id,
      policy,
      actions: request.actions,
      ...(request.pressure ? { pressure: request.pressure } : {}),
      // A caller's word that the pool is under pressure keeps the escalated policy on only while the
      // remediator itself sees the pool past the alert threshold.
      claimedPressureFloorPct: target.thresholds.utilizationPct,
      ...(request.dryRun !== undefined ? { dryRun: request.dryRun } : {}),
      ...(request.incidentId ? { incidentId: request.incidentId } : {}),
      includeQueryText: policy.includeQueryText && request.includeQueryText !== false,
      connectTimeoutMs: config.connectTimeoutMs,
      statementTimeoutMs: config.statementTimeoutMs,
    },
    deps,
  );
}
