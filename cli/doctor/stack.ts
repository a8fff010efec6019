/**
 * The deployed side of `pgwarden doctor --stack`: with the caller's AWS credentials, is the stack
 * complete, does a page reach a person, is the monitor alive, did every target answer its last probe,
 * and will the monitor, its probes and their credentials still work on the night they are needed.
 */
import {
  DescribeAlarmsCommand,
  type DescribeAlarmsCommandOutput,
  GetMetricDataCommand,
  type GetMetricDataCommandOutput,
  ListMetricsCommand,
  type ListMetricsCommandOutput,
  type MetricAlarm,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import { FilterLogEventsCommand, type FilterLogEventsCommandOutput } from '@aws-sdk/client-cloudwatch-logs';
import {
  GetPolicyCommand,
  type GetPolicyCommandOutput,
  GetPolicyVersionCommand,
  type GetPolicyVersionCommandOutput,
  GetRolePolicyCommand,
  type GetRolePolicyCommandOutput,
  ListAttachedRolePoliciesCommand,
  type ListAttachedRolePoliciesCommandOutput,
  ListRolePoliciesCommand,
  type ListRolePoliciesCommandOutput,
} from '@aws-sdk/client-iam';
import { GetAccountSettingsCommand, type GetAccountSettingsCommandOutput } from '@aws-sdk/client-lambda';
import {
  DescribeDBClustersCommand,
  type DescribeDBClustersCommandOutput,
  DescribeDBInstancesCommand,
  type DescribeDBInstancesCommandOutput,
} from '@aws-sdk/client-rds';
import { DescribeSecretCommand, type DescribeSecretCommandOutput } from '@aws-sdk/client-secrets-manager';
import { monitorSettings } from '../../functions/monitor/settings.ts';
import { explainCategory, FAILURE_CATEGORIES, type FailureCategory } from '../../shared/classify.ts';
import { describeConnection } from '../../shared/connection.ts';
import { secretRegion } from '../../shared/credentials.ts';
import { formatDuration } from '../../shared/duration.ts';
import { describeError } from '../../shared/errors.ts';
import type { Fleet } from '../../shared/fleet.ts';
import { NAMESPACE, TARGET_DIMENSION } from '../../shared/metrics.ts';
import type { Target } from '../../shared/target.ts';
import { type AwsClients, awsErrorName, awsErrorText, awsFix, call, type Sender } from './aws.ts';
import {
  type Deployment,
  deployedMonitor,
  deployedSweepConcurrency,
  describeDeployment,
  functionConfiguration,
  LOGICAL_IDS,
  OUTPUTS,
  physicalId,
} from './deployment.ts';
import { evaluate, type PolicyDocument, parsePolicyDocument } from './iam-policy.ts';
import { type Check, fail, ok, warn } from './report.ts';
import { listSubscriptions, type Subscription, subscriptionsCheck } from './subscriptions.ts';

/** How far back the doctor reads metrics and log lines. */
const LOOKBACK_MS = 10 * 60_000;
/** A heartbeat older than this means the monitor has stopped. */
export const HEARTBEAT_FRESH_MS = 5 * 60_000;
/** An alarm created or changed this recently may not have evaluated yet. */
const ALARM_SETTLING_MS = 15 * 60_000;

export interface StackDoctorOptions {
  /** @default Date.now */
  now?: () => number;
}

/** Every deployed-side check for `stackName`. Never throws: an AWS call that fails is a check's finding. */
export async function stackChecks(
  stackName: string,
  clients: AwsClients,
  options: StackDoctorOptions = {},
): Promise<Check[]> {
  const now = (options.now ?? Date.now)();
  let deployment: Deployment | undefined;
  try {
    deployment = await describeDeployment(stackName, clients);
  } catch (error) {
    return [
      fail(
        'stack',
        `could not read stack ${stackName} in ${clients.region}: ${awsErrorText(error)}`,
        awsFix(error, 'cloudformation:DescribeStacks and cloudformation:ListStackResources'),
      ),
    ];
  }
  if (!deployment)
    return [
      fail(
        'stack',
        `no stack named ${stackName} in ${clients.region}`,
        `Deploy it (npx cdk deploy${stackName === 'PgWarden' ? '' : ` -c stackName=${stackName}`}), or name the stack and region it is in: --stack <name> --region <region> (aws cloudformation list-stacks shows them).`,
      ),
    ];
  const status = stackStatus(deployment);
  const pagesTopic = deployment.outputs[OUTPUTS.pagesTopic];
  const notificationsTopic = deployment.outputs[OUTPUTS.notificationsTopic];
  if (status.status === 'fail') return [status];
  if (!pagesTopic || !notificationsTopic)
    return [
      fail(
        'stack',
        `${stackName} has no ${OUTPUTS.pagesTopic} / ${OUTPUTS.notificationsTopic} outputs: it is not a pgwarden stack, or its deployment never finished`,
        'Name the pgwarden stack with --stack (PgWarden unless deployed with -c stackName=...).',
      ),
    ];
  const checks: Check[] = [status];
  checks.push(await topicCheck(clients, 'topic.pages', pagesTopic, 'pages', true));
  checks.push(await topicCheck(clients, 'topic.notifications', notificationsTopic, 'notifications', false));

  const monitorName = physicalId(deployment, LOGICAL_IDS.monitorFunction);
  let monitor: ReturnType<typeof deployedMonitor> | undefined;
  try {
    if (!monitorName) throw new Error(`the stack has no ${LOGICAL_IDS.monitorFunction}... resource`);
    const configuration = await functionConfiguration(clients, monitorName);
    try {
      monitor = deployedMonitor(configuration, clients.region);
    } catch (error) {
      checks.push(
        fail(
          'fleet',
          `the deployed monitor's environment does not parse, so the monitor fails at every cold start: ${describeError(error)}`,
          'Deploy again (npx cdk deploy): the environment is written from the configuration file.',
        ),
      );
    }
  } catch (error) {
    checks.push(
      fail(
        'fleet',
        `could not read the monitor function's configuration: ${awsErrorText(error)}`,
        awsFix(error, 'lambda:GetFunctionConfiguration'),
      ),
    );
  }
  const fleet = monitor?.fleet;
  if (fleet)
    checks.push(
      ok(
        'fleet',
        `the monitor watches ${fleet.targets.length} configured target(s)${fleet.targets.length ? `: ${fleet.targets.map((t) => t.id).join(', ')}` : ''}${fleet.discovery ? `, and every database tagged ${fleet.discovery.tagKey}=${fleet.discovery.tagValue}` : ''}`,
      ),
    );
  const namespace = monitor?.namespace ?? NAMESPACE;

  const alarms = await readAlarms(clients, stackName);
  const heartbeatAlarmName = `${stackName}/monitor-heartbeat-missing`;
  const targetIds = fleet ? await probedTargets(clients, namespace, fleet) : [];
  const series = await readSeries(clients, namespace, targetIds, now);

  const heartbeat = heartbeatCheck(series, alarms, heartbeatAlarmName, now);
  checks.push(heartbeat, alarmsCheck(alarms, stackName, heartbeatAlarmName, now));

  if (fleet) {
    const heartbeatAlive = heartbeat.status !== 'fail';
    const failures = await lastFailures(clients, deployment, now);
    for (const id of targetIds)
      checks.push(
        probeCheck(
          id,
          series,
          failures,
          heartbeatAlive,
          fleet.targets.find((t) => t.id === id),
          now,
        ),
      );
    checks.push(await concurrencyCheckOf(clients, deployment, monitor?.concurrency, targetIds.length));
    for (const target of fleet.targets)
      if (target.connection.auth.kind === 'iam') checks.push(await iamAuthCheck(clients, target));
    const secretTargets = fleet.targets.filter((t) => t.connection.auth.kind === 'secret');
    if (secretTargets.length > 0) {
      const policies = await probeRolePolicies(clients, monitor?.probeFunction);
      for (const target of secretTargets) checks.push(await secretCheck(clients, target, policies));
    }
  }
  return checks;
}

function stackStatus(d: Deployment): Check {
  const when = d.updatedAt ?? d.createdAt;
  const summary = `${d.stackName} in ${d.region}: ${d.status}${when ? `, last changed ${when.toISOString()}` : ''}`;
  const events = `aws cloudformation describe-stack-events --stack-name ${d.stackName} --region ${d.region} shows the first failed event`;
  if (/^(CREATE|UPDATE|IMPORT)_COMPLETE$/.test(d.status)) return ok('stack', summary);
  if (d.status === 'UPDATE_ROLLBACK_COMPLETE')
    return warn(
      'stack',
      `${summary}: the last update was rolled back, so the stack runs the version before it`,
      `Fix what failed (${events}) and deploy again.`,
    );
  if (d.status.endsWith('_IN_PROGRESS'))
    return warn(
      'stack',
      `${summary}: an operation is still running`,
      'Run the doctor again once it has completed.',
    );
  return fail(
    'stack',
    `${summary}${d.statusReason ? ` (${d.statusReason})` : ''}: the stack is not in service`,
    `Fix what failed (${events}); a stack in ROLLBACK_COMPLETE must be deleted (npx cdk destroy) before it can be deployed again.`,
  );
}

async function topicCheck(
  clients: AwsClients,
  id: string,
  topicArn: string,
  topic: 'pages' | 'notifications',
  required: boolean,
): Promise<Check> {
  let subscriptions: Subscription[];
  try {
    subscriptions = await listSubscriptions(clients.sns, topicArn);
  } catch (error) {
    return warn(
      id,
      `could not list the subscriptions of ${topicArn}: ${awsErrorText(error)}`,
      awsFix(error, 'sns:ListSubscriptionsByTopic'),
    );
  }
  return subscriptionsCheck(id, topic, topicArn, subscriptions, required);
}

async function readAlarms(clients: AwsClients, stackName: string): Promise<MetricAlarm[] | Error> {
  const alarms: MetricAlarm[] = [];
  try {
    let token: string | undefined;
    do {
      const page: DescribeAlarmsCommandOutput = await call(
        clients.cloudwatch,
        new DescribeAlarmsCommand({
          AlarmNamePrefix: `${stackName}/`,
          ...(token ? { NextToken: token } : {}),
        }),
      );
      alarms.push(...(page.MetricAlarms ?? []));
      token = page.NextToken;
    } while (token);
    return alarms;
  } catch (error) {
    return error instanceof Error ? error : new Error(describeError(error));
  }
}

/** Configured targets, and any other target the monitor has published ProbeSuccess for lately (discovery). */
async function probedTargets(clients: AwsClients, namespace: string, fleet: Fleet): Promise<string[]> {
  const ids = fleet.targets.map((t) => t.id);
  if (!fleet.discovery) return ids;
  try {
    let token: string | undefined;
    do {
      const page: ListMetricsCommandOutput = await call(
        clients.cloudwatch,
        new ListMetricsCommand({
          Namespace: namespace,
          MetricName: 'ProbeSuccess',
          RecentlyActive: 'PT3H',
          ...(token ? { NextToken: token } : {}),
        }),
      );
      for (const metric of page.Metrics ?? []) {
        const id = metric.Dimensions?.find((d) => d.Name === TARGET_DIMENSION)?.Value;
        if (id && !ids.includes(id)) ids.push(id);
      }
      token = page.NextToken;
    } while (token);
  } catch {
    // Discovered targets are then unknown; the configured ones are still checked.
  }
  return ids;
}

interface Series {
  /** Newest first. */
  points: Array<{ at: number; value: number }>;
}

type SeriesMap = Map<string, Series> | Error;

/** The heartbeat, and each target's ProbeSuccess minimum and average per minute, in one call per 250 targets. */
async function readSeries(
  clients: AwsClients,
  namespace: string,
  targetIds: readonly string[],
  now: number,
): Promise<SeriesMap> {
  const queries: Array<MetricDataQuery & { Id: string; key: string }> = [
    {
      Id: 'heartbeat',
      key: 'heartbeat',
      MetricStat: {
        Metric: { Namespace: namespace, MetricName: 'MonitorHeartbeat' },
        Period: 60,
        Stat: 'Sum',
      },
    },
  ];
  targetIds.forEach((id, i) => {
    for (const stat of ['Minimum', 'Average'] as const)
      queries.push({
        Id: `${stat === 'Minimum' ? 'min' : 'avg'}${i}`,
        key: `${stat}:${id}`,
        MetricStat: {
          Metric: {
            Namespace: namespace,
            MetricName: 'ProbeSuccess',
            Dimensions: [{ Name: TARGET_DIMENSION, Value: id }],
          },
          Period: 60,
          Stat: stat,
        },
      });
  });
  const out = new Map<string, Series>();
  try {
    for (let i = 0; i < queries.length; i += 500) {
      const batch = queries.slice(i, i + 500);
      const keyOf = new Map(batch.map((q) => [q.Id, q.key]));
      let token: string | undefined;
      do {
        const page: GetMetricDataCommandOutput = await call(
          clients.cloudwatch,
          new GetMetricDataCommand({
            StartTime: new Date(now - LOOKBACK_MS),
            EndTime: new Date(now),
            MetricDataQueries: batch.map(({ key: _key, ...q }) => q),
            ...(token ? { NextToken: token } : {}),
          }),
        );
        for (const result of page.MetricDataResults ?? []) {
          const key = keyOf.get(result.Id ?? '');
          if (!key) continue;
          const series = out.get(key) ?? { points: [] };
          (result.Timestamps ?? []).forEach((t, j) => {
            const value = result.Values?.[j];
            if (value !== undefined) series.points.push({ at: t.getTime(), value });
          });
          series.points.sort((a, b) => b.at - a.at);
          out.set(key, series);
        }
        token = page.NextToken;
      } while (token);
    }
    return out;
  } catch (error) {
    return error instanceof Error ? error : new Error(describeError(error));
  }
}

const ago = (now: number, at: number) => `${formatDuration(Math.max(0, now - at))} ago`;

function heartbeatCheck(
  series: SeriesMap,
  alarms: MetricAlarm[] | Error,
  alarmName: string,
  now: number,
): Check {
  const id = 'monitor.heartbeat';
  if (series instanceof Error)
    return warn(
      id,
      `could not read the MonitorHeartbeat metric: ${awsErrorText(series)}`,
      awsFix(series, 'cloudwatch:GetMetricData'),
    );
  const alarm = alarms instanceof Error ? undefined : alarms.find((a) => a.AlarmName === alarmName);
  const alarmText =
    alarms instanceof Error
      ? `its alarm could not be read (${awsErrorText(alarms)})`
      : alarm
        ? `its alarm ${alarmName} is ${alarm.StateValue}`
        : `its alarm ${alarmName} does not exist`;
  const latest = series.get('heartbeat')?.points.find((p) => p.value > 0);
  const dead =
    'The monitor is not running: look at its log and errors (the monitor-errors alarm), its EventBridge schedule (enabled?) and the account’s Lambda concurrency (lambda.concurrency).';
  if (!latest || now - latest.at > HEARTBEAT_FRESH_MS)
    return fail(
      id,
      `no monitor heartbeat ${latest ? `since ${new Date(latest.at).toISOString()} (${ago(now, latest.at)})` : `in the last ${formatDuration(LOOKBACK_MS)}`}: nothing is probing the databases; ${alarmText}`,
      dead,
    );
  const summary = `the monitor's last heartbeat was ${ago(now, latest.at)}; ${alarmText}`;
  if (alarms instanceof Error) return warn(id, summary, awsFix(alarms, 'cloudwatch:DescribeAlarms'));
  if (!alarm)
    return warn(
      id,
      summary,
      'Deploy the stack again (npx cdk deploy): the dead-man’s switch that pages when the monitor stops is missing.',
    );
  if (alarm.StateValue !== 'OK')
    return warn(
      id,
      `${summary}${alarm.StateReason ? ` (${alarm.StateReason})` : ''}`,
      'It returns to OK within 3 minutes of heartbeats; if it does not, look at the monitor’s log and the alarm’s history.',
    );
  return ok(id, summary);
}

function alarmsCheck(
  alarms: MetricAlarm[] | Error,
  stackName: string,
  heartbeat: string,
  now: number,
): Check {
  const id = 'alarms';
  if (alarms instanceof Error)
    return warn(
      id,
      `could not read the alarms: ${awsErrorText(alarms)}`,
      awsFix(alarms, 'cloudwatch:DescribeAlarms'),
    );
  if (alarms.length === 0)
    return fail(
      id,
      `no alarm named ${stackName}/...: nothing pages when the monitor or the runbook fails`,
      'Deploy the stack again (npx cdk deploy).',
    );
  const others = alarms.filter((a) => a.AlarmName !== heartbeat);
  const firing = others.filter((a) => a.StateValue === 'ALARM');
  const settling = (a: MetricAlarm) => {
    const changed = a.AlarmConfigurationUpdatedTimestamp?.getTime();
    return changed !== undefined && now - changed < ALARM_SETTLING_MS;
  };
  const unexplained = others.filter((a) => a.StateValue === 'INSUFFICIENT_DATA' && !settling(a));
  const describe = (a: MetricAlarm) => `${a.AlarmName}${a.StateReason ? ` (${a.StateReason})` : ''}`;
  if (firing.length > 0)
    return fail(
      id,
      `${firing.length} alarm(s) in ALARM: ${firing.map(describe).join('; ')}`,
      'Each one says what is wrong in its description (aws cloudwatch describe-alarms --alarm-names ...); a target’s alarm has an incident, whose runbook execution holds the evidence.',
    );
  if (unexplained.length > 0)
    return warn(
      id,
      `${unexplained.length} alarm(s) in INSUFFICIENT_DATA for no reason pgwarden knows: ${unexplained.map(describe).join('; ')}`,
      'An alarm with no data is blind: check that its metric is still published (the monitor’s heartbeat, the function it watches), and its history in the CloudWatch console.',
    );
  const young = others.filter((a) => a.StateValue === 'INSUFFICIENT_DATA').length;
  return ok(
    id,
    `${others.length} alarm(s) besides the heartbeat's, none in ALARM${young ? `; ${young} created or changed in the last ${formatDuration(ALARM_SETTLING_MS)} and not evaluated yet` : ''}`,
  );
}

/** Each target's failure category in the monitor's latest run summary (its "monitor run complete" log line). */
async function lastFailures(
  clients: AwsClients,
  deployment: Deployment,
  now: number,
): Promise<Map<string, FailureCategory> | Error> {
  const group = physicalId(deployment, LOGICAL_IDS.monitorLogGroup);
  if (!group) return new Error('the stack has no monitor log group');
  try {
    let latest: { at: number; message: string } | undefined;
    let token: string | undefined;
    let pages = 0;
    do {
      const page: FilterLogEventsCommandOutput = await call(
        clients.logs,
        new FilterLogEventsCommand({
          logGroupName: group,
          filterPattern: '"monitor run complete"',
          startTime: now - LOOKBACK_MS,
          ...(token ? { nextToken: token } : {}),
        }),
      );
      for (const event of page.events ?? [])
        if (event.timestamp !== undefined && (!latest || event.timestamp > latest.at))
          latest = { at: event.timestamp, message: event.message ?? '' };
      token = page.nextToken;
      pages += 1;
    } while (token && pages < 10);
    const failures = new Map<string, FailureCategory>();
    if (!latest) return failures;
    // Powertools writes one JSON object per line; Lambda may put its own prefix before it.
    const start = latest.message.indexOf('{');
    const line = JSON.parse(start >= 0 ? latest.message.slice(start) : latest.message) as {
      targets?: Array<{ targetId?: unknown; failure?: unknown }>;
    };
    for (const t of line.targets ?? []) {
      const category = (FAILURE_CATEGORIES as readonly unknown[]).includes(t.failure)
        ? (t.failure as FailureCategory)
        : undefined;
      if (typeof t.targetId === 'string' && category) failures.set(t.targetId, category);
    }
    return failures;
  } catch (error) {
    return error instanceof Error ? error : new Error(describeError(error));
  }
}

function probeCheck(
  targetId: string,
  series: SeriesMap,
  failures: Map<string, FailureCategory> | Error,
  heartbeatAlive: boolean,
  target: Target | undefined,
  now: number,
): Check {
  const id = `probe.${targetId}`;
  if (series instanceof Error)
    return warn(
      id,
      `could not read ProbeSuccess: ${awsErrorText(series)}`,
      awsFix(series, 'cloudwatch:GetMetricData'),
    );
  const min = series.get(`Minimum:${targetId}`)?.points[0];
  const avg = series.get(`Average:${targetId}`)?.points[0];
  const where = target ? ` (${describeConnection(target.connection)})` : '';
  const url = target
    ? `postgres://${target.connection.user ?? 'USER'}@${target.connection.host}:${target.connection.port}/${target.connection.database}`
    : 'postgres://USER@HOST:5432/DATABASE';
  const check = `run pgwarden doctor --url ${url} from a machine in the database's VPC to see what the probe meets`;
  if (!min || !avg)
    return fail(
      id,
      `no probe result for ${targetId}${where} in the last ${formatDuration(LOOKBACK_MS)}${heartbeatAlive ? '' : ': the monitor is not running (monitor.heartbeat)'}`,
      heartbeatAlive
        ? `The monitor runs but does not probe ${targetId}: look for errors about it in the monitor's log.`
        : 'Get the monitor running again (see monitor.heartbeat).',
    );
  const minute = new Date(min.at).toISOString().slice(11, 16);
  if (now - min.at > HEARTBEAT_FRESH_MS)
    return fail(
      id,
      `${targetId}${where}: its last probe result is from ${minute} UTC (${ago(now, min.at)})${heartbeatAlive ? ', though the monitor runs' : ': the monitor is not running (monitor.heartbeat)'}`,
      heartbeatAlive
        ? `The monitor runs but no longer probes ${targetId}: look for errors about it in the monitor's log (and, with discovery, check its tags).`
        : 'Get the monitor running again (see monitor.heartbeat).',
    );
  if (min.value >= 1)
    return ok(id, `${targetId}${where}: every probe succeeded in its last cycle (${minute} UTC)`);
  const category = failures instanceof Error ? undefined : failures.get(targetId);
  const why = category
    ? `${category}: ${explainCategory(category)}`
    : failures instanceof Error
      ? `the failure category is in the monitor's log, which could not be read (${awsErrorText(failures)})`
      : 'the monitor’s latest run summary names no failure category';
  const share = Math.round((1 - avg.value) * 100);
  const summary = `${targetId}${where}: ${share}% of probes failed in its last cycle (${minute} UTC); ${why}`;
  return avg.value > 0
    ? warn(
        id,
        summary,
        `Transient failures are confirmed before an incident opens; if they persist, ${check}.`,
      )
    : fail(
        id,
        summary,
        `${check.charAt(0).toUpperCase()}${check.slice(1)}; the runbook execution for ${targetId} holds the evidence.`,
      );
}

/** What pgwarden needs of the account's unreserved Lambda concurrency at its busiest. */
export function concurrencyNeed(targets: number, monitorConcurrency: number, sweepConcurrency: number) {
  const probes = Math.min(monitorConcurrency, targets);
  const monitor = 1 + probes;
  // The sweep and its remediations, the rds-events intake, and a runbook task with its probe.
  return { monitor, total: monitor + 1 + Math.min(sweepConcurrency, targets) + 1 + 2 };
}

/** Judges the account's Lambda concurrency against what pgwarden needs. */
export function concurrencyCheck(
  account: { limit: number; unreserved: number },
  need: { monitor: number; total: number },
): Check {
  const id = 'lambda.concurrency';
  const summary = `${account.unreserved} of the account's ${account.limit} concurrent executions are unreserved (shared with its other functions); pgwarden needs ${need.monitor} for the monitor and its probes, up to ${need.total} at its busiest`;
  const fix =
    'Raise the "Concurrent executions" quota in Service Quotas (Lambda), or lower the reserved concurrency of other functions in the account.';
  if (account.unreserved < need.monitor)
    return fail(id, `${summary}: throttled probes count as failed probes`, fix);
  if (account.unreserved < need.total)
    return warn(id, `${summary}: a busy moment (an incident during a sweep) will be throttled`, fix);
  return ok(id, summary);
}

async function concurrencyCheckOf(
  clients: AwsClients,
  deployment: Deployment,
  monitorConcurrency: number | undefined,
  targets: number,
): Promise<Check> {
  let settings: GetAccountSettingsCommandOutput;
  try {
    settings = await call(clients.lambda, new GetAccountSettingsCommand({}));
  } catch (error) {
    return warn(
      'lambda.concurrency',
      `could not read the account's Lambda settings: ${awsErrorText(error)}`,
      awsFix(error, 'lambda:GetAccountSettings'),
    );
  }
  const limit = settings.AccountLimit?.ConcurrentExecutions ?? 0;
  const unreserved = settings.AccountLimit?.UnreservedConcurrentExecutions ?? limit;
  const sweepName = physicalId(deployment, LOGICAL_IDS.sweepFunction);
  const sweep = sweepName
    ? await functionConfiguration(clients, sweepName).catch(() => undefined)
    : undefined;
  return concurrencyCheck(
    { limit, unreserved },
    concurrencyNeed(
      Math.max(1, targets),
      monitorConcurrency ?? monitorSettings.defaults.concurrency,
      deployedSweepConcurrency(sweep),
    ),
  );
}

async function iamAuthCheck(clients: AwsClients, target: Target): Promise<Check> {
  const id = `iam_auth.${target.id}`;
  const region =
    target.rds?.region ??
    (target.connection.auth.kind === 'iam' ? target.connection.auth.region : clients.region);
  const rds = clients.rds(region);
  try {
    let found: { kind: 'instance' | 'cluster'; id: string; enabled: boolean } | undefined;
    if (target.rds?.instanceId) {
      const out: DescribeDBInstancesCommandOutput = await call(
        rds,
        new DescribeDBInstancesCommand({ DBInstanceIdentifier: target.rds.instanceId }),
      );
      const i = out.DBInstances?.[0];
      if (i)
        found = {
          kind: 'instance',
          id: target.rds.instanceId,
          enabled: i.IAMDatabaseAuthenticationEnabled === true,
        };
    } else if (target.rds?.clusterId) {
      const out: DescribeDBClustersCommandOutput = await call(
        rds,
        new DescribeDBClustersCommand({ DBClusterIdentifier: target.rds.clusterId }),
      );
      const c = out.DBClusters?.[0];
      if (c)
        found = {
          kind: 'cluster',
          id: target.rds.clusterId,
          enabled: c.IAMDatabaseAuthenticationEnabled === true,
        };
    } else {
      found = await findByEndpoint(rds, target.connection.host);
    }
    if (!found)
      return warn(
        id,
        `${target.id} uses IAM authentication, but no RDS instance or cluster in ${region} has the endpoint ${target.connection.host}`,
        `Link the target to its database in the configuration ("rds": { "instanceId": "..." } or { "clusterId": "..." }) and deploy again, so its IAM setting can be checked.`,
      );
    if (found.enabled)
      return ok(id, `${target.id}: IAM database authentication is on for RDS ${found.kind} ${found.id}`);
    return fail(
      id,
      `${target.id} logs in with an IAM token, but IAM database authentication is off for RDS ${found.kind} ${found.id}: every probe fails with auth_failed`,
      found.kind === 'instance'
        ? `aws rds modify-db-instance --db-instance-identifier ${found.id} --enable-iam-database-authentication --apply-immediately --region ${region}`
        : `aws rds modify-db-cluster --db-cluster-identifier ${found.id} --enable-iam-database-authentication --apply-immediately --region ${region}`,
    );
  } catch (error) {
    if (/NotFound/i.test(awsErrorName(error)))
      return fail(
        id,
        `${target.id} names RDS ${target.rds?.instanceId ? `instance ${target.rds.instanceId}` : `cluster ${target.rds?.clusterId}`}, which does not exist in ${region}`,
        'Correct rds.instanceId / rds.clusterId (and rds.region) in the configuration and deploy again.',
      );
    return warn(
      id,
      `could not describe ${target.id}'s database: ${awsErrorText(error)}`,
      awsFix(error, 'rds:DescribeDBInstances and rds:DescribeDBClusters'),
    );
  }
}

async function findByEndpoint(
  rds: Sender,
  host: string,
): Promise<{ kind: 'instance' | 'cluster'; id: string; enabled: boolean } | undefined> {
  const wanted = host.toLowerCase();
  let marker: string | undefined;
  do {
    const out: DescribeDBInstancesCommandOutput = await call(
      rds,
      new DescribeDBInstancesCommand({ ...(marker ? { Marker: marker } : {}) }),
    );
    const i = (out.DBInstances ?? []).find((d) => d.Endpoint?.Address?.toLowerCase() === wanted);
    if (i?.DBInstanceIdentifier)
      return {
        kind: 'instance',
        id: i.DBInstanceIdentifier,
        enabled: i.IAMDatabaseAuthenticationEnabled === true,
      };
    marker = out.Marker;
  } while (marker);
  do {
    const out: DescribeDBClustersCommandOutput = await call(
      rds,
      new DescribeDBClustersCommand({ ...(marker ? { Marker: marker } : {}) }),
    );
    const c = (out.DBClusters ?? []).find(
      (d) => d.Endpoint?.toLowerCase() === wanted || d.ReaderEndpoint?.toLowerCase() === wanted,
    );
    if (c?.DBClusterIdentifier)
      return {
        kind: 'cluster',
        id: c.DBClusterIdentifier,
        enabled: c.IAMDatabaseAuthenticationEnabled === true,
      };
    marker = out.Marker;
  } while (marker);
  return undefined;
}

/** The probe function's role and its identity policies, or why they could not be read. */
async function probeRolePolicies(
  clients: AwsClients,
  probeFunction: string | undefined,
): Promise<{ role: string; documents: PolicyDocument[] } | Error> {
  try {
    if (!probeFunction) throw new Error('the monitor names no probe function (PGWARDEN_PROBE_FUNCTION)');
    const config = await functionConfiguration(clients, probeFunction);
    const roleArn = config.Role ?? '';
    const role = roleArn.slice(roleArn.lastIndexOf('/') + 1);
    if (!role) throw new Error(`the probe function ${probeFunction} has no role`);
    const documents: PolicyDocument[] = [];
    let marker: string | undefined;
    do {
      const page: ListRolePoliciesCommandOutput = await call(
        clients.iam,
        new ListRolePoliciesCommand({ RoleName: role, ...(marker ? { Marker: marker } : {}) }),
      );
      for (const name of page.PolicyNames ?? []) {
        const policy: GetRolePolicyCommandOutput = await call(
          clients.iam,
          new GetRolePolicyCommand({ RoleName: role, PolicyName: name }),
        );
        if (policy.PolicyDocument) documents.push(parsePolicyDocument(policy.PolicyDocument));
      }
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
    do {
      const page: ListAttachedRolePoliciesCommandOutput = await call(
        clients.iam,
        new ListAttachedRolePoliciesCommand({ RoleName: role, ...(marker ? { Marker: marker } : {}) }),
      );
      for (const attached of page.AttachedPolicies ?? []) {
        const policy: GetPolicyCommandOutput = await call(
          clients.iam,
          new GetPolicyCommand({ PolicyArn: attached.PolicyArn }),
        );
        const version: GetPolicyVersionCommandOutput = await call(
          clients.iam,
          new GetPolicyVersionCommand({
            PolicyArn: attached.PolicyArn,
            VersionId: policy.Policy?.DefaultVersionId,
          }),
        );
        if (version.PolicyVersion?.Document)
          documents.push(parsePolicyDocument(version.PolicyVersion.Document));
      }
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
    return { role, documents };
  } catch (error) {
    return error instanceof Error ? error : new Error(describeError(error));
  }
}

async function secretCheck(
  clients: AwsClients,
  target: Target,
  policies: { role: string; documents: PolicyDocument[] } | Error,
): Promise<Check> {
  const id = `secret.${target.id}`;
  const auth = target.connection.auth;
  if (auth.kind !== 'secret') return ok(id, `${target.id} uses no secret`);
  const region = secretRegion(auth.secretId) ?? clients.region;
  let secret: DescribeSecretCommandOutput;
  try {
    secret = await call(clients.secrets(region), new DescribeSecretCommand({ SecretId: auth.secretId }));
  } catch (error) {
    if (awsErrorName(error) === 'ResourceNotFoundException')
      return fail(
        id,
        `${target.id}'s secret ${auth.secretId} does not exist in ${region}: every probe fails with auth_failed`,
        `Create it (aws secretsmanager create-secret --name ... --secret-string '{"username":"pgwarden_monitor","password":"..."}' --region ${region}) or correct auth.secretArn in the configuration and deploy again.`,
      );
    return warn(
      id,
      `could not describe ${target.id}'s secret ${auth.secretId}: ${awsErrorText(error)}`,
      awsFix(error, 'secretsmanager:DescribeSecret'),
    );
  }
  const arn = secret.ARN ?? auth.secretId;
  if (secret.DeletedDate)
    return fail(
      id,
      `${target.id}'s secret ${arn} is scheduled for deletion (${secret.DeletedDate.toISOString()}): Secrets Manager refuses to read it`,
      `aws secretsmanager restore-secret --secret-id ${arn} --region ${region}`,
    );
  if (policies instanceof Error)
    return warn(
      id,
      `${target.id}'s secret ${arn} exists, but the probe role's policies could not be read: ${awsErrorText(policies)}`,
      awsFix(
        policies,
        'lambda:GetFunctionConfiguration, iam:ListRolePolicies, iam:GetRolePolicy, iam:ListAttachedRolePolicies, iam:GetPolicy and iam:GetPolicyVersion',
      ),
    );
  const read = evaluate(policies.documents, 'secretsmanager:GetSecretValue', arn);
  if (read !== 'allowed')
    return fail(
      id,
      `${target.id}'s secret ${arn} exists, but the probe role ${policies.role} may not read it (its policies ${read === 'denied' ? 'deny' : 'do not allow'} secretsmanager:GetSecretValue on it)`,
      `Name the secret in the target's auth.secretArn (or in access.secretArns for discovered databases), by its full ARN, and deploy again.`,
    );
  const key = secret.KmsKeyId;
  if (key && /^arn:aws[a-z-]*:kms:[^:]+:\d+:key\//.test(key)) {
    const decrypt = evaluate(policies.documents, 'kms:Decrypt', key);
    if (decrypt !== 'allowed')
      return fail(
        id,
        `${target.id}'s secret is encrypted with ${key}, which the probe role ${policies.role} may not use`,
        `Add "${key}" to access.kmsKeyArns in the configuration and deploy again.`,
      );
  }
  return ok(
    id,
    `${target.id}'s secret ${arn} exists and the probe role's own policies let it read it${key ? ` (encrypted with ${key})` : ''}`,
  );
}
