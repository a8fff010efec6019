import { randomUUID } from 'node:crypto';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import { systemClock } from '../../shared/clock.ts';
import { targetSource } from '../../shared/discovery.ts';
import { openIncident } from '../../shared/incidents.ts';
import { coreLogger, createLambdaLogger, EARLY_ABORT_MS, lambdaHandler } from '../../shared/lambda.ts';
import { CloudWatchSink } from '../../shared/metrics.ts';
import { parseScheduleEvent } from '../../shared/schedule-event.ts';
import { acquireLease, LEASE_CLOCK_MARGIN_MS } from './lease.ts';
import { type MonitorState, runMonitor } from './monitor.ts';
import { probeViaLambda } from './probe-client.ts';
import { DEFAULT_MONITOR_SETTINGS, monitorEnvironment } from './settings.ts';
import { summarize } from './summary.ts';

const logger = createLambdaLogger('monitor');
const { fleet, runbook: runbookSettings, ...env } = monitorEnvironment(process.env);
const lambda = new LambdaClient({});
const cloudwatch = new CloudWatchClient({});
const sfn = new SFNClient({});
const rds = new RDSClient({});
const dynamodb = new DynamoDBClient({});
const state: MonitorState = new Map();
const targets = targetSource(fleet, { rds, logger: coreLogger(logger), now: () => systemClock.now() });

/** Time kept back at the end of the run to send the metrics (before middy's abort, 1 s before the timeout). */
const FLUSH_RESERVE_MS = 4_000;

export const handler = lambdaHandler(logger, async (event, { signal, context, log }) => {
  parseScheduleEvent(event);
  const startedAt = systemClock.now();
  // After its timeout Lambda has stopped this run, whatever it was doing: the lease lasts that long.
  const hardEnd = startedAt + context.getRemainingTimeInMillis();
  const lease = await acquireLease(
    { dynamodb, table: env.leaseTable, logger: log, signal },
    randomUUID(),
    startedAt,
    hardEnd + LEASE_CLOCK_MARGIN_MS,
  );
  if (lease.status === 'busy') {
    log.info('another monitor run holds the lease; this one does nothing', {
      ...(lease.heldUntil ? { heldUntil: lease.heldUntil } : {}),
    });
    return { skipped: 'another monitor run is in progress', ...lease };
  }
  if (lease.status === 'unavailable')
    log.error('the monitor lease table could not be asked; running without it', { error: lease.error });

  // Probing stops early enough for the flush to fit before the abort; a probe still out then is
  // cut short and not counted (it says nothing about its target).
  const probingEnds = hardEnd - EARLY_ABORT_MS - FLUSH_RESERVE_MS;
  const probing = AbortSignal.any([signal, AbortSignal.timeout(Math.max(0, probingEnds - startedAt))]);
  const until = Math.min(startedAt + env.runForMs, probingEnds);
  const sink = new CloudWatchSink(cloudwatch, env.namespace, (error, datums) =>
    log.error('PutMetricData failed', { datums, error: (error as Error).message }),
  );
  try {
    const report = await runMonitor(
      await targets(),
      {
        ...DEFAULT_MONITOR_SETTINGS,
        cadenceMs: env.cadenceMs,
        confirmDelayMs: env.confirmDelayMs,
        concurrency: env.concurrency,
      },
      {
        probe: (target, probeSignal) =>
          probeViaLambda(lambda, env.probeFunction, target, () => systemClock.now(), probeSignal),
        openIncident: (target, trigger) =>
          openIncident(
            { sfn, stateMachineArn: env.stateMachineArn, clock: systemClock, logger: log, signal },
            target,
            trigger,
            runbookSettings,
          ),
        metrics: sink,
        clock: systemClock,
        logger: log,
      },
      state,
      until,
      probing,
    );
    const metrics = await sink.flush(signal);
    const summary = summarize(report, metrics);
    log.info('monitor run complete', summary);
    return summary;
  } finally {
    if (lease.status === 'held') await lease.release();
  }
});
