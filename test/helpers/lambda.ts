import type { Context } from 'aws-lambda';
import { vi } from 'vitest';

/** A Lambda context as the runtime passes it, with a deadline. */
export function lambdaContext(functionName: string, remainingMs = 30_000): Context {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: `req-${Math.random().toString(36).slice(2)}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'test',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Captures everything written to stdout/stderr (where Powertools and console loggers write). */
export function captureOutput(): { text(): string; restore(): void } {
  const chunks: string[] = [];
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const capture = (chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  };
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  return {
    text: () => chunks.join(''),
    restore: () => {
      process.stdout.write = out;
      process.stderr.write = err;
    },
  };
}

/** A Lambda handler as the runtime calls it. */
export type LambdaHandler = (event: unknown, context: unknown) => Promise<unknown>;

const HANDLERS = {
  probe: () => import('../../functions/probe/handler.ts'),
  remediate: () => import('../../functions/remediate/handler.ts'),
  runbook: () => import('../../functions/runbook/handler.ts'),
  monitor: () => import('../../functions/monitor/handler.ts'),
  sweep: () => import('../../functions/sweep/handler.ts'),
} as const;

/**
 * A function's handler, cold-started with this environment (a handler reads its environment, the
 * deployed fleet included, once at module load): the modules are loaded afresh each time.
 */
export async function coldStart(
  name: keyof typeof HANDLERS,
  env: Record<string, string>,
): Promise<LambdaHandler> {
  vi.resetModules();
  for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
  return ((await HANDLERS[name]()) as unknown as { handler: LambdaHandler }).handler;
}
