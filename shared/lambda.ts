/**
 * Common middy wiring for every function: Powertools Logger with the Lambda context, an abort signal
 * that fires one second before the Lambda timeout, and errors that leave with their name intact (Step
 * Functions matches on it), a redacted message and no stack trace.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { describeError } from './errors.ts';
import type { Logger as CoreLogger } from './logger.ts';
import { redact, redactingReplacer } from './redact.ts';

/**
 * The function's Powertools Logger. Every value of every line passes through the redactor as it is
 * serialised, the same path the CLI's logger uses.
 */
export function createLambdaLogger(functionName: string): Logger {
  return new Logger({
    serviceName: 'pgwarden',
    persistentKeys: { component: functionName },
    jsonReplacerFn: redactingReplacer,
  });
}

/** Adapts Powertools' Logger to the logging surface cores depend on. */
export function coreLogger(logger: Logger): CoreLogger {
  return {
    debug: (message, extra) => (extra ? logger.debug(message, extra) : logger.debug(message)),
    info: (message, extra) => (extra ? logger.info(message, extra) : logger.info(message)),
    warn: (message, extra) => (extra ? logger.warn(message, extra) : logger.warn(message)),
    error: (message, extra) => (extra ? logger.error(message, extra) : logger.error(message)),
  };
}

export interface HandlerTools {
  signal: AbortSignal;
  context: Context;
  /** The function's Powertools Logger, adapted for cores. */
  log: CoreLogger;
}

function namedErrors(logger: Logger): MiddlewareObj {
  return {
    onError: (request) => {
      const error = request.error;
      const name = error instanceof Error ? error.name : 'Error';
      const message = redact(describeError(error));
      logger.error('invocation failed', { errorName: name, errorMessage: message });
      const clean = new Error(message);
      clean.name = name;
      clean.stack = `${name}: ${message}`;
      request.error = clean;
    },
  };
}

/** How long before the Lambda timeout middy aborts the handler's signal. */
export const EARLY_ABORT_MS = 1_000;

/** Wraps a core in middy with the house defaults. */
export function lambdaHandler<R>(
  logger: Logger,
  handle: (event: unknown, tools: HandlerTools) => Promise<R>,
) {
  return middy(
    async (event: unknown, context: Context, { signal }: { signal: AbortSignal }) =>
      handle(event, { signal, context, log: coreLogger(logger) }),
    { timeoutEarlyInMillis: EARLY_ABORT_MS },
  )
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(namedErrors(logger));
}
