import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import { type MetricName, NAMESPACE, TARGET_DIMENSION } from '../../shared/metrics.ts';

/** Which of a metric's series, and how it is aggregated. */
export interface PgWardenMetricOptions {
  /** The target id; leave out for deployment-wide metrics such as MonitorHeartbeat. @default - no dimension */
  readonly target?: string;
  /** @default "Average" */
  readonly statistic?: string;
  /** @default one minute: the monitor publishes every metric at one-minute resolution */
  readonly period?: Duration;
  /** The legend of the metric on a graph. @default - the metric name */
  readonly label?: string;
}

/** One of pgwarden's own metrics, by the names and dimension the functions publish. */
export function pgwardenMetric(name: MetricName, options: PgWardenMetricOptions = {}): cw.Metric {
  return new cw.Metric({
    namespace: NAMESPACE,
    metricName: name,
    ...(options.target ? { dimensionsMap: { [TARGET_DIMENSION]: options.target } } : {}),
    statistic: options.statistic ?? 'Average',
    period: options.period ?? Duration.minutes(1),
    ...(options.label ? { label: options.label } : {}),
  });
}

/** A metric of every target, discovered ones included, for graphs (searches cannot drive alarms). */
export function fleetSearch(
  name: MetricName,
  statistic: string,
  period = Duration.minutes(1),
): cw.SearchExpression {
  return new cw.SearchExpression({
    expression: `SEARCH('{${NAMESPACE},${TARGET_DIMENSION}} MetricName="${name}"', '${statistic}', ${period.toSeconds()})`,
    label: '',
    period,
  });
}

/**
 * A Metrics Insights query over every target: one time series, so unlike a search it can drive an
 * alarm. Used when discovery makes the targets unknown at synth.
 */
export function fleetQuery(
  aggregate: 'MIN' | 'MAX',
  name: MetricName,
  period = Duration.minutes(1),
): cw.MathExpression {
  return new cw.MathExpression({
    expression: `SELECT ${aggregate}(${name}) FROM SCHEMA("${NAMESPACE}", ${TARGET_DIMENSION})`,
    usingMetrics: {},
    label: `${aggregate} ${name} of all targets`,
    period,
  });
}

/** The WraparoundPercent that corresponds to a transaction-id age (the metric is age / 2^31). */
export function wraparoundPercent(age: number): number {
  return Math.floor((age / 2 ** 31) * 10_000) / 100;
}
