import { Duration, Stack } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { MetricName } from '../../shared/metrics.ts';
import type { Target } from '../../shared/target.ts';
import { defaultDashboardName } from '../names.ts';
import { fleetSearch, pgwardenMetric, wraparoundPercent } from './metrics.ts';

/** Beyond this many static targets the dashboard shows fleet-wide searches instead of a row each. */
export const MAX_TARGET_ROWS = 20;

/** What the dashboard shows. */
export interface DashboardProps {
  /** Dashboards are global to the account. @default - `<stack name>-<region>` */
  readonly dashboardName?: string;
  /** Targets named in the configuration: one section each. */
  readonly targets: readonly Target[];
  /** Targets are also discovered at run time: add a section that searches over every target. @default false */
  readonly discovery?: boolean;
  /** pgwarden's functions, by the short name the graphs show: errors and duration. */
  readonly functions: ReadonlyArray<{ readonly name: string; readonly fn: lambda.IFunction }>;
  /** The runbook: executions started, succeeded, failed and timed out. */
  readonly stateMachine: sfn.IStateMachine;
  /** Shown in the alarm status widget. */
  readonly alarms: readonly cw.IAlarm[];
}

const GRAPH_HEIGHT = 6;

/** The console link to a dashboard, for pages and notifications. */
export function dashboardUrl(scope: Construct, name: string): string {
  const region = Stack.of(scope).region;
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${name}`;
}

/**
 * The "pgwarden" dashboard: the state of every alarm, the watcher's own health (monitor heartbeat,
 * function errors and durations, runbook executions), then one section per target with what the
 * probe sees next to what RDS reports.
 */
export class Dashboard extends Construct {
  /** The CloudWatch dashboard. */
  public readonly dashboard: cw.Dashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const name = props.dashboardName ?? defaultDashboardName(this);
    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      dashboardName: name,
      defaultInterval: Duration.hours(3),
      periodOverride: cw.PeriodOverride.AUTO,
    });
    const d = this.dashboard;

    d.addWidgets(
      new cw.TextWidget({
        width: 24,
        height: 2,
        markdown: [
          '# pgwarden',
          'Probes every target every few seconds; the alarms below page on-call through the **pages** topic and inform everyone through **notifications**. Open incidents are executions of the runbook state machine.',
        ].join('\n'),
      }),
    );
    d.addWidgets(
      new cw.AlarmStatusWidget({
        title: 'Alarms',
        width: 24,
        height: Math.min(12, 2 + Math.ceil(props.alarms.length / 4)),
        alarms: [...props.alarms],
        sortBy: cw.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
      }),
    );

    const sm = props.stateMachine;
    const minute = Duration.minutes(1);
    d.addWidgets(
      graph(
        'Monitor heartbeat (cycles per minute)',
        [pgwardenMetric('MonitorHeartbeat', { statistic: 'Sum' })],
        8,
      ),
      graph(
        'Runbook executions',
        [
          sm.metricStarted({ period: minute, statistic: 'Sum', label: 'Started' }),
          sm.metricSucceeded({ period: minute, statistic: 'Sum', label: 'Succeeded' }),
          sm.metricFailed({ period: minute, statistic: 'Sum', label: 'Failed' }),
          sm.metricTimedOut({ period: minute, statistic: 'Sum', label: 'Timed out' }),
        ],
        8,
      ),
      graph(
        'Function errors',
        props.functions.map(({ name, fn }) =>
          fn.metricErrors({ period: minute, statistic: 'Sum', label: name }),
        ),
        8,
      ),
    );
    d.addWidgets(
      graph(
        'Function duration, maximum (ms)',
        props.functions.map(({ name, fn }) =>
          fn.metricDuration({ period: minute, statistic: 'Maximum', label: name }),
        ),
        24,
      ),
    );

    const rows = props.targets.length <= MAX_TARGET_ROWS ? props.targets : [];
    for (const target of rows) this.addTarget(target);
    if (props.discovery || rows.length < props.targets.length) this.addFleet();
  }

  private addTarget(target: Target): void {
    const t = target.id;
    const m = (name: MetricName, statistic: string, label: string) =>
      pgwardenMetric(name, { target: t, statistic, label });
    const d = this.dashboard;
    d.addWidgets(new cw.TextWidget({ width: 24, height: 1, markdown: `## ${t}` }));
    d.addWidgets(
      graph('Probe success (minimum per minute)', [m('ProbeSuccess', 'Minimum', 'ProbeSuccess')], 6, {
        leftYAxis: { min: 0, max: 1 },
      }),
      graph(
        'Latency (ms)',
        [
          m('ConnectLatency', 'Average', 'connect, average'),
          m('ConnectLatency', 'Maximum', 'connect, maximum'),
          m('QueryLatency', 'Average', 'query, average'),
          m('QueryLatency', 'Maximum', 'query, maximum'),
        ],
        6,
      ),
      graph(
        'Connections by state',
        [
          m('Connections', 'Maximum', 'all'),
          m('ConnectionsActive', 'Maximum', 'active'),
          m('ConnectionsIdle', 'Maximum', 'idle'),
          m('ConnectionsIdleInTransaction', 'Maximum', 'idle in transaction'),
          m('MaxConnections', 'Maximum', 'usable slots'),
        ],
        6,
      ),
      graph('Connection utilization (%)', [m('ConnectionUtilization', 'Maximum', 'utilization')], 6, {
        leftYAxis: { min: 0, max: 100 },
        leftAnnotations: [
          { value: target.thresholds.utilizationPct, label: `${target.thresholds.utilizationPct}% alarm` },
        ],
      }),
    );
    d.addWidgets(
      graph(
        'Long queries and blocked sessions',
        [
          m('LongRunningQueries', 'Maximum', 'long-running queries'),
          m('BlockedSessions', 'Maximum', 'blocked sessions'),
        ],
        6,
      ),
      graph('Oldest open transaction (s)', [m('OldestTransactionAge', 'Maximum', 'age')], 6),
      graph('Transaction id wraparound (%)', [m('WraparoundPercent', 'Maximum', 'age of 2^31')], 6, {
        leftYAxis: { min: 0, max: 100 },
        leftAnnotations: [{ value: wraparoundPercent(target.thresholds.wraparoundAge), label: 'alarm' }],
      }),
      graph(
        'Restarts and remediation',
        [
          m('ServerRestarts', 'Sum', 'server restarts'),
          m('SessionsTerminated', 'Sum', 'sessions terminated'),
        ],
        6,
      ),
    );
    const rds = target.rds;
    if (!rds) return;
    const dimensions: Record<string, string> = rds.instanceId
      ? { DBInstanceIdentifier: rds.instanceId }
      : { DBClusterIdentifier: rds.clusterId as string };
    const r = (metricName: string, statistic: string, label: string) =>
      new cw.Metric({
        namespace: 'AWS/RDS',
        metricName,
        dimensionsMap: dimensions,
        statistic,
        period: Duration.minutes(1),
        label,
        ...(rds.region ? { region: rds.region } : {}),
      });
    d.addWidgets(
      graph('RDS CPU (%)', [r('CPUUtilization', 'Average', 'CPUUtilization')], 6, {
        leftYAxis: { min: 0, max: 100 },
      }),
      graph('RDS freeable memory (bytes)', [r('FreeableMemory', 'Minimum', 'FreeableMemory')], 6),
      graph(
        'RDS free storage (bytes)',
        rds.instanceId
          ? [r('FreeStorageSpace', 'Minimum', 'FreeStorageSpace')]
          : [
              r('FreeStorageSpace', 'Minimum', 'FreeStorageSpace'),
              r('FreeLocalStorage', 'Minimum', 'FreeLocalStorage'),
            ],
        6,
      ),
      graph('RDS database connections', [r('DatabaseConnections', 'Maximum', 'DatabaseConnections')], 6),
    );
  }

  /** Every target, discovered ones included, one line per target. */
  private addFleet(): void {
    const d = this.dashboard;
    d.addWidgets(
      new cw.TextWidget({
        width: 24,
        height: 1,
        markdown: '## All targets (including discovered databases), one line per target',
      }),
    );
    const s = fleetSearch;
    d.addWidgets(
      graph('Probe success (minimum)', [s('ProbeSuccess', 'Minimum')], 6, { leftYAxis: { min: 0, max: 1 } }),
      graph('Connect latency (ms, average)', [s('ConnectLatency', 'Average')], 6),
      graph('Connections (maximum)', [s('Connections', 'Maximum')], 6),
      graph('Connection utilization (%)', [s('ConnectionUtilization', 'Maximum')], 6, {
        leftYAxis: { min: 0, max: 100 },
        leftAnnotations: [{ value: 80, label: '80%' }],
      }),
    );
    d.addWidgets(
      graph('Long-running queries', [s('LongRunningQueries', 'Maximum')], 6),
      graph('Blocked sessions', [s('BlockedSessions', 'Maximum')], 6),
      graph('Oldest open transaction (s)', [s('OldestTransactionAge', 'Maximum')], 6),
      graph('Transaction id wraparound (%)', [s('WraparoundPercent', 'Maximum')], 6, {
        leftAnnotations: [{ value: wraparoundPercent(1_000_000_000), label: '1 billion' }],
      }),
    );
    d.addWidgets(
      graph('Sessions terminated', [s('SessionsTerminated', 'Sum')], 12),
      graph('Server restarts', [s('ServerRestarts', 'Sum')], 12),
    );
  }
}

function graph(
  title: string,
  metrics: cw.IMetric[],
  width: number,
  extra: Partial<cw.GraphWidgetProps> = {},
): cw.GraphWidget {
  return new cw.GraphWidget({ title, left: metrics, width, height: GRAPH_HEIGHT, ...extra });
}
