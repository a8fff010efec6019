import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import { systemClock } from '../../shared/clock.ts';
import { targetSource } from '../../shared/discovery.ts';
import { fleetFromEnvironment } from '../../shared/fleet.ts';
import { openIncident } from '../../shared/incidents.ts';
import { coreLogger, createLambdaLogger, lambdaHandler, parseEnvironment } from '../../shared/lambda.ts';
import { CloudWatchSink } from '../../shared/metrics.ts';
import { runbookEnvironment, runbookSettingsFrom } from '../../shared/runbook/settings.ts';
import { string, withDefault } from '../../shared/validate.ts';
import { handleIntake } from './intake.ts';

const logger = createLambdaLogger('rds-events');
const env = parseEnvironment(
  { ...runbookEnvironment, PGWARDEN_NAMESPACE: withDefault(string({ maxLength: 255 }), 'PgWarden') },
  process.env,
  'rds-events',
);
const fleet = fleetFromEnvironment(process.env, 'rds-events');
const settings = runbookSettingsFrom(env, 'rds-events');
const cloudwatch = new CloudWatchClient({});
const sfn = new SFNClient({});
const rds = new RDSClient({});
const targets = targetSource(fleet, { rds, logger: coreLogger(logger), now: () => systemClock.now() });

export const handler = lambdaHandler(logger, async (event, { signal, log }) => {
  const metrics = new CloudWatchSink(cloudwatch, env.PGWARDEN_NAMESPACE, (error) =>
    log.error('PutMetricData failed', { error: (error as Error).message }),
  );
  let result: Awaited<ReturnType<typeof handleIntake>>;
  try {
    result = await handleIntake(event, {
      targets,
      openIncident: (target, trigger) =>
        openIncident(
          { sfn, stateMachineArn: env.PGWARDEN_STATE_MACHINE_ARN, clock: systemClock, logger: log, signal },
          target,
          trigger,
          settings,
        ),
      metrics,
      rds,
      clock: systemClock,
      logger: log,
      signal,
    });
  } finally {
    // Also when the incident could not be started: IncidentStartFailures is what pages then.
    await metrics.flush(signal);
  }
  log.info('event handled', result);
  return result;
});
