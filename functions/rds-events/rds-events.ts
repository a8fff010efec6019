/**
 * The intake of outside signals: RDS instance and cluster events, and pgwarden's own CloudWatch alarms
 * going into ALARM. Either may open the runbook for its target (idempotently, like the monitor), or is
 * recorded as an event metric.
 */
import { DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import type { Clock } from '../../shared/clock.ts';
import { describeError, ValidationError } from '../../shared/errors.ts';
import type { OpenOutcome } from '../../shared/incidents.ts';
import type { Logger } from '../../shared/logger.ts';
import type { MetricSink } from '../../shared/metrics.ts';
import type { Trigger } from '../../shared/runbook/types.ts';
import type { Target } from '../../shared/target.ts';
import {
  array,
  type Infer,
  literal,
  object,
  oneOf,
  optional,
  parse,
  string,
  variant,
} from '../../shared/validate.ts';
import { meaningOf, sourceIdentifier } from './events.ts';

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/;
const time = () => string({ pattern: ISO_TIME, patternHint: 'an ISO 8601 timestamp' });

const rdsDetail = object(
  {
    EventID: string({
      pattern: /^RDS-EVENT-\d{4}$/,
      patternHint: 'an RDS event id such as "RDS-EVENT-0004"',
    }),
    SourceIdentifier: string({ maxLength: 255, patternHint: 'the instance or cluster identifier' }),
    SourceType: optional(string()),
    SourceArn: optional(string()),
    Message: optional(string({ minLength: 0, maxLength: 10_000 })),
    Date: optional(time()),
    EventCategories: optional(array(string())),
  },
  { strict: false },
);

const rdsEvent = object(
  {
    source: literal('aws.rds'),
    'detail-type': oneOf(['RDS DB Instance Event', 'RDS DB Cluster Event'] as const),
    time: time(),
    id: optional(string()),
    region: optional(string()),
    detail: rdsDetail,
  },
  { strict: false },
);

const alarmEvent = object(
  {
    source: literal('aws.cloudwatch'),
    'detail-type': literal('CloudWatch Alarm State Change'),
    time: time(),
    id: optional(string()),
    detail: object(
      {
        alarmName: string({ maxLength: 255 }),
        state: object(
          {
            value: oneOf(['OK', 'ALARM', 'INSUFFICIENT_DATA'] as const),
            reason: optional(string({ minLength: 0, maxLength: 10_000 })),
            timestamp: optional(string()),
          },
          { strict: false },
        ),
        configuration: optional(object({}, { strict: false })),
      },
      { strict: false },
    ),
  },
  { strict: false },
);

const intakeEvent = variant('source', { 'aws.rds': rdsEvent, 'aws.cloudwatch': alarmEvent });

export interface RdsEventsDeps {
  targets(): Promise<Target[]>;
  openIncident(target: Target, trigger: Trigger): Promise<OpenOutcome>;
  metrics: MetricSink;
  rds?: Pick<RDSClient, 'send'>;
  clock: Clock;
  logger: Logger;
  signal?: AbortSignal;
}

export type RdsEventsResult =
  | { action: 'opened' | 'joined' | 'stale'; targetId: string; incidentId: string; kind: string }
  | { action: 'recorded'; targetId: string; kind: string }
  | { action: 'ignored'; reason: string };

/** Handles one EventBridge event. A malformed event throws a ValidationError before anything is done. */
export async function runRdsEvents(event: unknown, deps: RdsEventsDeps): Promise<RdsEventsResult> {
  const parsed = parse(intakeEvent, event, 'EventBridge event', ValidationError);
  return parsed.source === 'aws.rds' ? handleRdsEvent(parsed, deps) : handleAlarm(parsed, deps);
}

type RdsEvent = Infer<typeof rdsEvent>;
type AlarmEvent = Infer<typeof alarmEvent>;

async function handleRdsEvent(event: RdsEvent, deps: RdsEventsDeps): Promise<RdsEventsResult> {
  const { EventID, SourceIdentifier, Date: date } = event.detail;
  const identifier = sourceIdentifier(SourceIdentifier);
  const meaning = meaningOf(EventID);
  if (!meaning) {
    deps.logger.info('RDS event pgwarden does not act on; ignored', { eventId: EventID, source: identifier });
    return { action: 'ignored', reason: `${EventID} is not an event pgwarden acts on` };
  }
  const isCluster = event['detail-type'] === 'RDS DB Cluster Event';
  const target = await findTarget(identifier, isCluster, deps);
  if (!target) {
    deps.logger.info('RDS event for a database pgwarden does not monitor; ignored', {
      eventId: EventID,
      source: identifier,
    });
    return { action: 'ignored', reason: `${identifier} is not a monitored database` };
  }
  const observedAt = date ?? event.time;
  deps.metrics.add([{ name: 'RdsEvents', value: 1, target: target.id, timestamp: Date.parse(observedAt) }]);
  if (!meaning.opensIncident) {
    deps.logger.info('RDS event recorded', { targetId: target.id, eventId: EventID, kind: meaning.kind });
    return { action: 'recorded', targetId: target.id, kind: meaning.kind };
  }
  const trigger: Trigger = {
    kind: 'rds-event',
    summary: `${EventID} on ${identifier}: ${meaning.description}`,
    observedAt,
    eventId: EventID,
    eventKind: meaning.kind,
  };
  const outcome = await open(deps, target, trigger);
  return { action: outcome.outcome, targetId: target.id, incidentId: outcome.incidentId, kind: meaning.kind };
}

/**
 * A target's alarms are named `<stack>/<target>/<kind>` (infra/names.ts); the Target dimension is
 * authoritative when present.
 */
function alarmTarget(event: AlarmEvent): string | undefined {
  const configuration = (event.detail.configuration ?? {}) as { metrics?: unknown };
  const metrics = (configuration.metrics ?? []) as Array<{
    metricStat?: { metric?: { dimensions?: Record<string, string> } };
  }>;
  for (const metric of metrics) {
    const target = metric.metricStat?.metric?.dimensions?.Target;
    if (target) return target;
  }
  return /^[^/]+\/([^/]+)\/[a-z-]+$/.exec(event.detail.alarmName)?.[1];
}

async function handleAlarm(event: AlarmEvent, deps: RdsEventsDeps): Promise<RdsEventsResult> {
  const { alarmName, state } = event.detail;
  if (state.value !== 'ALARM') return { action: 'ignored', reason: `alarm ${alarmName} is ${state.value}` };
  const targetId = alarmTarget(event);
  const target = targetId ? (await deps.targets()).find((t) => t.id === targetId) : undefined;
  if (!target) return { action: 'ignored', reason: `alarm ${alarmName} is not about a monitored target` };
  const outcome = await open(deps, target, {
    kind: 'alarm',
    summary: `alarm ${alarmName}: ${state.reason ?? 'in ALARM'}`,
    observedAt:
      state.timestamp && !Number.isNaN(Date.parse(state.timestamp))
        ? new Date(state.timestamp).toISOString()
        : event.time,
    alarmName,
  });
  return { action: outcome.outcome, targetId: target.id, incidentId: outcome.incidentId, kind: 'alarm' };
}

/** The monitored target an RDS resource belongs to; an instance of a monitored cluster maps to the cluster. */
async function findTarget(
  identifier: string,
  isCluster: boolean,
  deps: RdsEventsDeps,
): Promise<Target | undefined> {
  const targets = await deps.targets();
  const lower = identifier.toLowerCase();
  const direct = targets.find((t) =>
    isCluster ? t.rds?.clusterId?.toLowerCase() === lower : t.rds?.instanceId?.toLowerCase() === lower,
  );
  if (direct || isCluster || !deps.rds) return direct;
  if (!targets.some((t) => t.rds?.clusterId)) return undefined;
  try {
    const out = await deps.rds.send(
      new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier }),
      deps.signal ? { abortSignal: deps.signal } : {},
    );
    const cluster = out.DBInstances?.[0]?.DBClusterIdentifier?.toLowerCase();
    return cluster ? targets.find((t) => t.rds?.clusterId?.toLowerCase() === cluster) : undefined;
  } catch (error) {
    deps.logger.warn('could not look up the cluster of an instance', {
      identifier,
      error: describeError(error),
    });
    return undefined;
  }
}

/** Opens (or joins) the incident and counts the outcome; a failure is counted, then rethrown. */
async function open(deps: RdsEventsDeps, target: Target, trigger: Trigger): Promise<OpenOutcome> {
  try {
    const outcome = await deps.openIncident(target, trigger);
    if (outcome.outcome === 'opened')
      deps.metrics.add([
        { name: 'IncidentsOpened', value: 1, target: target.id, timestamp: deps.clock.now() },
      ]);
    return outcome;
  } catch (error) {
    deps.metrics.add([
      { name: 'IncidentStartFailures', value: 1, target: target.id, timestamp: deps.clock.now() },
    ]);
    throw error;
  }
}
