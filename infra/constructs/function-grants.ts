/**
 * What each of pgwarden's functions may do beyond writing its own logs (PgWardenFunction): one grant
 * per purpose, each naming the resources it applies to, with the reason for any wildcard beside it.
 * The Functions construct decides who gets which; the statements are written here. CDK's own `grant*`
 * methods are used where they grant exactly the actions the code sends (`Table.grant`,
 * `StateMachine.grantStartExecution`, `StateMachine.grant`); the others would grant more than that
 * (`grantInvoke` every version and alias, `grantRead` DescribeSecret, `grantDecrypt` without the
 * Secrets Manager condition, `grantPutMetricData` every namespace) or have no CDK resource to hang on
 * (RDS resources known only by ARN).
 */
import { ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { NAMESPACE } from '../../shared/metrics.ts';
import { allRdsArns, type FleetAccess } from '../access.ts';
import { acknowledgeWildcardResources } from './nag.ts';
import type { PgWardenFunction } from './pgwarden-function.ts';

/** The tag that marks discovered databases, for the opt-ins that apply to them. */
export interface DiscoveryTag {
  /** The tag's key, e.g. `pgwarden:monitor`. */
  readonly tagKey: string;
  /** The value a database's tag must have. */
  readonly tagValue: string;
}

/**
 * Lets a function that speaks SQL log in to the fleet: read the configured secrets (and decrypt them
 * with their customer-managed keys, through Secrets Manager only), and connect with IAM
 * authentication as the configured database users.
 */
export function grantDatabaseLogin(fn: PgWardenFunction, access: FleetAccess): void {
  if (access.secretArns.length > 0)
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadTargetSecrets',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [...access.secretArns],
      }),
    );
  if (access.kmsKeyArns.length > 0)
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DecryptTargetSecrets',
        actions: ['kms:Decrypt'],
        resources: [...access.kmsKeyArns],
        // Only to decrypt secrets, never to decrypt arbitrary ciphertext with these keys.
        conditions: { StringLike: { 'kms:ViaService': 'secretsmanager.*.amazonaws.com' } },
      }),
    );
  if (access.dbUserArns.length > 0)
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ConnectWithIamAuthentication',
        actions: ['rds-db:connect'],
        resources: [...access.dbUserArns],
      }),
    );
  acknowledgeWildcardResources(
    fn.role,
    access.dbUserArns,
    'rds-db:connect ARNs name the DB resource id, which RDS assigns and synth cannot know; the grant is limited to the configured database user and region.',
  );
  acknowledgeWildcardResources(
    fn.role,
    access.secretArns,
    'A secret configured by name or partial ARN is matched with the six random characters Secrets Manager appends to it.',
  );
}

/**
 * Lets `caller` invoke `callee` by its unqualified name, which is how pgwarden's functions call each
 * other; `grantInvoke` would add every version and alias as well.
 */
export function grantInvokeByName(caller: PgWardenFunction, callee: PgWardenFunction): void {
  caller.role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'InvokeFunction',
      actions: ['lambda:InvokeFunction'],
      resources: [callee.function.functionArn],
    }),
  );
}

/** Lets the monitor take and free its lease: the two item calls functions/monitor/lease.ts sends. */
export function grantMonitorLease(lease: dynamodb.ITable, monitor: PgWardenFunction): void {
  lease.grant(monitor, 'dynamodb:PutItem', 'dynamodb:DeleteItem');
}

/**
 * Lets `fn` publish metrics in pgwarden's namespace. PutMetricData has no resource-level
 * permissions; the namespace condition is what confines it.
 */
export function grantPutMetricData(fn: PgWardenFunction): void {
  fn.role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'PublishPgWardenMetrics',
      actions: ['cloudwatch:PutMetricData'],
      resources: ['*'],
      conditions: { StringEquals: { 'cloudwatch:namespace': NAMESPACE } },
    }),
  );
}

/** The wildcard every role with X-Ray and PutMetricData carries, acknowledged with its reason. */
export function acknowledgeTracingAndMetrics(fn: PgWardenFunction): void {
  Validations.of(fn.role).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'X-Ray tracing and cloudwatch:PutMetricData support no resource-level permissions; the cloudwatch:namespace condition confines PutMetricData to the PgWarden namespace.',
  });
}

/** Who lists the account's instances and clusters, and which. */
export interface FleetLookup {
  /** The function that lists. */
  readonly fn: PgWardenFunction;
  /** Lists DB instances (DescribeDBInstances). */
  readonly instances: boolean;
  /** Lists DB clusters (DescribeDBClusters). */
  readonly clusters: boolean;
}

/**
 * Discovery lists every instance and cluster to find the tagged ones; rds-events also looks up
 * which cluster an instance belongs to. Listing has no narrower resource than "all of them here".
 */
export function grantFleetLookups(scope: Construct, lookups: readonly FleetLookup[]): void {
  for (const { fn, instances, clusters } of lookups) {
    const resources = [
      ...(instances ? [allRdsArns(scope, 'db')] : []),
      ...(clusters ? [allRdsArns(scope, 'cluster')] : []),
    ];
    if (resources.length === 0) continue;
    fn.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FindDatabases',
        actions: [
          ...(instances ? ['rds:DescribeDBInstances'] : []),
          ...(clusters ? ['rds:DescribeDBClusters'] : []),
        ],
        resources,
      }),
    );
    acknowledgeWildcardResources(
      fn.role,
      resources,
      'Tag discovery lists the instances and clusters of this account and region to find the tagged ones, and an instance event must be mapped to its cluster; read-only.',
    );
  }
}

/**
 * The runbook's RDS access: read the evidence (instances, clusters, their logs, events, metrics),
 * and the destructive actions each target opted into (start, reboot, failover), on the resources
 * configured and, for discovered databases, on those carrying the discovery tag.
 */
export function grantRunbookRds(
  scope: Construct,
  runbook: PgWardenFunction,
  access: FleetAccess,
  discovery: DiscoveryTag | undefined,
): void {
  const role = runbook.role;
  const instances = access.unknownInstances ? [allRdsArns(scope, 'db')] : [...access.instanceArns];
  const clusters = access.unknownClusters ? [allRdsArns(scope, 'cluster')] : [...access.clusterArns];
  if (instances.length > 0)
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadInstanceEvidence',
        actions: ['rds:DescribeDBInstances', 'rds:DescribeDBLogFiles', 'rds:DownloadDBLogFilePortion'],
        resources: instances,
      }),
    );
  if (clusters.length > 0)
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadClusterEvidence',
        actions: ['rds:DescribeDBClusters'],
        resources: clusters,
      }),
    );
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ReadEventsAndMetrics',
      actions: ['rds:DescribeEvents', 'cloudwatch:GetMetricData'],
      resources: ['*'],
    }),
  );
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'X-Ray tracing, rds:DescribeEvents and cloudwatch:GetMetricData support no resource-level permissions; the last two are read-only evidence gathering.',
  });
  acknowledgeWildcardResources(
    role,
    [...instances, ...clusters],
    'Instances found by tag discovery, and the member instances of a monitored cluster, are only known at run time; read-only, in this account and region.',
  );

  const optIn = (
    sid: string,
    action: string,
    resources: readonly string[],
    tagged: boolean,
    kind: 'db' | 'cluster',
  ) => {
    if (resources.length > 0)
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid, actions: [action], resources: [...resources] }),
      );
    if (tagged && discovery) {
      const everything = allRdsArns(scope, kind);
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: `${sid}Discovered`,
          actions: [action],
          resources: [everything],
          conditions: { StringEquals: { [`aws:ResourceTag/${discovery.tagKey}`]: discovery.tagValue } },
        }),
      );
      acknowledgeWildcardResources(
        role,
        [everything],
        `${action} on discovered databases, which opted in through the fleet defaults; the aws:ResourceTag condition confines it to resources tagged for pgwarden.`,
      );
    }
  };
  optIn(
    'StartStoppedInstances',
    'rds:StartDBInstance',
    access.startInstanceArns,
    access.taggedOptIns.start,
    'db',
  );
  optIn(
    'StartStoppedClusters',
    'rds:StartDBCluster',
    access.startClusterArns,
    access.taggedOptIns.start,
    'cluster',
  );
  optIn(
    'RebootInstances',
    'rds:RebootDBInstance',
    access.rebootInstanceArns,
    access.taggedOptIns.reboot,
    'db',
  );
  optIn(
    'FailoverClusters',
    'rds:FailoverDBCluster',
    access.failoverClusterArns,
    access.taggedOptIns.failover,
    'cluster',
  );
}

/**
 * Lets `runbook` start the execution that continues a long incident. A policy of its own, created in
 * `scope`: the function depends on its default policy, and the state machine on the function, so a
 * statement in the default policy naming the state machine would be a circular dependency.
 */
export function grantContinueIncidents(
  scope: Construct,
  stateMachine: sfn.IStateMachine,
  runbook: PgWardenFunction,
): void {
  new iam.Policy(scope, 'RunbookContinuesIncidents', {
    roles: [runbook.role],
    statements: [
      new iam.PolicyStatement({
        sid: 'ContinueIncidents',
        actions: ['states:StartExecution'],
        resources: [stateMachine.stateMachineArn],
      }),
    ],
  });
}

/**
 * Lets a function that opens incidents start the runbook, find the running execution of a target,
 * and read an execution's status — on this state machine only.
 */
export function grantOpenIncidents(stateMachine: sfn.StateMachine, fn: PgWardenFunction): void {
  stateMachine.grantStartExecution(fn);
  stateMachine.grant(fn, 'states:ListExecutions');
  // grantExecution would do, but names the executions through Fn::Split of the ARN; the state
  // machine's name reads the same in the policy and in the acknowledgement below.
  const executions = executionsArn(stateMachine);
  fn.role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'DescribeRunbookExecutions',
      actions: ['states:DescribeExecution'],
      resources: [executions],
    }),
  );
  acknowledgeWildcardResources(
    fn.role,
    [executions],
    'DescribeExecution applies to executions, whose names are chosen per incident at run time; the grant is confined to this state machine’s executions.',
  );
}

function executionsArn(stateMachine: sfn.StateMachine): string {
  return Stack.of(stateMachine).formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: `${stateMachine.stateMachineName}:*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}
