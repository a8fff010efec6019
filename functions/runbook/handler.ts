import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import { catalogFromFleet } from '../../shared/binding.ts';
import { systemClock } from '../../shared/clock.ts';
import { fleetFromEnvironment } from '../../shared/fleet.ts';
import { createLambdaLogger, lambdaHandler, parseEnvironment } from '../../shared/lambda.ts';
import { runbookSettingsEnvironment, runbookSettingsFrom } from '../../shared/runbook/settings.ts';
import { string } from '../../shared/validate.ts';
import { handleRunbook } from './runbook.ts';

const TOPIC = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$/;
const logger = createLambdaLogger('runbook');
const env = parseEnvironment(
  {
    PGWARDEN_PAGES_TOPIC_ARN: string({ pattern: TOPIC, patternHint: 'the pages SNS topic ARN' }),
    PGWARDEN_NOTIFICATIONS_TOPIC_ARN: string({
      pattern: TOPIC,
      patternHint: 'the notifications SNS topic ARN',
    }),
    ...runbookSettingsEnvironment,
  },
  process.env,
  'runbook',
);
// What a target id stands for, and the incident clock, as deployed: an execution's input is written
// by whoever may start one.
const catalog = catalogFromFleet(fleetFromEnvironment(process.env, 'runbook'), process.env.AWS_REGION);
const settings = runbookSettingsFrom(env, 'runbook');
const rds = new RDSClient({});
const cloudwatch = new CloudWatchClient({});
const sfn = new SFNClient({});

export const handler = lambdaHandler(logger, async (event, { signal, log }) => {
  const state = (event as { state?: { incidentId?: unknown; target?: { id?: unknown } } } | null)?.state;
  if (typeof state?.incidentId === 'string') logger.setCorrelationId(state.incidentId);
  if (typeof state?.target?.id === 'string') logger.appendKeys({ targetId: state.target.id });
  return handleRunbook(event, {
    catalog,
    settings,
    sfn,
    rds,
    cloudwatch,
    topics: { pages: env.PGWARDEN_PAGES_TOPIC_ARN, notifications: env.PGWARDEN_NOTIFICATIONS_TOPIC_ARN },
    clock: systemClock,
    logger: log,
    signal,
  });
});
