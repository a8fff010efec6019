import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { type Discovery, type FleetDocument, fleetEnvironment } from '../shared/fleet.ts';
import { type DefaultsInput, type Target, type TargetInput, toTarget } from '../shared/target.ts';
import { fleetAccess } from './access.ts';
import { assertEnvironmentFits, type PgWardenConfig } from './config.ts';
import { Alarms } from './constructs/alarms.ts';
import { Dashboard, dashboardUrl } from './constructs/dashboard.ts';
import { DEMO_PORT, Demo } from './constructs/demo.ts';
import { Functions } from './constructs/functions.ts';
import { Network } from './constructs/network.ts';
import { Notifications } from './constructs/notifications.ts';
import { Runbook } from './constructs/runbook.ts';
import { Schedules } from './constructs/schedules.ts';
import { defaultDashboardName } from './names.ts';

export interface PgWardenStackProps extends StackProps {
  /** The validated configuration: `loadConfig()` for a file, `parseConfig()` for an object. */
  readonly config: PgWardenConfig;
  /**
   * Also create a small VPC and a PostgreSQL instance, and watch that instance instead of the
   * configured fleet and network. Everything demo mode creates is destroyed with the stack.
   * @default false
   */
  readonly demo?: boolean;
}

/**
 * pgwarden in one stack: the functions and what they may touch, the runbook state machine, the
 * schedules and event rules that drive them, the topics, alarms and dashboard people see.
 */
export class PgWardenStack extends Stack {
  /** The pages and notifications topics, their key and subscriptions. */
  public readonly notifications: Notifications;
  /** The in-VPC functions' security group and its way to the databases. */
  public readonly network: Network;
  /** The six functions and what each may do. */
  public readonly functions: Functions;
  /** The incident runbook state machine. */
  public readonly runbook: Runbook;
  /** The alarms that work without the workflow. */
  public readonly alarms: Alarms;
  /** The schedules and event rules that invoke the functions. */
  public readonly schedules: Schedules;
  /** The CloudWatch dashboard. */
  public readonly dashboard: Dashboard;
  /** The demo VPC and database (demo mode only). */
  public readonly demo?: Demo;
  /** The targets named at synth, defaults applied: what alarms, event rules and dashboard rows cover. */
  public readonly targets: readonly Target[];

  constructor(scope: Construct, id: string, props: PgWardenStackProps) {
    super(scope, id, {
      description:
        'pgwarden: health checks and automatic remediation for PostgreSQL on Amazon RDS and Aurora',
      ...props,
    });
    const { config } = props;
    const demoMode = props.demo ?? false;
    // Logs of a real deployment outlive the stack (they are the audit of what was terminated); a
    // demo leaves nothing behind.
    const removalPolicy = demoMode ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const logRetention = config.logRetentionDays as logs.RetentionDays;

    if (demoMode) this.demo = new Demo(this, 'Demo');
    const fleet = this.resolveFleet(config, this.demo);
    this.targets = fleet.targets;
    const discovery = fleet.discovery;
    const access = fleetAccess(this, {
      targets: fleet.targets,
      ...(fleet.discoveredDefaults ? { discovery: { defaults: fleet.discoveredDefaults } } : {}),
      access: config.access,
    });

    this.notifications = new Notifications(this, 'Topics', {
      pages: config.notifications.pages,
      notifications: config.notifications.notifications,
      keyRemovalPolicy: removalPolicy,
    });
    this.network = this.createNetwork(config, fleet.targets, discovery !== undefined, access.secretArns);

    const dashboardName = config.dashboardName ?? defaultDashboardName(this);
    this.functions = new Functions(this, 'Functions', {
      fleetEnvironment: fleetEnvironment(fleet.document),
      ...(discovery ? { discovery: { tagKey: discovery.tagKey, tagValue: discovery.tagValue } } : {}),
      access,
      network: this.network.functionNetwork,
      runbook: {
        escalateAfterMs: config.escalateAfterMs,
        recheckEveryMs: config.recheckEveryMs,
        maxDurationMs: config.maxDurationMs,
        dashboardUrl: dashboardUrl(this, dashboardName),
        consoleUrl: `https://${this.region}.console.aws.amazon.com/states/home?region=${this.region}`,
      },
      cadenceMs: config.cadenceMs,
      sweepEvery: Duration.minutes(config.sweepEveryMinutes),
      pages: this.notifications.pages,
      notifications: this.notifications.notifications,
      logRetention,
      logRemovalPolicy: removalPolicy,
    });

    this.runbook = new Runbook(this, 'Runbook', {
      probe: this.functions.probe.function,
      remediate: this.functions.remediate.function,
      runbook: this.functions.runbook.function,
      topics: [this.notifications.pages, this.notifications.notifications],
      logExecutionData: config.stateMachineLogsIncludeData,
      logRetention,
      logRemovalPolicy: removalPolicy,
    });
    this.functions.connectRunbook(this.runbook.stateMachine);

    const paging = new Set(['monitor', 'probe']);
    this.alarms = new Alarms(this, 'Alarms', {
      targets: fleet.targets,
      discovery: discovery !== undefined,
      probeFailingMinutes: config.probeFailingMinutes,
      pages: this.notifications.pages,
      notifications: this.notifications.notifications,
      functions: this.functions.all.map(({ name, fn }) => ({
        name,
        fn: fn.function,
        pages: paging.has(name),
      })),
      stateMachine: this.runbook.stateMachine,
    });

    const instanceIds = fleet.targets.flatMap((t) => (t.rds?.instanceId ? [t.rds.instanceId] : []));
    const clusterIds = fleet.targets.flatMap((t) => (t.rds?.clusterId ? [t.rds.clusterId] : []));
    this.schedules = new Schedules(this, 'Schedules', {
      monitor: this.functions.monitor.function,
      sweep: this.functions.sweep.function,
      sweepEveryMinutes: config.sweepEveryMinutes,
      rdsEvents: this.functions.rdsEvents.function,
      ...(discovery ? {} : { rdsSources: { instanceIds, clusterIds } }),
      incidentAlarms: this.alarms.incidentAlarms,
    });

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName,
      targets: fleet.targets,
      discovery: discovery !== undefined,
      functions: this.functions.all.map(({ name, fn }) => ({ name, fn: fn.function })),
      stateMachine: this.runbook.stateMachine,
      alarms: this.alarms.all,
    });

    for (const { name, fn } of this.functions.all)
      assertEnvironmentFits(this, name, fn.environment, fleet.targets.length);

    new CfnOutput(this, 'DashboardUrl', { value: dashboardUrl(this, dashboardName) });
    new CfnOutput(this, 'PagesTopicArn', { value: this.notifications.pages.topicArn });
    new CfnOutput(this, 'NotificationsTopicArn', { value: this.notifications.notifications.topicArn });
    new CfnOutput(this, 'RunbookStateMachineArn', { value: this.runbook.stateMachine.stateMachineArn });
    new CfnOutput(this, 'FunctionSecurityGroupId', {
      description:
        'Allow this group into your databases on their port if pgwarden does not manage their security groups',
      value: this.network.functionSecurityGroup.securityGroupId,
    });
    if (this.demo) {
      new CfnOutput(this, 'DemoDatabaseEndpoint', { value: this.demo.database.dbInstanceEndpointAddress });
      new CfnOutput(this, 'DemoDatabaseSecretArn', { value: this.demo.secretArn });
    }
  }

  /**
   * The fleet with this stack's region filled in where the configuration names none (a target with
   * no region is in the region pgwarden is deployed to), in both forms: the document the functions
   * parse, and the targets the infrastructure is derived from.
   */
  private resolveFleet(
    config: PgWardenConfig,
    demo: Demo | undefined,
  ): { document: FleetDocument; targets: Target[]; discovery?: Discovery; discoveredDefaults?: Target } {
    const input = demo ? { targets: [], defaults: {} } : config.fleetInput;
    const document: FleetDocument = demo ? { targets: [], defaults: {} } : config.fleetDocument;
    const defaults: DefaultsInput = { ...input.defaults, region: input.defaults.region ?? this.region };
    const targetInputs: TargetInput[] = [...input.targets];
    const documentTargets = [...document.targets];
    if (demo) {
      targetInputs.push(demo.target);
      documentTargets.push(demo.target);
    }
    const discovery = demo ? undefined : config.fleetInput.discovery;
    return {
      document: {
        targets: documentTargets,
        defaults: {
          ...document.defaults,
          region: (document.defaults.region as string | undefined) ?? this.region,
        },
        ...(discovery && document.discovery ? { discovery: document.discovery } : {}),
      },
      targets: targetInputs.map((t) => toTarget(t, defaults)),
      ...(discovery
        ? {
            discovery,
            // What a discovered database inherits: the defaults, as a target with no settings of its own.
            discoveredDefaults: toTarget(
              { id: 'discovered', host: 'discovered', port: 5432, database: 'postgres' },
              defaults,
            ),
          }
        : {}),
    };
  }

  private createNetwork(
    config: PgWardenConfig,
    targets: readonly Target[],
    discovery: boolean,
    secretArns: readonly string[],
  ): Network {
    const readsSecrets = secretArns.length > 0;
    if (this.demo) {
      return new Network(this, 'Network', {
        vpc: this.demo.vpc,
        subnets: this.demo.subnets,
        databasePorts: [DEMO_PORT],
        databaseSecurityGroups: [this.demo.databaseSecurityGroup],
        readsSecrets,
        createSecretsManagerEndpoint: true,
        secretArns,
      });
    }
    const n = config.network;
    if (!n) throw new Error('config.network is required outside demo mode (parseConfig enforces it)');
    // By attributes, so synth needs no AWS account and no lookups.
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: n.vpcId,
      availabilityZones: [...n.availabilityZones],
      privateSubnetIds: [...n.privateSubnetIds],
      ...(n.vpcCidrBlock ? { vpcCidrBlock: n.vpcCidrBlock } : {}),
    });
    Validations.of(vpc).acknowledge({
      id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
      reason:
        'pgwarden adds no routes: Lambda network interfaces and interface endpoints need subnets, not route tables.',
    });
    // Discovered databases are assumed on PostgreSQL's default port, like a target that names none.
    const ports = [
      ...targets.map((t) => t.connection.port),
      ...(discovery || targets.length === 0 ? [5432] : []),
    ];
    return new Network(this, 'Network', {
      vpc,
      subnets: { subnets: vpc.privateSubnets },
      databasePorts: ports,
      ...(n.vpcCidrBlock ? { databaseCidr: n.vpcCidrBlock } : {}),
      databaseSecurityGroups: n.databaseSecurityGroupIds.map((sg) =>
        ec2.SecurityGroup.fromSecurityGroupId(this, `DatabaseSecurityGroup-${sg}`, sg, { mutable: true }),
      ),
      extraSecurityGroups: n.securityGroupIds.map((sg) =>
        ec2.SecurityGroup.fromSecurityGroupId(this, `FunctionSecurityGroup-${sg}`, sg, { mutable: false }),
      ),
      readsSecrets,
      createSecretsManagerEndpoint: n.createSecretsManagerEndpoint,
      secretArns,
    });
  }
}
