import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { systemClock } from '../../shared/clock.ts';
import { targetSource } from '../../shared/discovery.ts';
import { fleetFromEnvironment } from '../../shared/fleet.ts';
import { invokeFunction } from '../../shared/invoke.ts';
import { coreLogger, createLambdaLogger, lambdaHandler, parseEnvironment } from '../../shared/lambda.ts';
import { parseScheduleEvent } from '../../shared/schedule-event.ts';
import { number, string, withDefault } from '../../shared/validate.ts';
import { sweepAll } from './sweep.ts';

const logger = createLambdaLogger('sweep');
const env = parseEnvironment(
  {
    PGWARDEN_REMEDIATE_FUNCTION: string({
      maxLength: 140,
      patternHint: 'the remediate function name or ARN',
    }),
    PGWARDEN_CONCURRENCY: withDefault(number({ min: 1, max: 50, integer: true, coerce: true }), 5),
  },
  process.env,
  'sweep',
);
const fleet = fleetFromEnvironment(process.env, 'sweep');
const lambda = new LambdaClient({});
const rds = new RDSClient({});
const targets = targetSource(fleet, { rds, logger: coreLogger(logger), now: () => systemClock.now() });

export const handler = lambdaHandler(logger, async (event, { signal, log }) => {
  parseScheduleEvent(event);
  const results = await sweepAll(
    await targets(),
    {
      remediate: (request) => invokeFunction(lambda, env.PGWARDEN_REMEDIATE_FUNCTION, request, signal),
      logger: log,
    },
    env.PGWARDEN_CONCURRENCY,
  );
  log.info('sweep complete', { targets: results.length, failed: results.filter((r) => !r.ok).length });
  return { results };
});
