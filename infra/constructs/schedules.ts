import { Duration } from 'aws-cdk-lib';
import type * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

/** The RDS resources whose events pgwarden receives. */
export interface RdsSources {
  /** DB instance identifiers. */
  readonly instanceIds: readonly string[];
  /** DB cluster identifiers. */
  readonly clusterIds: readonly string[];
}

/** The functions the schedules and event rules invoke, and how often. */
export interface SchedulesProps {
  /** Invoked every minute; it probes at its own cadence within the minute. */
  readonly monitor: lambda.IFunction;
  /** Invoked every `sweepEveryMinutes`. */
  readonly sweep: lambda.IFunction;
  /** @default 5 */
  readonly sweepEveryMinutes?: number;
  /** Receives the RDS events and the alarms' state changes. */
  readonly rdsEvents: lambda.IFunction;
  /**
   * The instances and clusters the fleet names; events of other databases are filtered out by
   * EventBridge. @default - every RDS instance and cluster event (tag discovery)
   */
  readonly rdsSources?: RdsSources;
  /** Alarms whose ALARM state opens an incident for their target. @default none */
  readonly incidentAlarms?: readonly cw.IAlarm[];
}

const RDS_EVENT_TYPES = ['RDS DB Instance Event', 'RDS DB Cluster Event'];

/**
 * What makes pgwarden run: the monitor every minute, the idle sweep on its interval, RDS instance and
 * cluster events, and pgwarden's own per-target alarms going into ALARM.
 */
export class Schedules extends Construct {
  /** Invokes the monitor every minute. */
  public readonly monitorSchedule: events.Rule;
  /** Invokes the sweep on its interval. */
  public readonly sweepSchedule: events.Rule;
  /**
   * RDS events of the monitored databases. Absent when no target names an RDS instance or cluster
   * and discovery is off: EventBridge refuses a pattern with an empty list of identifiers.
   */
  public readonly rdsEventsRule?: events.Rule;
  /** Instance events of clusters' members, whose ids the configuration does not name. */
  public readonly clusterMemberEventsRule?: events.Rule;
  /** pgwarden's per-target alarms going into ALARM. Absent when no alarm opens incidents. */
  public readonly alarmStateChangeRule?: events.Rule;

  constructor(scope: Construct, id: string, props: SchedulesProps) {
    super(scope, id);
    // A scheduled run that could not be delivered promptly is superseded by the next one.
    const onSchedule = { retryAttempts: 0, maxEventAge: Duration.minutes(1) };

    this.monitorSchedule = new events.Rule(this, 'MonitorSchedule', {
      description: 'pgwarden: run the monitor every minute (it probes at sub-minute cadence inside the run)',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(props.monitor, onSchedule)],
    });
    const sweepEvery = props.sweepEveryMinutes ?? 5;
    this.sweepSchedule = new events.Rule(this, 'SweepSchedule', {
      description: `pgwarden: sweep idle sessions every ${sweepEvery} minute(s)`,
      schedule: events.Schedule.rate(Duration.minutes(sweepEvery)),
      targets: [new targets.LambdaFunction(props.sweep, onSchedule)],
    });

    // Events are retried for a while (delivery is best effort anyway); an hour-old event only adds
    // context to an incident the probes have long seen.
    const eventDelivery = { retryAttempts: 8, maxEventAge: Duration.hours(1) };
    const sources = props.rdsSources;
    // RDS names an event's source both bare and, for some events, as "rds:<id>".
    const withPrefix = (ids: readonly string[]) => ids.flatMap((id) => [id, `rds:${id}`]);
    const identifiers = sources ? withPrefix([...sources.instanceIds, ...sources.clusterIds]) : undefined;
    if (identifiers?.length !== 0)
      this.rdsEventsRule = new events.Rule(this, 'RdsEvents', {
        description: sources
          ? 'pgwarden: RDS events of the monitored instances and clusters'
          : 'pgwarden: RDS instance and cluster events (discovery: targets are matched at run time)',
        eventPattern: {
          source: ['aws.rds'],
          detailType: RDS_EVENT_TYPES,
          ...(identifiers ? { detail: { SourceIdentifier: identifiers } } : {}),
        },
        targets: [new targets.LambdaFunction(props.rdsEvents, eventDelivery)],
      });
    if (sources && sources.clusterIds.length > 0) {
      // A member's restart or recovery is an instance event carrying the member's own id, which is
      // chosen by RDS or autoscaling; rds-events maps it to its cluster and ignores the rest. Instances
      // the fleet names are left to the rule above, so no event is delivered twice.
      const named = withPrefix(sources.instanceIds);
      this.clusterMemberEventsRule = new events.Rule(this, 'ClusterMemberEvents', {
        description: 'pgwarden: RDS instance events, mapped to monitored clusters at run time',
        eventPattern: {
          source: ['aws.rds'],
          detailType: ['RDS DB Instance Event'],
          ...(named.length > 0 ? { detail: { SourceIdentifier: events.Match.anythingBut(...named) } } : {}),
        },
        targets: [new targets.LambdaFunction(props.rdsEvents, eventDelivery)],
      });
    }

    const alarms = props.incidentAlarms ?? [];
    if (alarms.length > 0) {
      this.alarmStateChangeRule = new events.Rule(this, 'AlarmStateChanges', {
        description: 'pgwarden: per-target alarms going into ALARM open an incident',
        eventPattern: {
          source: ['aws.cloudwatch'],
          detailType: ['CloudWatch Alarm State Change'],
          resources: alarms.map((alarm) => alarm.alarmArn),
          detail: { state: { value: ['ALARM'] } },
        },
        targets: [new targets.LambdaFunction(props.rdsEvents, eventDelivery)],
      });
    }
  }
}
