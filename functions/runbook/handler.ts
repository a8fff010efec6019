import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import { catalogFromFleet } from '../../shared/binding.ts';
import { systemClock } from '../../shared/clock.ts';
import { createLambdaLogger, lambdaHandler } from '../../shared/lambda.ts';
import { runRunbook } from './runbook.ts';
import { runbookEnvironment } from './settings.ts';

const logger = createLambdaLogger('runbook');
const { fleet, runbook: settings, ...env } = runbookEnvironment(process.env);
// What a target id stands for, and the incident clock, as deployed: an execution's input is written
// by whoever may start one.
const catalog = catalogFromFleet(fleet, process.env.AWS_REGION);
const rds = new RDSClient({});
const cloudwatch = new CloudWatchClient({});
const sfn = new SFNClient({});

export const handler = lambdaHandler(logger, async (event, { signal, log }) => {
  const state = (event as { state?: { incidentId?: unknown; target?: { id?: unknown } } } | null)?.state;
  if (typeof state?.incidentId === 'string') logger.setCorrelationId(state.incidentId);
  if (typeof state?.target?.id === 'string') logger.appendKeys({ targetId: state.target.id });
  return runRunbook(event, {
    catalog,
    settings,
    sfn,
    rds,
    cloudwatch,
    topics: { pages: env.pagesTopicArn, notifications: env.notificationsTopicArn },
    clock: systemClock,
    logger: log,
    signal,
  });
});
