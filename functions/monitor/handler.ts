import { randomUUID } from 'node:crypto';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import { systemClock } from '../../shared/clock.ts';
import { targetSource } from '../../shared/discovery.ts';
import { fleetFromEnvironment } from '../../shared/fleet.ts';
import { openIncident } from '../../shared/incidents.ts';
import {
  coreLogger,
  createLambdaLogger,
  EARLY_ABORT_MS,
  lambdaHandler,
  parseEnvironment,
} from '../../shared/lambda.ts';
import { CloudWatchSink } from '../../shared/metrics.ts';
import { runbookEnvironment, runbookSettingsFrom } from '../../shared/runbook/settings.ts';
import { parseScheduleEvent } from '../../shared/schedule-event.ts';
import { duration, number, string, withDefault } from '../../shared/validate.ts';
import { acquireLease, LEASE_CLOCK_MARGIN_MS } from './lease.ts';
import { DEFAULT_MONITOR_SETTINGS, type MonitorState, runMonitor } from './monitor.ts';
import { probeViaLambda } from './probe-client.ts';
import { summarize } from './summary.ts';

const logger = createLambdaLogger('monitor');
const env = parseEnvironment(
  {
    ...runbookEnvironment,
    PGWARDEN_PROBE_FUNCTION: string({ maxLength: 140, patternHint: 'the probe function name or ARN' }),
    PGWARDEN_CADENCE: withDefault(
      duration({ minMs: 1_000, maxMs: 60_000 }),
      DEFAULT_MONITOR_SETTINGS.cadenceMs,
    ),
    PGWARDEN_CONFIRM_DELAY: withDefault(
      duration({ minMs: 100, maxMs: 10_000 }),
      DEFAULT_MONITOR_SETTINGS.confirmDelayMs,
    ),
    PGWARDEN_CONCURRENCY: withDefault(
      number({ min: 1, max: 100, integer: true, coerce: true }),
      DEFAULT_MONITOR_SETTINGS.concurrency,
    ),
    PGWARDEN_RUN_FOR: withDefault(duration({ minMs: 1_000, maxMs: 14 * 60_000 }), 55_000),
    PGWARDEN_NAMESPACE: withDefault(string({ maxLength: 255 }), 'PgWarden'),
    PGWARDEN_LEASE_TABLE: string({ maxLength: 255, patternHint: 'the monitor lease table name' }),
  },
  process.env,
  'monitor',
);
const fleet = fleetFromEnvironment(process.env, 'monitor');
const runbookSettings = runbookSettingsFrom(env, 'monitor');
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
    { dynamodb, table: env.PGWARDEN_LEASE_TABLE, logger: log, signal },
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
  const until = Math.min(startedAt + env.PGWARDEN_RUN_FOR, probingEnds);
  const sink = new CloudWatchSink(cloudwatch, env.PGWARDEN_NAMESPACE, (error, datums) =>
    log.error('PutMetricData failed', { datums, error: (error as Error).message }),
  );
  try {
    const report = await runMonitor(
      await targets(),
      {
        ...DEFAULT_MONITOR_SETTINGS,
        cadenceMs: env.PGWARDEN_CADENCE,
        confirmDelayMs: env.PGWARDEN_CONFIRM_DELAY,
        concurrency: env.PGWARDEN_CONCURRENCY,
      },
      {
        probe: (target, probeSignal) =>
          probeViaLambda(lambda, env.PGWARDEN_PROBE_FUNCTION, target, () => systemClock.now(), probeSignal),
        openIncident: (target, trigger) =>
          openIncident(
            { sfn, stateMachineArn: env.PGWARDEN_STATE_MACHINE_ARN, clock: systemClock, logger: log, signal },
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
