/** The probe function's core: validate the invocation, probe, return the snapshot. */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Clock } from '../../shared/clock.ts';
import { ValidationError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { type IntegrityResult, integritySummary } from '../../shared/probe/integrity.ts';
import { type ProbeResult, probe } from '../../shared/probe/probe.ts';
import { connectionSchema, TARGET_ID, toConnectionSpec } from '../../shared/target.ts';
import { number, object, oneOf, optional, parse, string, withDefault } from '../../shared/validate.ts';

export const probeEventSchema = object({
  targetId: string({ pattern: TARGET_ID, patternHint: 'a target id' }),
  connection: connectionSchema,
  longQueryThresholdSeconds: optional(number({ min: 0.1, max: 86_400 })),
  /** `integrity`: the post-incident summary (wraparound age and size per database) instead of the snapshot. */
  mode: withDefault(oneOf(['health', 'integrity'] as const), 'health'),
});

export interface ProbeFunctionConfig {
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

export interface ProbeFunctionDeps {
  logger: Logger;
  secrets: Pick<SecretsManagerClient, 'send'>;
  /** The Secrets Manager client for a secret in another region (its ARN names it). @default - `secrets` */
  secretsIn?: (region: string) => Pick<SecretsManagerClient, 'send'>;
  clock?: Clock;
  signal?: AbortSignal;
}

/**
 * Validates a probe invocation and runs the probe (or the integrity summary). Throws ValidationError only
 * for a malformed event; database faults are results.
 */
export async function handleProbe(
  event: unknown,
  config: ProbeFunctionConfig,
  deps: ProbeFunctionDeps,
): Promise<ProbeResult | IntegrityResult> {
  const request = parse(probeEventSchema, event, 'probe event', ValidationError);
  if (request.mode === 'integrity') {
    return integritySummary(
      toConnectionSpec(request.connection),
      { label: request.targetId, connectTimeoutMs: config.connectTimeoutMs },
      deps,
    );
  }
  return probe(
    toConnectionSpec(request.connection),
    {
      label: request.targetId,
      connectTimeoutMs: config.connectTimeoutMs,
      statementTimeoutMs: config.statementTimeoutMs,
      ...(request.longQueryThresholdSeconds
        ? { longQueryThresholdSeconds: request.longQueryThresholdSeconds }
        : {}),
    },
    deps,
  );
}
