/**
 * The scheduled idle sweep: every target's idle policy, run by the in-VPC remediate function, with a
 * bound on targets in flight. One target failing never stops the others.
 */
import { publicConnection } from '../../shared/connection.ts';
import { describeError } from '../../shared/errors.ts';
import { limiter } from '../../shared/limit.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Target } from '../../shared/target.ts';

export interface SweepDeps {
  /** Runs the remediate function for one request and returns its result. */
  remediate(request: ReturnType<typeof sweepRequest>): Promise<unknown>;
  logger: Logger;
}

/** The remediate invocation for a scheduled sweep of one target: idle and idle-in-transaction only. */
export function sweepRequest(target: Target) {
  return {
    targetId: target.id,
    connection: publicConnection(target.connection),
    policy: target.remediation,
    actions: ['idle', 'idle_in_transaction'] as Array<'idle' | 'idle_in_transaction'>,
  };
}

export interface SweepSummary {
  targetId: string;
  ok: boolean;
  dryRun?: boolean;
  terminated?: number;
  skipped?: number;
  error?: string;
}

interface RemediationOutcome {
  ok?: boolean;
  dryRun?: boolean;
  terminated?: unknown[];
  skipped?: unknown[];
  /** Every skip by reason; the skipped list itself is capped. */
  skipCounts?: Record<string, number>;
  failure?: { category?: string; message?: string };
}

export async function runSweep(
  targets: readonly Target[],
  deps: SweepDeps,
  concurrency = 5,
): Promise<SweepSummary[]> {
  const limit = limiter(concurrency);
  return Promise.all(
    targets.map((target) =>
      limit(async (): Promise<SweepSummary> => {
        try {
          const result = (await deps.remediate(sweepRequest(target))) as RemediationOutcome;
          if (!result?.ok) {
            const error = result?.failure
              ? `${result.failure.category}: ${result.failure.message}`
              : 'no result';
            deps.logger.warn('sweep could not run on target', { targetId: target.id, error });
            return { targetId: target.id, ok: false, error };
          }
          return {
            targetId: target.id,
            ok: true,
            dryRun: Boolean(result.dryRun),
            terminated: result.terminated?.length ?? 0,
            skipped: result.skipCounts
              ? Object.values(result.skipCounts).reduce((sum, n) => sum + n, 0)
              : (result.skipped?.length ?? 0),
          };
        } catch (error) {
          deps.logger.error('sweep failed on target', { targetId: target.id, error: describeError(error) });
          return { targetId: target.id, ok: false, error: describeError(error) };
        }
      }),
    ),
  );
}
