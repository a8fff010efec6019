import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { exampleConfig, grantsOf, type Json, synth } from './synth.ts';

/** Tag discovery only: no database is named at synth. */
function discoveryConfig(remediation: Record<string, boolean> = {}): Json {
  const config = exampleConfig();
  config.fleet = {
    discovery: { tagKey: 'pgwarden:monitor', tagValue: 'true' },
    defaults: { user: 'pgwarden_monitor', auth: { iam: true }, remediation },
  };
  return config;
}

describe('tag discovery', () => {
  const { template } = synth(discoveryConfig());

  it('receives every RDS instance and cluster event, targets being matched at run time', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.rds'],
        'detail-type': ['RDS DB Instance Event', 'RDS DB Cluster Event'],
        detail: Match.absent(),
      },
    });
  });

  it('lets monitor, sweep and rds-events list the instances and clusters of the account and region', () => {
    for (const role of ['FunctionsMonitorRole', 'FunctionsSweepRole', 'FunctionsRdsEventsRole']) {
      expect(JSON.stringify(grantsOf(template, role, 'rds:DescribeDBInstances'))).toContain(':db:*');
      expect(JSON.stringify(grantsOf(template, role, 'rds:DescribeDBClusters'))).toContain(':cluster:*');
    }
  });

  it('alarms on the whole fleet with Metrics Insights queries instead of per-target alarms', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgWarden/fleet-probe-failing',
      Metrics: [
        Match.objectLike({
          Expression: 'SELECT MIN(ProbeSuccess) FROM SCHEMA("PgWarden", Target)',
          Period: 60,
        }),
      ],
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      EvaluationPeriods: 3,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgWarden/fleet-utilization-high',
      Metrics: [
        Match.objectLike({ Expression: 'SELECT MAX(ConnectionUtilization) FROM SCHEMA("PgWarden", Target)' }),
      ],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgWarden/monitor-heartbeat-missing',
    });
    const names = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties.AlarmName,
    );
    expect(names.filter((n) => /probe-failing$/.test(n))).toEqual(['PgWarden/fleet-probe-failing']);
  });

  it('has no alarm-state rule, having no per-target alarm to map back to a target', () => {
    const rules = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rules.some((r) => r.Properties.EventPattern?.source?.[0] === 'aws.cloudwatch')).toBe(false);
  });

  it('graphs every target with a search over the Target dimension', () => {
    const body = JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]);
    expect(body).toContain(
      `SEARCH('{PgWarden,Target} MetricName=\\\\\\"ConnectionUtilization\\\\\\"', 'Maximum', 60)`,
    );
  });

  it('lets probe connect as the default user of discovered databases', () => {
    expect(JSON.stringify(grantsOf(template, 'FunctionsProbeRole', 'rds-db:connect'))).toContain(
      ':dbuser:*/pgwarden_monitor',
    );
    expect(grantsOf(template, 'FunctionsProbeRole', 'secretsmanager:GetSecretValue')).toEqual([]);
  });
});

describe('destructive actions', () => {
  it('are granted to no one unless a target opts in', () => {
    const { template } = synth(discoveryConfig());
    for (const action of [
      'rds:StartDBInstance',
      'rds:StartDBCluster',
      'rds:RebootDBInstance',
      'rds:FailoverDBCluster',
    ])
      for (const role of ['FunctionsRunbookRole', 'FunctionsRemediateRole', 'FunctionsMonitorRole'])
        expect(grantsOf(template, role, action), `${role} ${action}`).toEqual([]);
  });

  it('are granted on exactly the targets that opt in', () => {
    const config = exampleConfig();
    config.fleet.targets[0].remediation = { allowStartInstance: true, allowReboot: true };
    config.fleet.targets[1].remediation = { allowFailover: true };
    const { template } = synth(config);
    const on = (action: string) => JSON.stringify(grantsOf(template, 'FunctionsRunbookRole', action));
    expect(on('rds:StartDBInstance')).toContain(':db:orders-prod');
    expect(on('rds:RebootDBInstance')).toContain(':db:orders-prod');
    expect(on('rds:FailoverDBCluster')).toContain(':cluster:billing-prod');
    expect(on('rds:StartDBCluster')).toBe('[]');
    expect(on('rds:RebootDBInstance')).not.toContain('billing-prod');
  });

  it('are confined to tagged databases when discovered targets opt in through the defaults', () => {
    const { template } = synth(discoveryConfig({ allowReboot: true }));
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'rds:RebootDBInstance',
            Condition: { StringEquals: { 'aws:ResourceTag/pgwarden:monitor': 'true' } },
          }),
        ]),
      },
    });
  });
});
