import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import { systemClock } from '../../shared/clock.ts';
import { targetSource } from '../../shared/discovery.ts';
import { openIncident } from '../../shared/incidents.ts';
import { coreLogger, createLambdaLogger, lambdaHandler } from '../../shared/lambda.ts';
import { CloudWatchSink } from '../../shared/metrics.ts';
import { runRdsEvents } from './rds-events.ts';
import { rdsEventsEnvironment } from './settings.ts';

const logger = createLambdaLogger('rds-events');
const { fleet, runbook: settings, ...env } = rdsEventsEnvironment(process.env);
const cloudwatch = new CloudWatchClient({});
const sfn = new SFNClient({});
const rds = new RDSClient({});
const targets = targetSource(fleet, { rds, logger: coreLogger(logger), now: () => systemClock.now() });

export const handler = lambdaHandler(logger, async (event, { signal, log }) => {
  const metrics = new CloudWatchSink(cloudwatch, env.namespace, (error) =>
    log.error('PutMetricData failed', { error: (error as Error).message }),
  );
  let result: Awaited<ReturnType<typeof runRdsEvents>>;
  try {
    result = await runRdsEvents(event, {
      targets,
      openIncident: (target, trigger) =>
        openIncident(
          { sfn, stateMachineArn: env.stateMachineArn, clock: systemClock, logger: log, signal },
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
