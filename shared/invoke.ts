/** Invoking another pgwarden function through the Lambda API (how out-of-VPC code reaches the VPC functions). */
import { InvokeCommand, type InvokeCommandOutput, type LambdaClient } from '@aws-sdk/client-lambda';
import { describeError, InvocationError } from './errors.ts';

/**
 * Invokes `functionName` synchronously and returns its parsed result. A function error (the function
 * threw) or an API failure raises an InvocationError whose message names the function and the cause.
 */
export async function invokeFunction(
  lambda: Pick<LambdaClient, 'send'>,
  functionName: string,
  payload: unknown,
  signal?: AbortSignal,
): Promise<unknown> {
  let out: InvokeCommandOutput;
  try {
    out = await lambda.send(
      new InvokeCommand({
        FunctionName: functionName,
        Payload: new TextEncoder().encode(JSON.stringify(payload)),
      }),
      signal ? { abortSignal: signal } : {},
    );
  } catch (error) {
    throw new InvocationError(`invoking ${functionName} failed: ${describeError(error)}`, { cause: error });
  }
  const text = out.Payload ? new TextDecoder().decode(out.Payload) : '';
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    throw new InvocationError(`${functionName} returned a payload that is not JSON`);
  }
  if (out.FunctionError) {
    const { errorType, errorMessage } = (body ?? {}) as { errorType?: string; errorMessage?: string };
    const error = new InvocationError(
      `${functionName} failed: ${errorType ?? out.FunctionError}: ${errorMessage ?? 'no message'}`,
    );
    (error as InvocationError & { functionErrorType?: string }).functionErrorType = errorType;
    throw error;
  }
  return body;
}
