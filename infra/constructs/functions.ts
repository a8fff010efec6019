import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { monitorSettings } from '../../functions/monitor/settings.ts';
import { probeSettings } from '../../functions/probe/settings.ts';
import { rdsEventsSettings } from '../../functions/rds-events/settings.ts';
import { remediateSettings } from '../../functions/remediate/settings.ts';
import { runbookFunctionSettings } from '../../functions/runbook/settings.ts';
import { sweepSettings } from '../../functions/sweep/settings.ts';
import { type RunbookSettingValues, STATE_MACHINE_SETTING } from '../../shared/runbook/settings.ts';
import type { FleetAccess } from '../access.ts';
import {
  acknowledgeTracingAndMetrics,
  type DiscoveryTag,
  grantContinueIncidents,
  grantDatabaseLogin,
  grantFleetLookups,
  grantInvokeByName,
  grantMonitorLease,
  grantOpenIncidents,
  grantPutMetricData,
  grantRunbookRds,
} from './function-grants.ts';
import { type FunctionNetwork, PgWardenFunction } from './pgwarden-function.ts';

/** What the functions need to know about the fleet, the network, the runbook and the topics. */
export interface FunctionsProps {
  /** The fleet as the functions' environment carries it (`fleetEnvironment`). */
  readonly fleetEnvironment: Readonly<Record<string, string>>;
  /** The tag that marks discovered databases. @default - discovery off */
  readonly discovery?: DiscoveryTag;
  /** What the fleet lets pgwarden touch. */
  readonly access: FleetAccess;
  /** Where the functions that speak SQL run. */
  readonly network: FunctionNetwork;
  /** The runbook clock and links, for the functions that open incidents and the runbook function. */
  readonly runbook: Readonly<RunbookSettingValues>;
  /** How often the monitor probes each target, in milliseconds. */
  readonly cadenceMs: number;
  /** How often the sweep runs; bounds its timeout so runs never overlap. */
  readonly sweepEvery: Duration;
  /** The topic that pages on-call; the runbook function composes its messages. */
  readonly pages: sns.ITopic;
  /** The topic that tells everyone; the runbook function composes its messages. */
  readonly notifications: sns.ITopic;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/**
 * The monitor's Lambda timeout: below the one-minute schedule period, so one run has normally ended
 * before the next begins (the lease makes sure of it when it has not).
 */
export const MONITOR_TIMEOUT = Duration.seconds(59);

/**
 * pgwarden's six functions and what each may do. Only probe and remediate run in the VPC (they are
 * the only ones that speak SQL); the others call AWS APIs from outside it and reach the VPC functions
 * through the Lambda API.
 */
export class Functions extends Construct {
  /** Connects to one target and returns its health snapshot (in the VPC). */
  public readonly probe: PgWardenFunction;
  /** Terminates or cancels sessions under guardrails (in the VPC). */
  public readonly remediate: PgWardenFunction;
  /** Probes the fleet every minute at sub-minute cadence, publishes metrics, opens incidents. */
  public readonly monitor: PgWardenFunction;
  /** The monitor's lease: one run at a time (functions/monitor/lease.ts). */
  public readonly monitorLease: dynamodb.Table;
  /** Invokes remediate for every target on a schedule (idle-session sweep). */
  public readonly sweep: PgWardenFunction;
  /** Turns RDS events and pgwarden's alarms into incidents. */
  public readonly rdsEvents: PgWardenFunction;
  /** The runbook's tasks: evidence, decisions, notifications; invoked by the state machine only. */
  public readonly runbook: PgWardenFunction;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const { access } = props;
    const common = {
      ...(props.logRetention !== undefined ? { logRetention: props.logRetention } : {}),
      ...(props.logRemovalPolicy !== undefined ? { logRemovalPolicy: props.logRemovalPolicy } : {}),
    };

    this.probe = new PgWardenFunction(this, 'Probe', {
      ...common,
      entry: 'functions/probe/handler.ts',
      description: 'connects to one database and takes its health snapshot',
      timeout: Duration.seconds(15),
      network: props.network,
      // Six invocations a minute per database: an own trace for each would cost more than the probes
      // (npm run bench, section 6). Traced when the caller is (the runbook's executions).
      tracing: lambda.Tracing.PASS_THROUGH,
      // The fleet, so a payload only names a target: what it is comes from the configuration.
      environment: { ...props.fleetEnvironment, ...probeSettings.toEnvironment({}) },
    });
    this.remediate = new PgWardenFunction(this, 'Remediate', {
      ...common,
      entry: 'functions/remediate/handler.ts',
      description: 'terminates runaway sessions under guardrails',
      timeout: Duration.seconds(30),
      network: props.network,
      environment: { ...props.fleetEnvironment, ...remediateSettings.toEnvironment({}) },
    });
    for (const fn of [this.probe, this.remediate]) grantDatabaseLogin(fn, access);

    this.monitor = new PgWardenFunction(this, 'Monitor', {
      ...common,
      entry: 'functions/monitor/handler.ts',
      description: 'probes the fleet every few seconds and publishes its metrics',
      // One monitor at a time: its debounce state lives in the warm container, and two overlapping
      // runs would probe every target twice and publish every sample twice. Not by reserved
      // concurrency (a reservation needs a concurrency quota of 101+, which new accounts lack) but by
      // a lease (functions/monitor/lease.ts): a run probes and publishes only while it holds it, until
      // its timeout at the latest. The timeout is below the schedule's one-minute period, so a run has
      // normally ended before the next starts: it probes for 51 s (ticks at 0-50 s at the default
      // 10 s cadence), stops probing 5 s before the timeout, sends its metrics, then frees the lease.
      timeout: MONITOR_TIMEOUT,
      // Measured peak about 125 MB while probing 100 databases (npm run bench, section 5).
      memorySize: 256,
      // The lease table and the state machine are added once they exist (below, and connectRunbook).
      environment: {
        ...props.fleetEnvironment,
        ...monitorSettings.toEnvironment({
          ...props.runbook,
          probeFunction: this.probe.function.functionName,
          cadenceMs: props.cadenceMs,
        }),
      },
    });
    this.monitorLease = new dynamodb.Table(this, 'MonitorLease', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      // One item that is worthless once its run has ended: nothing to keep or restore.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.monitorLease).acknowledge({
      id: 'AwsSolutions-DDB3',
      reason:
        'The table holds one lease item that expires within a minute; point-in-time recovery would restore nothing of value.',
    });
    this.monitor.addEnvironment(monitorSettings.settings.leaseTable.variable, this.monitorLease.tableName);
    grantMonitorLease(this.monitorLease, this.monitor);
    // A run that could not start on time is worthless a minute later, when the next one is due.
    this.monitor.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.seconds(60) });
    grantInvokeByName(this.monitor, this.probe);
    grantPutMetricData(this.monitor);

    this.sweep = new PgWardenFunction(this, 'Sweep', {
      ...common,
      entry: 'functions/sweep/handler.ts',
      description: 'sweeps idle sessions on every target',
      // Never longer than the interval, so two sweeps never work on the same database at once.
      timeout: Duration.seconds(Math.min(300, props.sweepEvery.toSeconds())),
      environment: {
        ...props.fleetEnvironment,
        ...sweepSettings.toEnvironment({ remediateFunction: this.remediate.function.functionName }),
      },
    });
    this.sweep.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.seconds(60) });
    grantInvokeByName(this.sweep, this.remediate);

    this.rdsEvents = new PgWardenFunction(this, 'RdsEvents', {
      ...common,
      entry: 'functions/rds-events/handler.ts',
      description: 'opens incidents from RDS events and pgwarden alarms',
      timeout: Duration.seconds(30),
      environment: {
        ...props.fleetEnvironment,
        ...rdsEventsSettings.toEnvironment({ ...props.runbook }),
      },
    });
    grantPutMetricData(this.rdsEvents);

    this.runbook = new PgWardenFunction(this, 'Runbook', {
      ...common,
      entry: 'functions/runbook/handler.ts',
      description: 'runbook tasks: evidence, decisions, pages and notifications',
      timeout: Duration.seconds(60),
      // It composes the messages for these topics; the state machine publishes them (see the definition).
      // The fleet and the incident clock as configured: an execution's input names the target, the
      // configuration says what it is and how long before on-call is paged.
      environment: {
        ...props.fleetEnvironment,
        ...runbookFunctionSettings.toEnvironment({
          ...props.runbook,
          pagesTopicArn: props.pages.topicArn,
          notificationsTopicArn: props.notifications.topicArn,
        }),
      },
    });
    grantRunbookRds(this, this.runbook, access, props.discovery);
    const discovery = props.discovery !== undefined;
    grantFleetLookups(this, [
      { fn: this.monitor, instances: discovery, clusters: discovery },
      { fn: this.sweep, instances: discovery, clusters: discovery },
      { fn: this.rdsEvents, instances: discovery || access.unknownInstances, clusters: discovery },
    ]);
    for (const fn of [this.monitor, this.rdsEvents]) acknowledgeTracingAndMetrics(fn);
  }

  /**
   * Lets the functions that open incidents (monitor, rds-events) start the runbook, find the running
   * execution of a target, and read an execution's status — on this state machine only; and the
   * runbook function start the execution that continues a long incident.
   */
  public connectRunbook(stateMachine: sfn.StateMachine): void {
    grantContinueIncidents(this, stateMachine, this.runbook);
    for (const fn of [this.monitor, this.rdsEvents]) {
      fn.addEnvironment(STATE_MACHINE_SETTING.stateMachineArn.variable, stateMachine.stateMachineArn);
      grantOpenIncidents(stateMachine, fn);
    }
  }

  /** The six functions by the name used in alarm names and the dashboard. */
  public get all(): ReadonlyArray<{ name: string; fn: PgWardenFunction }> {
    return [
      { name: 'monitor', fn: this.monitor },
      { name: 'probe', fn: this.probe },
      { name: 'remediate', fn: this.remediate },
      { name: 'sweep', fn: this.sweep },
      { name: 'rds-events', fn: this.rdsEvents },
      { name: 'runbook', fn: this.runbook },
    ];
  }
}
