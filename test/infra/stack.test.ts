import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { type METRICS, NAMESPACE } from '../../shared/metrics.ts';
import { exampleConfig, grantsOf, type Json, logicalId, statementsOf, synth } from './synth.ts';

// The example configuration: orders-prod (instance, IAM auth) and billing-prod (cluster, secret,
// allowed to start a stopped cluster).
const config = exampleConfig();
const { template } = synth(config);

const fn = (name: string) => logicalId(template, 'AWS::Lambda::Function', `Functions${name}Function`);
const getAtt = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/billing-prod-AbCdEf';

function functionProps(name: string): Json {
  return template.findResources('AWS::Lambda::Function')[fn(name)]?.Properties;
}

describe('functions', () => {
  const names = ['Probe', 'Remediate', 'Monitor', 'Sweep', 'RdsEvents', 'Runbook'];

  it('runs all six on Node.js 24 on arm64 with X-Ray tracing and source maps', () => {
    template.resourceCountIs('AWS::Lambda::Function', 6);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Environment: {
        Variables: Match.objectLike({
          NODE_OPTIONS: '--enable-source-maps',
          POWERTOOLS_SERVICE_NAME: 'pgwarden',
        }),
      },
    });
    // The probe runs six times a minute per database: traced only when its caller is.
    for (const name of names) {
      expect(functionProps(name).TracingConfig, name).toEqual({
        Mode: name === 'Probe' ? 'PassThrough' : 'Active',
      });
    }
  });

  it('puts only probe and remediate in the VPC, with the runtime CA bundle for verify-full', () => {
    const inVpc = names.filter((n) => functionProps(n).VpcConfig !== undefined);
    expect(inVpc).toEqual(['Probe', 'Remediate']);
    for (const name of inVpc) {
      expect(functionProps(name).Environment.Variables.NODE_EXTRA_CA_CERTS).toBe('/var/runtime/ca-cert.pem');
      expect(functionProps(name).VpcConfig.SubnetIds).toEqual([
        'subnet-0123456789abcdef0',
        'subnet-0fedcba9876543210',
      ]);
    }
    for (const name of names.filter((n) => !inVpc.includes(n)))
      expect(functionProps(name).Environment.Variables.NODE_EXTRA_CA_CERTS).toBeUndefined();
  });

  it('bounds every function by its job: probe 15 s, remediate 30 s, monitor below the one-minute schedule', () => {
    expect(functionProps('Probe')).toMatchObject({
      Timeout: 15,
      MemorySize: 256,
      Environment: { Variables: { PGWARDEN_CONNECT_TIMEOUT: '3s', PGWARDEN_STATEMENT_TIMEOUT: '2s' } },
    });
    expect(functionProps('Remediate')).toMatchObject({ Timeout: 30, MemorySize: 256 });
    expect(functionProps('Monitor')).toMatchObject({
      Timeout: 59,
      MemorySize: 256,
    });
    // One monitor at a time comes from its lease, not a reservation (which needs a quota of 101+).
    for (const name of names) expect(functionProps(name).ReservedConcurrentExecutions, name).toBeUndefined();
    expect(functionProps('Runbook')).toMatchObject({ Timeout: 60 });
    expect(functionProps('Sweep').Timeout).toBeLessThanOrEqual(300);
  });

  it('gives the monitor the fleet as written, the probe, the state machine and the runbook clock', () => {
    const env = functionProps('Monitor').Environment.Variables;
    expect(JSON.parse(env.PGWARDEN_TARGETS)).toEqual(config.fleet.targets);
    expect(env).toMatchObject({
      PGWARDEN_PROBE_FUNCTION: { Ref: fn('Probe') },
      PGWARDEN_STATE_MACHINE_ARN: { Ref: logicalId(template, 'AWS::StepFunctions::StateMachine', 'Runbook') },
      PGWARDEN_CADENCE: '10s',
      PGWARDEN_CONFIRM_DELAY: '1s',
      PGWARDEN_CONCURRENCY: '10',
      PGWARDEN_RUN_FOR: '51s',
      PGWARDEN_LEASE_TABLE: { Ref: logicalId(template, 'AWS::DynamoDB::Table', 'MonitorLease') },
      PGWARDEN_NAMESPACE: NAMESPACE,
      PGWARDEN_ESCALATE_AFTER: '20m',
      PGWARDEN_RECHECK_EVERY: '1m',
      PGWARDEN_MAX_DURATION: '4h',
    });
    const dashboard = JSON.stringify(env.PGWARDEN_DASHBOARD_URL);
    expect(dashboard).toContain('#dashboards/dashboard/PgWarden-');
    expect(JSON.stringify(env.PGWARDEN_CONSOLE_URL)).toContain('.console.aws.amazon.com/states/home?region=');
  });

  it('fills in the deployment region for targets whose configuration names none', () => {
    const defaults = functionProps('Monitor').Environment.Variables.PGWARDEN_DEFAULTS;
    expect(defaults['Fn::Join'][1]).toContainEqual({ Ref: 'AWS::Region' });
  });

  it('gives sweep, rds-events and runbook what they call', () => {
    expect(functionProps('Sweep').Environment.Variables).toMatchObject({
      PGWARDEN_REMEDIATE_FUNCTION: { Ref: fn('Remediate') },
      PGWARDEN_CONCURRENCY: '5',
      PGWARDEN_TARGETS: expect.any(String),
    });
    expect(functionProps('RdsEvents').Environment.Variables).toMatchObject({
      PGWARDEN_STATE_MACHINE_ARN: { Ref: logicalId(template, 'AWS::StepFunctions::StateMachine', 'Runbook') },
      PGWARDEN_NAMESPACE: NAMESPACE,
      PGWARDEN_ESCALATE_AFTER: '20m',
    });
    expect(functionProps('Runbook').Environment.Variables).toMatchObject({
      PGWARDEN_PAGES_TOPIC_ARN: { Ref: logicalId(template, 'AWS::SNS::Topic', 'TopicsPages') },
      PGWARDEN_NOTIFICATIONS_TOPIC_ARN: {
        Ref: logicalId(template, 'AWS::SNS::Topic', 'TopicsNotifications'),
      },
    });
  });

  it('logs every function to its own retained log group with the configured retention', () => {
    const groups = template.findResources('AWS::Logs::LogGroup');
    for (const name of names) {
      const group = functionProps(name).LoggingConfig.LogGroup.Ref as string;
      expect(groups[group]).toMatchObject({
        Properties: { RetentionInDays: 30 },
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
    }
  });

  it('drops a monitor or sweep run that could not start on time instead of retrying it', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fn('Monitor') },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
  });
});

describe('schedules and event rules', () => {
  it('runs the monitor every minute and the sweep every five minutes', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: getAtt(fn('Monitor')), RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [Match.objectLike({ Arn: getAtt(fn('Sweep')) })],
    });
  });

  it('delivers RDS events of the monitored instance and cluster, bare and rds:-prefixed, to rds-events', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.rds'],
        'detail-type': ['RDS DB Instance Event', 'RDS DB Cluster Event'],
        detail: { SourceIdentifier: ['orders-prod', 'rds:orders-prod', 'billing-prod', 'rds:billing-prod'] },
      },
      Targets: [Match.objectLike({ Arn: getAtt(fn('RdsEvents')) })],
    });
  });

  it("delivers the cluster members' instance events once, leaving named instances to the first rule", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.rds'],
        'detail-type': ['RDS DB Instance Event'],
        detail: { SourceIdentifier: [{ 'anything-but': ['orders-prod', 'rds:orders-prod'] }] },
      },
    });
  });

  it('opens incidents from the per-target outage and pressure alarms going into ALARM', () => {
    const alarm = (name: string) => getAtt(logicalId(template, 'AWS::CloudWatch::Alarm', name));
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.cloudwatch'],
        'detail-type': ['CloudWatch Alarm State Change'],
        resources: [
          alarm('ordersprodProbeFailing'),
          alarm('ordersprodUtilizationHigh'),
          alarm('billingprodProbeFailing'),
          alarm('billingprodUtilizationHigh'),
        ],
        detail: { state: { value: ['ALARM'] } },
      },
      Targets: [Match.objectLike({ Arn: getAtt(fn('RdsEvents')) })],
    });
  });
});

describe('runbook state machine', () => {
  const machine = logicalId(template, 'AWS::StepFunctions::StateMachine', 'Runbook');

  it('is a Standard state machine with full logging (without execution data) and tracing', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false, Destinations: Match.anyValue() },
      TracingConfiguration: { Enabled: true },
      DefinitionSubstitutions: {
        ProbeFunctionArn: getAtt(fn('Probe')),
        RemediateFunctionArn: getAtt(fn('Remediate')),
        RunbookFunctionArn: getAtt(fn('Runbook')),
      },
    });
  });

  it('logs to a retained vended-logs group whose name is new with every creation of the stack', () => {
    const named = Object.values(template.findResources('AWS::Logs::LogGroup')).filter(
      (g) => g.Properties.LogGroupName !== undefined,
    );
    expect(named).toHaveLength(1);
    expect(named[0]).toMatchObject({ Properties: { RetentionInDays: 30 }, DeletionPolicy: 'Retain' });
    // A fixed name would make the next deploy after a destroy fail on the group the old stack kept.
    expect(named[0]?.Properties.LogGroupName).toEqual({
      'Fn::Join': [
        '',
        [
          '/aws/vendedlogs/states/PgWarden-runbook-',
          {
            'Fn::Select': [
              0,
              { 'Fn::Split': ['-', { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] }] },
            ],
          },
        ],
      ],
    });
  });

  it('can invoke exactly the probe, remediate and runbook functions', () => {
    const role = template.findResources('AWS::StepFunctions::StateMachine')[machine]?.Properties.RoleArn[
      'Fn::GetAtt'
    ][0] as string;
    const invoked = grantsOf(template, role, 'lambda:InvokeFunction');
    const functions = new Set(
      invoked.map((r) => {
        const text = JSON.stringify(r);
        return /Functions(\w+?)Function/.exec(text)?.[1];
      }),
    );
    expect([...functions].sort()).toEqual(['Probe', 'Remediate', 'Runbook']);
    expect(invoked).toHaveLength(6);
  });
});

describe('notifications', () => {
  const key = logicalId(template, 'AWS::KMS::Key', 'TopicsKey');

  it('encrypts both topics with a rotating customer-managed key', () => {
    template.resourceCountIs('AWS::SNS::Topic', 2);
    template.allResourcesProperties('AWS::SNS::Topic', { KmsMasterKeyId: getAtt(key) });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  // What CloudWatch sends when an alarm acts: aws:SourceArn is the alarm's ARN, aws:SourceAccount its account.
  const thisStacksAlarms = {
    StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
    ArnLike: {
      'aws:SourceArn': {
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':cloudwatch:',
            { Ref: 'AWS::Region' },
            ':',
            { Ref: 'AWS::AccountId' },
            ':alarm:PgWarden/*',
          ],
        ],
      },
    },
  };

  it("lets this stack's CloudWatch alarms use the key to publish, and no other account's", () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Condition: thisStacksAlarms,
          }),
        ]),
      },
    });
  });

  it("lets this stack's CloudWatch alarms publish to both topics (a topic policy replaces SNS's default)", () => {
    for (const topic of ['TopicsPages', 'TopicsNotifications']) {
      const ref = { Ref: logicalId(template, 'AWS::SNS::Topic', topic) };
      template.hasResourceProperties('AWS::SNS::TopicPolicy', {
        Topics: [ref],
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Sid: 'AllowThisStacksAlarmsToPublish',
              Effect: 'Allow',
              Principal: { Service: 'cloudwatch.amazonaws.com' },
              Action: 'sns:Publish',
              Resource: ref,
              Condition: thisStacksAlarms,
            },
          ]),
        },
      });
    }
  });

  it('refuses publishing without TLS on both topics', () => {
    template.resourceCountIs('AWS::SNS::TopicPolicy', 2);
    template.allResourcesProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('subscribes the configured addresses to their topic', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
      TopicArn: { Ref: logicalId(template, 'AWS::SNS::Topic', 'TopicsPages') },
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'platform-team@example.com',
      TopicArn: { Ref: logicalId(template, 'AWS::SNS::Topic', 'TopicsNotifications') },
    });
  });
});

describe('dashboard', () => {
  const body = () => JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]);

  it('is named after the stack and region (dashboards are global), or as the configuration says', () => {
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', {
      DashboardName: { 'Fn::Join': ['', ['PgWarden-', { Ref: 'AWS::Region' }]] },
    });
    const named = synth({ ...exampleConfig(), dashboardName: 'orders-oncall' }).template;
    named.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'orders-oncall' });
  });

  it("graphs every target's probe metrics and RDS's own metrics by instance or cluster", () => {
    const text = body();
    for (const metric of [
      'ProbeSuccess',
      'ConnectLatency',
      'QueryLatency',
      'ConnectionsIdleInTransaction',
      'MaxConnections',
      'ConnectionUtilization',
      'LongRunningQueries',
      'BlockedSessions',
      'OldestTransactionAge',
      'WraparoundPercent',
      'SessionsTerminated',
      'ServerRestarts',
      'MonitorHeartbeat',
    ] satisfies Array<keyof typeof METRICS>)
      expect(text).toContain(`\\"${metric}\\"`);
    expect(text).toContain('\\"Target\\",\\"orders-prod\\"');
    expect(text).toContain('\\"Target\\",\\"billing-prod\\"');
    expect(text).toContain('\\"AWS/RDS\\",\\"CPUUtilization\\",\\"DBInstanceIdentifier\\",\\"orders-prod\\"');
    expect(text).toContain('\\"DBClusterIdentifier\\",\\"billing-prod\\"');
    expect(text).toContain('ExecutionsFailed');
    expect(text).toContain('\\"type\\":\\"alarm\\"');
    expect(text).not.toContain('SEARCH(');
  });
});

describe('alarms', () => {
  const pages = { Ref: logicalId(template, 'AWS::SNS::Topic', 'TopicsPages') };
  const notifications = { Ref: logicalId(template, 'AWS::SNS::Topic', 'TopicsNotifications') };

  it('notifies (and opens the incident) when a target cannot be probed for 3 consecutive minutes, leaving missing data to the heartbeat', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgWarden/orders-prod/probe-failing',
      Namespace: NAMESPACE,
      MetricName: 'ProbeSuccess',
      Dimensions: [{ Name: 'Target', Value: 'orders-prod' }],
      Statistic: 'Minimum',
      Period: 60,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
      AlarmActions: [notifications],
      OKActions: [notifications],
    });
  });

  it('notifies (and opens the incident) when a target uses 80% of its connection slots for 5 minutes', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgWarden/billing-prod/utilization-high',
      MetricName: 'ConnectionUtilization',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 80,
      EvaluationPeriods: 5,
      AlarmActions: [notifications],
    });
  });

  it('pages when an incident could not be started, since nobody follows that outage', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgWarden/incident-start-failures',
      Namespace: NAMESPACE,
      MetricName: 'IncidentStartFailures',
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [pages],
    });
  });

  it('notifies when the transaction-id age passes 1 billion (46.56% of 2^31)', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgWarden/orders-prod/wraparound-high',
      MetricName: 'WraparoundPercent',
      Statistic: 'Maximum',
      Threshold: 46.56,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [notifications],
      OKActions: [notifications],
    });
  });

  it('pages when the monitor publishes no heartbeat for 3 minutes, missing data counting as breaching', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgWarden/monitor-heartbeat-missing',
      Namespace: NAMESPACE,
      MetricName: 'MonitorHeartbeat',
      Dimensions: Match.absent(),
      Statistic: 'Sum',
      Period: 60,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      EvaluationPeriods: 3,
      TreatMissingData: 'breaching',
      AlarmActions: [pages],
    });
  });

  it('pages on monitor and probe errors and notifies on the other functions’ errors', () => {
    for (const [name, topic] of [
      ['monitor', pages],
      ['probe', pages],
      ['remediate', notifications],
      ['sweep', notifications],
      ['rds-events', notifications],
      ['runbook', notifications],
    ] as const)
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmName: `PgWarden/${name}-errors`,
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: [topic],
      });
  });

  it('pages when a runbook execution fails, times out or is aborted', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'PgWarden/runbook-failed',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'failed + timedOut + aborted' }),
        Match.objectLike({
          MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ExecutionsFailed' }) }),
        }),
        Match.objectLike({
          MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ExecutionsTimedOut' }) }),
        }),
        Match.objectLike({
          MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ExecutionsAborted' }) }),
        }),
      ]),
      AlarmActions: [pages],
    });
  });

  it("names every alarm under the stack's name, a target's alarms under the target id", () => {
    const names = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties.AlarmName as string,
    );
    // 3 per target, heartbeat, one per function, runbook failed, incident start failures
    expect(names).toHaveLength(2 * 3 + 1 + 6 + 1 + 1);
    for (const name of names) expect(name).toMatch(/^PgWarden\/([a-z0-9-]+\/)?[a-z-]+$/);
    expect(names.filter((n) => n.split('/').length === 3).sort()).toEqual([
      'PgWarden/billing-prod/probe-failing',
      'PgWarden/billing-prod/utilization-high',
      'PgWarden/billing-prod/wraparound-high',
      'PgWarden/orders-prod/probe-failing',
      'PgWarden/orders-prod/utilization-high',
      'PgWarden/orders-prod/wraparound-high',
    ]);
  });
});

describe('least privilege', () => {
  it('lets the monitor start and list executions of the runbook state machine only', () => {
    const machine = { Ref: logicalId(template, 'AWS::StepFunctions::StateMachine', 'Runbook') };
    expect(grantsOf(template, 'FunctionsMonitorRole', 'states:StartExecution')).toEqual([machine]);
    expect(grantsOf(template, 'FunctionsMonitorRole', 'states:ListExecutions')).toEqual([machine]);
    const described = JSON.stringify(grantsOf(template, 'FunctionsMonitorRole', 'states:DescribeExecution'));
    expect(described).toContain(':execution:');
    expect(described).toContain('"Name"');
  });

  it('lets the monitor invoke the probe and nothing else', () => {
    expect(grantsOf(template, 'FunctionsMonitorRole', 'lambda:InvokeFunction')).toEqual([
      getAtt(fn('Probe')),
    ]);
    expect(grantsOf(template, 'FunctionsSweepRole', 'lambda:InvokeFunction')).toEqual([
      getAtt(fn('Remediate')),
    ]);
  });

  it('publishes metrics only into the PgWarden namespace', () => {
    const statement = statementsOf(template, 'FunctionsMonitorRole').find(
      (s) => s.Action === 'cloudwatch:PutMetricData',
    );
    expect(statement?.Condition).toEqual({ StringEquals: { 'cloudwatch:namespace': NAMESPACE } });
    expect(grantsOf(template, 'FunctionsProbeRole', 'cloudwatch:PutMetricData')).toEqual([]);
  });

  it('lets probe and remediate read only the configured secret and connect only as the configured user', () => {
    for (const role of ['FunctionsProbeRole', 'FunctionsRemediateRole']) {
      expect(grantsOf(template, role, 'secretsmanager:GetSecretValue')).toEqual([SECRET]);
      const connect = JSON.stringify(grantsOf(template, role, 'rds-db:connect'));
      expect(connect).toContain(':dbuser:*/pgwarden_monitor');
    }
    expect(grantsOf(template, 'FunctionsMonitorRole', 'secretsmanager:GetSecretValue')).toEqual([]);
  });

  it('lets the state machine, not the runbook function, publish to both topics; the runbook starts only the opted-in cluster', () => {
    const topics = Object.keys(template.findResources('AWS::SNS::Topic')).map((id) => ({ Ref: id }));
    expect(grantsOf(template, 'RunbookStateMachineRole', 'sns:Publish')).toEqual(
      expect.arrayContaining(topics),
    );
    expect(grantsOf(template, 'RunbookStateMachineRole', 'sns:Publish')).toHaveLength(2);
    expect(grantsOf(template, 'RunbookStateMachineRole', 'kms:GenerateDataKey*')).toEqual([
      { 'Fn::GetAtt': [logicalId(template, 'AWS::KMS::Key', 'TopicsKey'), 'Arn'] },
    ]);
    expect(grantsOf(template, 'FunctionsRunbookRole', 'sns:Publish')).toEqual([]);
    expect(JSON.stringify(grantsOf(template, 'FunctionsRunbookRole', 'rds:StartDBCluster'))).toContain(
      ':cluster:billing-prod',
    );
    expect(grantsOf(template, 'FunctionsRunbookRole', 'rds:StartDBInstance')).toEqual([]);
    expect(grantsOf(template, 'FunctionsRunbookRole', 'rds:RebootDBInstance')).toEqual([]);
    expect(grantsOf(template, 'FunctionsRunbookRole', 'rds:FailoverDBCluster')).toEqual([]);
  });

  it('lets the runbook function start only its own state machine, to continue a long incident', () => {
    const machine = logicalId(template, 'AWS::StepFunctions::StateMachine', 'Runbook');
    expect(grantsOf(template, 'FunctionsRunbookRole', 'states:StartExecution')).toEqual([{ Ref: machine }]);
    const states = statementsOf(template, 'FunctionsRunbookRole').flatMap((s) =>
      ([] as string[]).concat(s.Action as string | string[]).filter((a) => a.startsWith('states:')),
    );
    expect(states).toEqual(['states:StartExecution']);
    // The state machine calls no Step Functions API itself: its role has no self-reference.
    expect(JSON.stringify(statementsOf(template, 'RunbookStateMachineRole'))).not.toContain('states:');
  });

  it('attaches no AWS managed policy to any function role', () => {
    for (const role of Object.values(template.findResources('AWS::IAM::Role')))
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });
});

describe('network', () => {
  it('lets the function security group reach only PostgreSQL on the databases and the Secrets Manager endpoint', () => {
    const group = logicalId(template, 'AWS::EC2::SecurityGroup', 'NetworkFunctionSecurityGroup');
    const egress = template.findResources('AWS::EC2::SecurityGroupEgress');
    const rules = Object.values(egress)
      .filter((r) => r.Properties.GroupId['Fn::GetAtt']?.[0] === group)
      .map((r) => [r.Properties.FromPort, r.Properties.ToPort]);
    expect(rules.sort()).toEqual([
      [443, 443],
      [5432, 5432],
    ]);
  });

  it('adds an ingress rule from the functions to the database security group', () => {
    const group = logicalId(template, 'AWS::EC2::SecurityGroup', 'NetworkFunctionSecurityGroup');
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: 'sg-0123456789abcdef0',
      IpProtocol: 'tcp',
      FromPort: 5432,
      ToPort: 5432,
      SourceSecurityGroupId: { 'Fn::GetAtt': [group, 'GroupId'] },
    });
  });

  it('creates a Secrets Manager endpoint with private DNS that serves only the configured secret', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
      ServiceName: Match.objectLike({ 'Fn::Join': Match.anyValue() }),
      PolicyDocument: {
        Statement: [Match.objectLike({ Action: 'secretsmanager:GetSecretValue', Resource: SECRET })],
      },
    });
  });
});
