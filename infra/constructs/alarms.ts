import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { Target } from '../../shared/target.ts';
import { alarmName } from '../names.ts';
import { fleetQuery, pgwardenMetric, wraparoundPercent } from './metrics.ts';

/** A function whose errors are alarmed, and who hears about them. */
export interface AlarmedFunction {
  /** Short name used in the alarm name: `<stack>/<name>-errors`. */
  readonly name: string;
  /** The function whose Errors metric is alarmed. */
  readonly fn: lambda.IFunction;
  /** Page on-call (true) or notify everyone (false). */
  readonly pages: boolean;
}

/** What the alarms watch and whom they tell. */
export interface AlarmsProps {
  /** Targets named in the configuration; each gets its own alarms. */
  readonly targets: readonly Target[];
  /** Targets are also discovered at run time: add fleet-wide alarms that cover them. @default false */
  readonly discovery?: boolean;
  /** Consecutive failing minutes before a target's probe-failing alarm fires. @default 3 */
  readonly probeFailingMinutes?: number;
  /** Where the alarms that page on-call send (pgwarden itself failing). */
  readonly pages: sns.ITopic;
  /** Where every other alarm tells everyone (a target's outage or pressure). */
  readonly notifications: sns.ITopic;
  /** pgwarden's functions, each alarmed on its errors. */
  readonly functions: readonly AlarmedFunction[];
  /** The runbook, alarmed on failed, timed-out and aborted executions. */
  readonly stateMachine: sfn.IStateMachine;
}

/** A target's own alarms. */
export interface TargetAlarms {
  /** The target's id, as the configuration names it. */
  readonly targetId: string;
  /** The probe has failed for `probeFailingMinutes` consecutive minutes. */
  readonly probeFailing: cw.Alarm;
  /** The target has used at least its `utilizationPct` of usable connection slots for 5 minutes. */
  readonly utilizationHigh: cw.Alarm;
  /** The oldest unfrozen transaction id is older than the target's `wraparoundAge`. */
  readonly wraparoundHigh: cw.Alarm;
}

/**
 * Alarms that work without the workflow, so a broken monitor, function or state machine still reaches
 * someone. Per-target outage and pressure alarms tell everyone and open (or join) the incident, whose
 * runbook pages once after the escalation time; what pages directly is pgwarden itself failing: a
 * dead-man's switch on the monitor (missing data pages), runbook executions that fail, incidents that
 * cannot be started, and errors of the monitor and probe functions. Every name starts with the stack
 * name (`<stack>/monitor-heartbeat-missing`, `<stack>/<target>/probe-failing`, see names.ts), which is
 * what the topics let CloudWatch publish for.
 */
export class Alarms extends Construct {
  /** Each configured target's own alarms. */
  public readonly targetAlarms: readonly TargetAlarms[];
  /** The monitor published no heartbeat: nothing is watching the fleet. */
  public readonly monitorHeartbeatMissing: cw.Alarm;
  /** One per function: it raised errors. */
  public readonly functionErrors: readonly cw.Alarm[];
  /** Runbook executions failed, timed out or were aborted. */
  public readonly runbookFailed: cw.Alarm;
  /** An outage was seen but its runbook could not be started: page, nobody follows it. */
  public readonly incidentStartFailures: cw.Alarm;
  /** Fleet-wide alarms over every target, discovered ones included (discovery only). */
  public readonly fleetAlarms: readonly cw.Alarm[];
  /** Alarms that open (or join) an incident for their target when they fire. */
  public readonly incidentAlarms: readonly cw.Alarm[];
  /** Every alarm, for the dashboard's status widget. */
  public readonly all: readonly cw.Alarm[];

  private readonly pages: sns.ITopic;
  private readonly notifications: sns.ITopic;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.pages = props.pages;
    this.notifications = props.notifications;
    const failingMinutes = props.probeFailingMinutes ?? 3;

    const perTarget = new Construct(this, 'Targets');
    this.targetAlarms = props.targets.map((target) => {
      const scope = new Construct(perTarget, target.id);
      // The target alarms open (or join) the incident through the alarm intake and tell everyone;
      // paging is the runbook's, once, after the escalation time.
      const probeFailing = this.alarm(
        scope,
        'ProbeFailing',
        {
          alarmName: alarmName(this, target.id, 'probe-failing'),
          alarmDescription: `pgwarden could not get a health snapshot of ${target.id} for ${failingMinutes} consecutive minute(s). The runbook execution for ${target.id} holds the evidence.`,
          metric: pgwardenMetric('ProbeSuccess', { target: target.id, statistic: 'Minimum' }),
          comparisonOperator: cw.ComparisonOperator.LESS_THAN_THRESHOLD,
          threshold: 1,
          evaluationPeriods: failingMinutes,
          datapointsToAlarm: failingMinutes,
          // No data means no monitor, which the heartbeat alarm reports once; not one page per target.
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        },
        false,
      );
      const utilizationHigh = this.alarm(
        scope,
        'UtilizationHigh',
        {
          alarmName: alarmName(this, target.id, 'utilization-high'),
          alarmDescription: `${target.id} has used at least ${target.thresholds.utilizationPct}% of its usable connection slots for 5 minutes; new connections will soon fail with 53300.`,
          metric: pgwardenMetric('ConnectionUtilization', { target: target.id }),
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          threshold: target.thresholds.utilizationPct,
          evaluationPeriods: 5,
          datapointsToAlarm: 5,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        },
        false,
      );
      const wraparoundHigh = this.alarm(
        scope,
        'WraparoundHigh',
        {
          alarmName: alarmName(this, target.id, 'wraparound-high'),
          alarmDescription: `The oldest unfrozen transaction id on ${target.id} is older than ${target.thresholds.wraparoundAge.toLocaleString('en-US')} transactions; vacuum (freeze) the oldest tables before PostgreSQL stops accepting writes.`,
          metric: pgwardenMetric('WraparoundPercent', {
            target: target.id,
            statistic: 'Maximum',
            period: Duration.minutes(5),
          }),
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          threshold: wraparoundPercent(target.thresholds.wraparoundAge),
          evaluationPeriods: 1,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        },
        false,
      );
      return { targetId: target.id, probeFailing, utilizationHigh, wraparoundHigh };
    });

    this.monitorHeartbeatMissing = this.alarm(this, 'MonitorHeartbeatMissing', {
      alarmName: alarmName(this, 'monitor-heartbeat-missing'),
      alarmDescription:
        'The pgwarden monitor completed no cycle for 3 minutes: no database is being probed. Check the monitor function’s errors, throttles and logs.',
      metric: pgwardenMetric('MonitorHeartbeat', { statistic: 'Sum' }),
      comparisonOperator: cw.ComparisonOperator.LESS_THAN_THRESHOLD,
      threshold: 1,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      // The dead-man's switch: a monitor that publishes nothing is exactly the failure to catch.
      treatMissingData: cw.TreatMissingData.BREACHING,
    });

    const errors = new Construct(this, 'FunctionErrors');
    this.functionErrors = props.functions.map(({ name, fn, pages }) =>
      this.alarm(
        errors,
        name,
        {
          alarmName: alarmName(this, `${name}-errors`),
          alarmDescription: `The pgwarden ${name} function failed. Its log group has the error name and message.`,
          metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          threshold: 1,
          evaluationPeriods: 1,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        },
        pages,
      ),
    );

    const period = Duration.minutes(1);
    this.runbookFailed = this.alarm(this, 'RunbookFailed', {
      alarmName: alarmName(this, 'runbook-failed'),
      alarmDescription:
        'A pgwarden runbook execution failed, timed out or was aborted: an incident may be open with nobody following it. Open the state machine’s failed executions.',
      metric: new cw.MathExpression({
        expression: 'failed + timedOut + aborted',
        usingMetrics: {
          failed: props.stateMachine.metricFailed({ period, statistic: 'Sum' }),
          timedOut: props.stateMachine.metricTimedOut({ period, statistic: 'Sum' }),
          aborted: props.stateMachine.metricAborted({ period, statistic: 'Sum' }),
        },
        label: 'Executions failed, timed out or aborted',
        period,
      }),
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      threshold: 1,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });

    this.incidentStartFailures = this.alarm(this, 'IncidentStartFailures', {
      alarmName: alarmName(this, 'incident-start-failures'),
      alarmDescription:
        'pgwarden saw an outage but could not start the runbook for it (Step Functions refused or failed), so nobody is following it. The monitor or rds-events log has the error; check the state machine and its IAM.',
      metric: pgwardenMetric('IncidentStartFailures', { statistic: 'Sum', period: Duration.minutes(5) }),
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      threshold: 1,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });

    const fleet: cw.Alarm[] = [];
    if (props.discovery) {
      // Discovered targets are unknown at synth, so they cannot have alarms of their own; a Metrics
      // Insights query aggregates every target into one series an alarm can evaluate.
      const fleetScope = new Construct(this, 'Fleet');
      fleet.push(
        this.alarm(
          fleetScope,
          'ProbeFailing',
          {
            alarmName: alarmName(this, 'fleet-probe-failing'),
            alarmDescription: `Some target's probe failed in each of ${failingMinutes} consecutive minute(s). The dashboard's fleet section shows which.`,
            metric: fleetQuery('MIN', 'ProbeSuccess'),
            comparisonOperator: cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            threshold: 1,
            evaluationPeriods: failingMinutes,
            datapointsToAlarm: failingMinutes,
            treatMissingData: cw.TreatMissingData.NOT_BREACHING,
          },
          false,
        ),
        this.alarm(
          fleetScope,
          'UtilizationHigh',
          {
            alarmName: alarmName(this, 'fleet-utilization-high'),
            alarmDescription:
              'Some target has used at least 80% of its usable connection slots for 5 minutes. The dashboard’s fleet section shows which.',
            metric: fleetQuery('MAX', 'ConnectionUtilization'),
            comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            threshold: 80,
            evaluationPeriods: 5,
            datapointsToAlarm: 5,
            treatMissingData: cw.TreatMissingData.NOT_BREACHING,
          },
          false,
        ),
        this.alarm(
          fleetScope,
          'WraparoundHigh',
          {
            alarmName: alarmName(this, 'fleet-wraparound-high'),
            alarmDescription:
              'Some target’s oldest unfrozen transaction id is older than 1 billion transactions. The dashboard’s fleet section shows which.',
            metric: fleetQuery('MAX', 'WraparoundPercent', Duration.minutes(5)),
            comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            threshold: wraparoundPercent(1_000_000_000),
            evaluationPeriods: 1,
            treatMissingData: cw.TreatMissingData.NOT_BREACHING,
          },
          false,
        ),
      );
    }
    this.fleetAlarms = fleet;
    this.incidentAlarms = this.targetAlarms.flatMap((t) => [t.probeFailing, t.utilizationHigh]);
    this.all = [
      this.monitorHeartbeatMissing,
      this.runbookFailed,
      this.incidentStartFailures,
      ...this.functionErrors,
      ...fleet,
      ...this.targetAlarms.flatMap((t) => [t.probeFailing, t.utilizationHigh, t.wraparoundHigh]),
    ];
  }

  /**
   * An alarm that pages on-call (or notifies everyone) when it fires. Its return to OK goes to the
   * notifications topic, so everyone sees the recovery, and for a paging alarm to the pages topic as
   * well, where incident tools resolve the page they opened.
   */
  private alarm(scope: Construct, id: string, props: cw.AlarmProps, pages = true): cw.Alarm {
    const alarm = new cw.Alarm(scope, id, props);
    const notify = new actions.SnsAction(this.notifications);
    if (pages) {
      const page = new actions.SnsAction(this.pages);
      alarm.addAlarmAction(page);
      alarm.addOkAction(page, notify);
    } else {
      alarm.addAlarmAction(notify);
      alarm.addOkAction(notify);
    }
    return alarm;
  }
}
