/** Probing through the in-VPC probe function. A failed invocation is reported as a probe failure, never thrown. */
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { publicConnection } from '../../shared/connection.ts';
import { describeError } from '../../shared/errors.ts';
import { invokeFunction } from '../../shared/invoke.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import { redact } from '../../shared/redact.ts';
import type { Target } from '../../shared/target.ts';

export function probeEvent(target: Target) {
  return {
    targetId: target.id,
    connection: publicConnection(target.connection),
    longQueryThresholdSeconds: target.thresholds.longQuerySeconds,
  };
}

function looksLikeProbeResult(value: unknown): value is ProbeResult {
  const v = value as Partial<ProbeResult> | null;
  return !!v && typeof v === 'object' && typeof v.ok === 'boolean' && typeof v.checkedAt === 'string';
}

export async function probeViaLambda(
  lambda: Pick<LambdaClient, 'send'>,
  functionName: string,
  target: Target,
  now: () => number,
  signal: AbortSignal,
): Promise<ProbeResult> {
  const started = now();
  try {
    const body = await invokeFunction(lambda, functionName, probeEvent(target), signal);
    if (looksLikeProbeResult(body)) return body;
    throw new Error('the probe function returned something that is not a probe result');
  } catch (error) {
    const aborted = signal.aborted || (error as { cause?: { name?: string } }).cause?.name === 'AbortError';
    return {
      ok: false,
      target: target.id,
      checkedAt: new Date(started).toISOString(),
      latencyMs: { connect: now() - started, query: null },
      failure: {
        category: aborted ? 'timeout' : 'unknown',
        message: redact(`the probe function could not report: ${describeError(error)}`),
        retryable: true,
        phase: 'connect',
      },
    };
  }
}
