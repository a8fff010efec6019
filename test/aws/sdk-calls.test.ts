/**
 * pgwarden's real AWS calls, through its own code, against an AWS API emulator (moto_server): the
 * requests the SDK builds, the responses pgwarden parses, and the service semantics its correctness
 * leans on (conditional writes, execution-name clashes, per-region secrets, event patterns). Where
 * the emulator lacks something, the test says so by name instead of passing without it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudWatchClient, GetMetricStatisticsCommand, ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  EventBridgeClient,
  PutEventsCommand,
  PutRuleCommand,
  PutTargetsCommand,
  TestEventPatternCommand,
} from '@aws-sdk/client-eventbridge';
import {
  AddTagsToResourceCommand,
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { CreateStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { acquireLease, MONITOR_LEASE_ID } from '../../functions/monitor/lease.ts';
import { gatherEvidence } from '../../functions/runbook/evidence.ts';
import { type Notice, publishInput } from '../../functions/runbook/messages.ts';
import { parseConfig } from '../../infra/config.ts';
import { REPO_ROOT } from '../../infra/constructs/pgwarden-function.ts';
import { PgWardenStack } from '../../infra/pgwarden-stack.ts';
import { systemClock } from '../../shared/clock.ts';
import { resolveCredentials, secretsClientsByRegion } from '../../shared/credentials.ts';
import { discoverTargets } from '../../shared/discovery.ts';
import { openIncident } from '../../shared/incidents.ts';
import { silentLogger } from '../../shared/logger.ts';
import { CloudWatchSink, NAMESPACE, samplesFromProbe } from '../../shared/metrics.ts';
import { RUNBOOK_PLACEHOLDERS, runbookDefinition } from '../../shared/runbook/definition.ts';
import { ManualClock } from '../helpers/clock.ts';
import { type Moto, startMoto } from '../helpers/moto.ts';
import { testTarget } from '../helpers/targets.ts';
import { DISCOVERY_CONFIG, type Json } from '../infra/synth.ts';
import { snapshot } from '../unit/runbook/fixtures.ts';

const ACCOUNT = '123456789012';
const SETTINGS = { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 };

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
}, 60_000);
afterAll(async () => {
  await moto?.stop();
});
beforeEach(async () => {
  await moto.reset();
});

describe('CloudWatch PutMetricData through the monitor’s sink', () => {
  it('sends a probe’s samples in one call that CloudWatch accepts and stores per target', async () => {
    const cloudwatch = new CloudWatchClient(moto.config());
    const errors: unknown[] = [];
    const sink = new CloudWatchSink(cloudwatch, NAMESPACE, (error) => errors.push(error));
    const checkedAt = new Date().toISOString();
    sink.add(samplesFromProbe(snapshot({ target: 'orders', checkedAt }), 'orders', 0));
    sink.add([{ name: 'MonitorHeartbeat', value: 1, timestamp: Date.now() }]);
    const result = await sink.flush();
    expect(errors).toEqual([]);
    expect(result).toMatchObject({ calls: 1, failed: 0 });

    const listed = await cloudwatch.send(new ListMetricsCommand({ Namespace: NAMESPACE }));
    const names = new Set((listed.Metrics ?? []).map((m) => m.MetricName));
    for (const name of ['ProbeSuccess', 'ConnectionUtilization', 'MonitorHeartbeat'])
      expect(names).toContain(name);
    const probe = (listed.Metrics ?? []).find((m) => m.MetricName === 'ProbeSuccess');
    expect(probe?.Dimensions).toEqual([{ Name: 'Target', Value: 'orders' }]);
    const heartbeat = await cloudwatch.send(
      new GetMetricStatisticsCommand({
        Namespace: NAMESPACE,
        MetricName: 'MonitorHeartbeat',
        StartTime: new Date(Date.now() - 600_000),
        EndTime: new Date(Date.now() + 60_000),
        Period: 60,
        Statistics: ['Sum'],
      }),
    );
    expect(heartbeat.Datapoints?.reduce((sum, d) => sum + (d.Sum ?? 0), 0)).toBe(1);
  });
});

/**
 * The request the state machine's publishing state sends: its `sns:publish` Parameters, each `.$`
 * path read from the outbox slot the runbook function filled with `publishInput`.
 */
function publishRequest(slot: string, outbox: unknown): Record<string, unknown> {
  const state = Object.values(runbookDefinition().States as Record<string, Json>).find(
    (s) =>
      s.Resource === 'arn:aws:states:::sns:publish' &&
      JSON.stringify(s.Parameters).includes(`outbox.${slot}.`),
  );
  if (!state) throw new Error(`no state publishes outbox slot ${slot}`);
  const root = { incident: { outbox: { [slot]: outbox } } };
  return Object.fromEntries(
    Object.entries(state.Parameters as Record<string, string>).map(([key, path]) => [
      key.replace(/\.\$$/, ''),
      path
        .replace(/^\$\./, '')
        .split('.')
        .reduce((node: Json, part) => node?.[part], root),
    ]),
  );
}

describe('SNS Publish of the runbook’s messages, as the state machine sends them', () => {
  it('delivers the JSON document and the filter attributes to an SQS subscriber', async () => {
    const sns = new SNSClient(moto.config());
    const sqs = new SQSClient(moto.config());
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'pgwarden-pages' }));
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'incident-tool' }));
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: Attributes?.QueueArn }));

    const notice: Notice = {
      kind: 'page',
      topic: 'pages',
      severity: 'critical',
      subject: 'pgwarden PAGE: orders unreachable for 20 min',
      text: 'orders is still unreachable.\nEvidence: ...',
      data: { target: 'orders', incidentId: 'pgw-orders-20261120-1', category: 'unreachable' },
    };
    // The runbook function composes the message; the state machine's publishing state sends it.
    const request = publishRequest('opened', publishInput(TopicArn as string, notice));
    expect(Object.keys(request).sort()).toEqual([
      'Message',
      'MessageAttributes',
      'MessageStructure',
      'Subject',
      'TopicArn',
    ]);
    await sns.send(new PublishCommand(request as unknown as ConstructorParameters<typeof PublishCommand>[0]));

    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
    expect(received.Messages).toHaveLength(1);
    const envelope = JSON.parse(received.Messages?.[0]?.Body ?? '{}');
    expect(envelope).toMatchObject({ Type: 'Notification', TopicArn, Subject: notice.subject });
    // The sqs entry of the message structure: the machine-readable document, not the email text.
    expect(JSON.parse(envelope.Message)).toEqual({
      subject: notice.subject,
      severity: 'critical',
      target: 'orders',
      incidentId: 'pgw-orders-20261120-1',
      category: 'unreachable',
    });
    expect(envelope.MessageAttributes).toMatchObject({
      'pgwarden.kind': { Type: 'String', Value: 'page' },
      'pgwarden.severity': { Type: 'String', Value: 'critical' },
      'pgwarden.target': { Type: 'String', Value: 'orders' },
      'pgwarden.incident': { Type: 'String', Value: 'pgw-orders-20261120-1' },
    });
  });
});

describe('Step Functions StartExecution, ListExecutions and DescribeExecution through openIncident', () => {
  async function stateMachine(sfn: SFNClient): Promise<string> {
    const lambda = (name: string) => `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:pgwarden-${name}`;
    const definition = JSON.stringify(runbookDefinition())
      .replaceAll(`\${${RUNBOOK_PLACEHOLDERS.probe}}`, lambda('probe'))
      .replaceAll(`\${${RUNBOOK_PLACEHOLDERS.remediate}}`, lambda('remediate'))
      .replaceAll(`\${${RUNBOOK_PLACEHOLDERS.runbook}}`, lambda('runbook'));
    const out = await sfn.send(
      new CreateStateMachineCommand({
        name: 'pgwarden-runbook',
        definition,
        roleArn: `arn:aws:iam::${ACCOUNT}:role/pgwarden-runbook`,
        type: 'STANDARD',
      }),
    );
    return out.stateMachineArn as string;
  }

  it('opens one incident for two triggers that race, and joins it from a later one', async () => {
    const sfn = new SFNClient(moto.config());
    const stateMachineArn = await stateMachine(sfn);
    const deps = { sfn, stateMachineArn, clock: systemClock, logger: silentLogger };
    const target = testTarget('orders');
    const trigger = (kind: 'probe' | 'rds-event') => ({
      kind,
      summary: `${kind} says orders is down`,
      observedAt: new Date().toISOString(),
    });

    // Both list no running execution, both start the same name; the loser finds the winner running.
    const [a, b] = await Promise.all([
      openIncident(deps, target, trigger('probe'), SETTINGS),
      openIncident(deps, target, trigger('rds-event'), SETTINGS),
    ]);
    expect([a.outcome, b.outcome].sort()).toEqual(['joined', 'opened']);
    expect(a.incidentId).toBe(b.incidentId);
    expect(a.incidentId).toMatch(/^pgw-orders-\d{8}-1$/);

    const later = await openIncident(deps, target, trigger('probe'), SETTINGS);
    expect(later).toMatchObject({ outcome: 'joined', incidentId: a.incidentId });
  });
});

describe('RDS Describe* through discovery and the runbook’s evidence', () => {
  async function database(rds: RDSClient) {
    const instance = await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'orders-prod',
        Engine: 'postgres',
        DBInstanceClass: 'db.t4g.micro',
        AllocatedStorage: 20,
        MasterUsername: 'postgres',
        MasterUserPassword: 'not-a-real-password-1',
        DBName: 'orders',
        Tags: [{ Key: 'pgwarden:monitor', Value: 'true' }],
      }),
    );
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'mysql-app',
        Engine: 'mysql',
        DBInstanceClass: 'db.t4g.micro',
        AllocatedStorage: 20,
        MasterUsername: 'admin',
        MasterUserPassword: 'not-a-real-password-1',
        Tags: [{ Key: 'pgwarden:monitor', Value: 'true' }],
      }),
    );
    const cluster = await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: 'billing-aurora',
        Engine: 'aurora-postgresql',
        MasterUsername: 'postgres',
        MasterUserPassword: 'not-a-real-password-1',
        DatabaseName: 'billing',
      }),
    );
    await rds.send(
      new AddTagsToResourceCommand({
        ResourceName: cluster.DBCluster?.DBClusterArn,
        Tags: [
          { Key: 'pgwarden:monitor', Value: 'true' },
          { Key: 'pgwarden:id', Value: 'billing' },
        ],
      }),
    );
    return instance.DBInstance;
  }

  it('discovers the tagged PostgreSQL instance and cluster, and leaves the rest', async () => {
    const rds = new RDSClient(moto.config());
    await database(rds);
    const targets = await discoverTargets(
      { tagKey: 'pgwarden:monitor', tagValue: 'true' },
      { user: 'pgwarden_monitor', auth: { iam: true }, region: 'eu-west-1' },
      { rds, logger: silentLogger },
    );
    expect(targets.map((t) => [t.id, t.rds]).sort()).toEqual([
      ['billing', expect.objectContaining({ clusterId: 'billing-aurora' })],
      ['orders-prod', expect.objectContaining({ instanceId: 'orders-prod' })],
    ]);
  });

  it('gathers status, events and metrics; the database log is a named gap of the emulator', async () => {
    const rds = new RDSClient(moto.config());
    const cloudwatch = new CloudWatchClient(moto.config());
    await database(rds);
    const target = testTarget('orders-prod', { rds: { instanceId: 'orders-prod', region: 'eu-west-1' } });
    const evidence = await gatherEvidence(target, { rds, cloudwatch }, Date.now());
    expect(evidence.instance).toEqual({ id: 'orders-prod', kind: 'instance', status: 'available' });
    expect(evidence.metrics.map((m) => m.name)).toEqual([
      'CPUUtilization',
      'FreeableMemory',
      'FreeStorageSpace',
      'DatabaseConnections',
    ]);
    // EMULATOR GAP (moto 5.x): DescribeDBLogFiles answers, but DownloadDBLogFilePortion is not
    // implemented and moto keeps no log files, so the log lines cannot be read back here. The
    // parsing of a portion is covered by test/unit/runbook/evidence.test.ts at the SDK boundary.
    expect(evidence.gaps).toEqual([expect.stringMatching(/^database log: /)]);
  });
});

describe('Secrets Manager through the credential resolver', () => {
  it('reads a secret in the region its ARN names with a client built for that region', async () => {
    const east = new SecretsManagerClient(moto.config('us-east-1'));
    const created = await east.send(
      new CreateSecretCommand({
        Name: 'pgwarden/orders',
        SecretString: JSON.stringify({ username: 'pgwarden_monitor', password: 'east-password' }),
      }),
    );
    const home = new SecretsManagerClient(moto.config('eu-west-1'));
    await home.send(
      new CreateSecretCommand({
        Name: 'pgwarden/billing',
        SecretString: JSON.stringify({ password: 'home' }),
      }),
    );
    // The function's own region does not have the other region's secret.
    await expect(home.send(new GetSecretValueCommand({ SecretId: created.ARN }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });

    const built: string[] = [];
    const secretsIn = secretsClientsByRegion(home, 'eu-west-1', (region) => {
      built.push(region);
      return new SecretsManagerClient(moto.config(region));
    });
    const connection = (secretId: string) => ({
      host: 'db.example',
      port: 5432,
      database: 'orders',
      user: 'pgwarden_monitor',
      auth: { kind: 'secret' as const, secretId },
      tls: { mode: 'verify-full' as const },
    });
    const deps = { secrets: home, secretsIn, clock: new ManualClock() };
    expect((await resolveCredentials(connection(created.ARN as string), deps)).password).toBe(
      'east-password',
    );
    expect((await resolveCredentials(connection('pgwarden/billing'), deps)).password).toBe('home');
    expect(built).toEqual(['us-east-1']);
  });
});

describe('DynamoDB conditional writes through the monitor lease', () => {
  async function table(dynamodb: DynamoDBClient): Promise<string> {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: 'monitor-lease',
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    return 'monitor-lease';
  }

  it('gives the lease to one of two runs at once, frees it, and lets an expired one be taken', async () => {
    const dynamodb = new DynamoDBClient(moto.config());
    const deps = { dynamodb, table: await table(dynamodb), logger: silentLogger };
    const now = Date.now();
    const [a, b] = await Promise.all([
      acquireLease(deps, 'run-a', now, now + 60_000),
      acquireLease(deps, 'run-b', now, now + 60_000),
    ]);
    expect([a.status, b.status].sort()).toEqual(['busy', 'held']);
    const busy = (a.status === 'busy' ? a : b) as { heldUntil?: string };
    expect(busy.heldUntil).toBe(new Date(now + 60_000).toISOString());

    const holder = (a.status === 'held' ? a : b) as { release: () => Promise<void> };
    await holder.release();
    expect((await acquireLease(deps, 'run-c', now, now + 1_000)).status).toBe('held');
    // run-c never released (it timed out): once its lease has run out the next run takes it.
    expect((await acquireLease(deps, 'run-d', now + 500, now + 60_000)).status).toBe('busy');
    expect((await acquireLease(deps, 'run-d', now + 1_001, now + 60_000)).status).toBe('held');
    expect(MONITOR_LEASE_ID).toBe('monitor');
  });
});

describe('EventBridge rules: the synthesized event patterns against the RDS event fixtures', () => {
  const fixtures = readdirSync(join(REPO_ROOT, 'test/fixtures/rds-events'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({
      name: f,
      event: JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/rds-events', f), 'utf8')),
    }));

  /** The event patterns of the stack's rules, by construct path, with alarm ARNs as the account has them. */
  function rules(raw: unknown): Record<string, Json> {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new PgWardenStack(app, 'PgWarden', { config: parseConfig(raw) });
    const resources = Template.fromStack(stack).toJSON().Resources as Record<string, Json>;
    const patterns: Record<string, Json> = {};
    for (const [id, r] of Object.entries(resources)) {
      if (r.Type !== 'AWS::Events::Rule' || !r.Properties.EventPattern) continue;
      // An alarm's ARN is a GetAtt at synth; in the account it is built from the alarm's name.
      const text = JSON.stringify(r.Properties.EventPattern).replace(
        /\{"Fn::GetAtt":\["(\w+)","Arn"\]\}/g,
        (_, alarmId: string) =>
          JSON.stringify(
            `arn:aws:cloudwatch:eu-west-1:${ACCOUNT}:alarm:${resources[alarmId].Properties.AlarmName}`,
          ),
      );
      patterns[id.replace(/[0-9A-F]{8}$/, '')] = JSON.parse(text);
    }
    return patterns;
  }

  /**
   * Which rules each event matches, as EventBridge decides it: every pattern becomes a rule with an
   * SQS queue as its target, the events are put on the bus, and each queue says what reached it.
   */
  async function routed(patterns: Record<string, Json>, events: Record<string, Json>) {
    const eventbridge = new EventBridgeClient(moto.config());
    const sqs = new SQSClient(moto.config());
    const queues: Record<string, string> = {};
    for (const [rule, pattern] of Object.entries(patterns)) {
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: rule }));
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
      );
      await eventbridge.send(new PutRuleCommand({ Name: rule, EventPattern: JSON.stringify(pattern) }));
      await eventbridge.send(
        new PutTargetsCommand({ Rule: rule, Targets: [{ Id: 'queue', Arn: Attributes?.QueueArn }] }),
      );
      queues[rule] = QueueUrl as string;
    }
    const names = Object.keys(events);
    const matched: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, []]));
    const idOf = new Map<string, string>();
    for (let i = 0; i < names.length; i += 10) {
      const batch = names.slice(i, i + 10);
      const out = await eventbridge.send(
        new PutEventsCommand({
          Entries: batch.map((name) => {
            const e = events[name];
            return {
              Source: e.source,
              DetailType: e['detail-type'],
              Detail: JSON.stringify(e.detail),
              Resources: e.resources,
              Time: new Date(e.time),
            };
          }),
        }),
      );
      expect(out.FailedEntryCount).toBe(0);
      for (const [j, entry] of (out.Entries ?? []).entries())
        idOf.set(entry.EventId as string, batch[j] as string);
    }
    for (const [rule, QueueUrl] of Object.entries(queues)) {
      for (;;) {
        const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
        if (!got.Messages?.length) break;
        for (const message of got.Messages) {
          const delivered = JSON.parse(message.Body ?? '{}');
          matched[idOf.get(delivered.id) ?? `unknown ${delivered.id}`]?.push(rule);
          await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message.ReceiptHandle }));
        }
      }
    }
    return matched;
  }

  it('EMULATOR GAP: moto 5.x answers TestEventPattern with no result, so the patterns are routed instead', async () => {
    // When this fails, moto has learned TestEventPattern: ask it directly instead of routing.
    const out = await new EventBridgeClient(moto.config()).send(
      new TestEventPatternCommand({
        EventPattern: JSON.stringify({ source: ['aws.rds'] }),
        Event: JSON.stringify(fixtures[0]?.event),
      }),
    );
    expect(out.Result).toBeUndefined();
  });

  it('delivers each event of a monitored instance or cluster to rds-events once, and a member’s by the second rule', async () => {
    const patterns = rules({
      ...DISCOVERY_CONFIG,
      fleet: {
        defaults: { user: 'pgwarden_monitor', auth: { iam: true } },
        targets: [
          { id: 'orders', host: 'orders.example', database: 'orders', rds: { instanceId: 'orders-prod' } },
          { id: 'aurora', host: 'aurora.example', database: 'orders', rds: { clusterId: 'orders-aurora' } },
        ],
      },
    });
    expect(Object.keys(patterns).sort()).toEqual([
      'SchedulesAlarmStateChanges',
      'SchedulesClusterMemberEvents',
      'SchedulesRdsEvents',
    ]);
    expect(fixtures.length).toBeGreaterThan(5);
    const events: Record<string, Json> = Object.fromEntries(fixtures.map((f) => [f.name, f.event]));
    // A member of the monitored cluster, whose id the configuration does not name.
    const member = structuredClone(events['instance-0006.json']);
    member.detail.SourceIdentifier = 'orders-aurora-instance-1';
    events.member = member;
    const unwatched = structuredClone(events['cluster-0071.json']);
    unwatched.detail.SourceIdentifier = 'someone-elses-cluster';
    events.unwatched = unwatched;

    const matched = await routed(patterns, events);
    for (const { name } of fixtures) expect([name, matched[name]]).toEqual([name, ['SchedulesRdsEvents']]);
    expect(matched.member).toEqual(['SchedulesClusterMemberEvents']);
    expect(matched.unwatched).toEqual([]);
  });

  it('delivers a per-target alarm going into ALARM, and not its recovery or another stack’s alarm', async () => {
    const patterns = rules({
      ...DISCOVERY_CONFIG,
      fleet: {
        defaults: { user: 'pgwarden_monitor', auth: { iam: true } },
        targets: [{ id: 'orders', host: 'orders.example', database: 'orders' }],
      },
    });
    const alarm = (name: string, state: string) => ({
      'detail-type': 'CloudWatch Alarm State Change',
      source: 'aws.cloudwatch',
      time: '2026-11-20T03:20:00Z',
      resources: [`arn:aws:cloudwatch:eu-west-1:${ACCOUNT}:alarm:${name}`],
      detail: { alarmName: name, state: { value: state }, previousState: { value: 'OK' } },
    });
    const matched = await routed(patterns, {
      alarm: alarm('PgWarden/orders/probe-failing', 'ALARM'),
      recovery: alarm('PgWarden/orders/probe-failing', 'OK'),
      staging: alarm('Staging/orders/probe-failing', 'ALARM'),
    });
    expect(matched).toEqual({ alarm: ['SchedulesAlarmStateChanges'], recovery: [], staging: [] });
  });

  it('delivers every RDS instance and cluster event to rds-events with tag discovery', async () => {
    const events: Record<string, Json> = Object.fromEntries(fixtures.map((f) => [f.name, f.event]));
    const matched = await routed(rules(DISCOVERY_CONFIG), events);
    for (const { name } of fixtures) expect([name, matched[name]]).toEqual([name, ['SchedulesRdsEvents']]);
  });
});
