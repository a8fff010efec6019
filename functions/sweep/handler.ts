import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { systemClock } from '../../shared/clock.ts';
import { targetSource } from '../../shared/discovery.ts';
import { invokeFunction } from '../../shared/invoke.ts';
import { coreLogger, createLambdaLogger, lambdaHandler } from '../../shared/lambda.ts';
import { parseScheduleEvent } from '../../shared/schedule-event.ts';
import { sweepEnvironment } from './settings.ts';
import { runSweep } from './sweep.ts';

const logger = createLambdaLogger('sweep');
const { fleet, ...env } = sweepEnvironment(process.env);
const lambda = new LambdaClient({});
const rds = new RDSClient({});
const targets = targetSource(fleet, { rds, logger: coreLogger(logger), now: () => systemClock.now() });

export const handler = lambdaHandler(logger, async (event, { signal, log }) => {
  parseScheduleEvent(event);
  const results = await runSweep(
    await targets(),
    {
      remediate: (request) => invokeFunction(lambda, env.remediateFunction, request, signal),
      logger: log,
    },
    env.concurrency,
  );
  log.info('sweep complete', { targets: results.length, failed: results.filter((r) => !r.ok).length });
  return { results };
});
