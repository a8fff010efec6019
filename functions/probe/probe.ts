/** The probe function's core: bind the invocation to its configured target, probe, return the snapshot. */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { bindTarget, connectionDifferences, type TargetCatalog } from '../../shared/binding.ts';
import type { Clock } from '../../shared/clock.ts';
import { ValidationError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { type IntegrityResult, integritySummary } from '../../shared/probe/integrity.ts';
import { type ProbeResult, probe } from '../../shared/probe/snapshot.ts';
import { connectionSchema, TARGET_ID, toConnectionSpec } from '../../shared/target.ts';
import { number, object, oneOf, optional, parse, string, withDefault } from '../../shared/validate.ts';

/**
 * A probe invocation names its target by id. The connection is used only for a target found by
 * discovery, and only inside the discovery scope (see shared/binding.ts); a configured target is
 * probed as configured, whatever the payload says.
 */
export const probeEventSchema = object({
  targetId: string({ pattern: TARGET_ID, patternHint: 'a target id' }),
  connection: optional(connectionSchema),
  longQueryThresholdSeconds: optional(number({ min: 0.1, max: 86_400 })),
  /** `integrity`: the post-incident summary (wraparound age and size per database) instead of the snapshot. */
  mode: withDefault(oneOf(['health', 'integrity'] as const), 'health'),
});

export interface ProbeFunctionConfig {
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  /** The deployed fleet: what a target id may stand for. */
  catalog: TargetCatalog;
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
 * Validates a probe invocation, binds it to its target and runs the probe (or the integrity summary).
 * Throws ValidationError only for a malformed event or a target outside the configuration; database
 * faults are results.
 */
export async function runProbe(
  event: unknown,
  config: ProbeFunctionConfig,
  deps: ProbeFunctionDeps,
): Promise<ProbeResult | IntegrityResult> {
  const request = parse(probeEventSchema, event, 'probe event', ValidationError);
  const requested = request.connection ? toConnectionSpec(request.connection) : undefined;
  const { target, source } = bindTarget(
    config.catalog,
    { targetId: request.targetId, ...(requested ? { connection: requested } : {}) },
    'probe event',
  );
  if (source === 'configured' && requested) {
    const ignored = connectionDifferences(target.connection, requested);
    if (ignored.length > 0)
      deps.logger.warn('payload connection differs from the configured target; using the configuration', {
        targetId: target.id,
        ignored,
      });
  }
  if (request.mode === 'integrity') {
    return integritySummary(
      target.connection,
      { label: target.id, connectTimeoutMs: config.connectTimeoutMs },
      deps,
    );
  }
  return probe(
    target.connection,
    {
      label: target.id,
      connectTimeoutMs: config.connectTimeoutMs,
      statementTimeoutMs: config.statementTimeoutMs,
      longQueryThresholdSeconds: request.longQueryThresholdSeconds ?? target.thresholds.longQuerySeconds,
    },
    deps,
  );
}
