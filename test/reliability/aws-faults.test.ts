/**
 * Every AWS API call the functions make, throttled or timed out: each handler answers the way it was
 * designed to (a classified result, a listed gap, a logged failure, or a clean named error for the
 * caller to retry), within its deadline, and never hangs or crashes the process.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudWatchClient, GetMetricDataCommand, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBLogFilesCommand,
  DescribeEventsCommand,
  DownloadDBLogFilePortionCommand,
  RDSClient,
  StartDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalCloudWatch, LocalRds, LocalSecretsManager, LocalSns } from '../../cli/local/aws.ts';
import { freePort } from '../../cli/local/embedded.ts';
import { createLocalWorkflow, LOCAL_STATE_MACHINE } from '../../cli/local/workflow.ts';
import { silentLogger } from '../../shared/logger.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import { runbookDefinition } from '../../shared/runbook/definition.ts';
import type { IncidentRecord } from '../../shared/runbook/record.ts';
import type { RunbookInput } from '../../shared/runbook/types.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Target } from '../../shared/target.ts';
import { ManualClock } from '../helpers/clock.ts';
import { captureOutput, lambdaContext } from '../helpers/lambda.ts';
import { fakeLeaseTable, LEASE_TABLE } from '../helpers/lease-table.ts';
import { countingListener } from '../helpers/listener.ts';
import { fleetEnvironmentFor } from '../helpers/targets.ts';
import { recordUnhandled } from '../helpers/unhandled.ts';
import { failure, target as fixtureTarget, snapshot } from '../unit/runbook/fixtures.ts';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgwarden-runbook';
const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/monitor-AbCdEf';
const PAGES = 'arn:aws:sns:eu-west-1:123456789012:pgwarden-pages';
const NOTIFICATIONS = 'arn:aws:sns:eu-west-1:123456789012:pgwarden-notifications';

function awsError(name: string, message: string): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: 'client',
    $metadata: { httpStatusCode: name === 'ThrottlingException' ? 400 : undefined, attempts: 3 },
  });
}

/** The two ways an AWS call fails without anyone having done anything wrong. */
const FAULTS = [
  ['throttled', () => awsError('ThrottlingException', 'Rate exceeded')],
  ['timed out', () => awsError('TimeoutError', 'Connection timed out after 3000 ms')],
] as const;
/** SNS names its throttling error differently from the other services. */
const SNS_FAULTS = [
  ['throttled', () => awsError('ThrottledException', 'Rate exceeded')],
  ['timed out', () => awsError('TimeoutError', 'Connection timed out after 3000 ms')],
] as const;

const lambdaMock = mockClient(LambdaClient);
const cloudwatchMock = mockClient(CloudWatchClient);
const sfnMock = mockClient(SFNClient);
const rdsMock = mockClient(RDSClient);
const snsMock = mockClient(SNSClient);
const leaseTable = fakeLeaseTable();
const secretsMock = mockClient(SecretsManagerClient);
const mocks = [lambdaMock, cloudwatchMock, sfnMock, rdsMock, snsMock, secretsMock];

/** The Step Functions calls that open an incident, each failed on its own. */
const SFN_CALLS = {
  ListExecutions: {
    fail: (error: Error) => sfnMock.on(ListExecutionsCommand).rejects(error),
    calls: () => sfnMock.commandCalls(ListExecutionsCommand).length,
  },
  StartExecution: {
    fail: (error: Error) => sfnMock.on(StartExecutionCommand).rejects(error),
    calls: () => sfnMock.commandCalls(StartExecutionCommand).length,
  },
} as const;

const unhandled = recordUnhandled();

beforeEach(() => {
  for (const mock of mocks) mock.reset();
  leaseTable.reset();
});
afterEach(() => {
  vi.unstubAllEnvs();
  expect(unhandled.errors).toEqual([]);
});
afterAll(() => {
  unhandled.stop();
  for (const mock of mocks) mock.restore();
});

/** A handler module loaded fresh with this environment (handlers parse it once, at cold start). */
async function loadHandler(name: string, env: Record<string, string>): Promise<Handler> {
  vi.resetModules();
  for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
  const modules: Record<string, () => Promise<unknown>> = {
    probe: () => import('../../functions/probe/handler.ts'),
    remediate: () => import('../../functions/remediate/handler.ts'),
    monitor: () => import('../../functions/monitor/handler.ts'),
    sweep: () => import('../../functions/sweep/handler.ts'),
    'rds-events': () => import('../../functions/rds-events/handler.ts'),
    runbook: () => import('../../functions/runbook/handler.ts'),
  };
  const load = modules[name];
  if (!load) throw new Error(`no handler ${name}`);
  return ((await load()) as { handler: Handler }).handler;
}

/** Runs a handler with everything it prints captured; returns its result or its error, and the time taken. */
async function invoke(handler: Handler, event: unknown, remainingMs = 10_000) {
  const output = captureOutput();
  const started = performance.now();
  try {
    const result = await handler(event, lambdaContext('pgwarden-test', remainingMs)).then(
      (value) => ({ value, error: undefined }),
      (error: Error) => ({ value: undefined, error }),
    );
    return { ...result, ms: performance.now() - started, logs: output.text() };
  } finally {
    output.restore();
  }
}

/** How a Lambda error leaves a pgwarden function: its name kept, one line, no stack. */
function expectCleanError(error: Error | undefined, name: string) {
  expect(error, 'the handler should have failed').toBeInstanceOf(Error);
  expect(error?.name).toBe(name);
  expect(error?.message).not.toMatch(/\n\s+at /);
  expect(error?.stack).toBe(`${name}: ${error?.message}`);
}

const payload = (value: unknown) => ({
  StatusCode: 200,
  Payload: new TextEncoder().encode(JSON.stringify(value)) as never,
});

const now = () => new Date().toISOString();

describe.each(FAULTS)('Secrets Manager %s', (_, fault) => {
  it('gives the probe and remediate functions a retryable auth_failed without connecting anywhere', async () => {
    const listener = await countingListener();
    try {
      secretsMock.on(GetSecretValueCommand).rejects(fault());
      const connection = {
        host: '127.0.0.1',
        port: listener.port,
        database: 'app',
        auth: { kind: 'secret', secretId: `${SECRET}-${Math.random().toString(36).slice(2)}` },
        tls: { mode: 'disable' },
      };
      const env = {
        PGWARDEN_CONNECT_TIMEOUT: '1s',
        ...fleetEnvironmentFor([{ id: 'orders', connection }]),
      };
      const probe = await invoke(await loadHandler('probe', env), { targetId: 'orders', connection });
      const remediate = await invoke(await loadHandler('remediate', env), {
        targetId: 'orders',
        connection,
        policy: DEFAULT_REMEDIATION,
        actions: ['idle'],
      });
      for (const run of [probe, remediate]) {
        expect(run.error).toBeUndefined();
        expect(run.value).toMatchObject({
          ok: false,
          failure: { category: 'auth_failed', retryable: true, phase: 'connect' },
        });
        const message = (run.value as { failure: { message: string } }).failure.message;
        expect(message).toContain(fault().message);
        expect(message).not.toMatch(/\n\s+at /);
        expect(run.ms).toBeLessThan(2_000);
      }
      expect(listener.connections).toBe(0);
    } finally {
      await listener.close();
    }
  });
});

describe('monitor function when AWS APIs fail', () => {
  const TARGETS = JSON.stringify([
    {
      id: 'orders',
      host: 'orders.abc.eu-west-1.rds.amazonaws.com',
      database: 'orders',
      user: 'pgwarden_monitor',
      auth: { secretArn: SECRET },
      rds: { instanceId: 'orders' },
    },
  ]);
  const environment = (overrides: Record<string, string> = {}) => ({
    PGWARDEN_TARGETS: TARGETS,
    PGWARDEN_PROBE_FUNCTION: 'pgwarden-probe',
    PGWARDEN_STATE_MACHINE_ARN: STATE_MACHINE,
    PGWARDEN_CADENCE: '1s',
    PGWARDEN_CONFIRM_DELAY: '100ms',
    PGWARDEN_RUN_FOR: '1s',
    PGWARDEN_LEASE_TABLE: LEASE_TABLE,
    ...overrides,
  });
  const scheduled = { source: 'aws.events', 'detail-type': 'Scheduled Event' };
  /** The monitor's environment with tag discovery on (defaults authenticate discovered databases by IAM). */
  const withDiscovery = () =>
    environment({
      PGWARDEN_DISCOVERY: '{}',
      PGWARDEN_DEFAULTS: JSON.stringify({ auth: { iam: true, region: 'eu-west-1' } }),
    });

  interface Summary {
    probes: number;
    ticks: number;
    targets: Array<{ targetId: string; status: string; probes: number; failure?: string; incident?: string }>;
    metrics: { sent: number; calls: number; failed: number };
  }

  /** The database answers (healthy or down) through the faked probe function. */
  function database(state: 'healthy' | 'down') {
    lambdaMock
      .on(InvokeCommand)
      .callsFake(async () =>
        payload(
          state === 'healthy'
            ? snapshot({ target: 'orders', checkedAt: now() })
            : { ...failure('unreachable'), target: 'orders', checkedAt: now() },
        ),
      );
  }
  function healthyAws() {
    cloudwatchMock.on(PutMetricDataCommand).resolves({});
    sfnMock.on(ListExecutionsCommand).resolves({ executions: [] });
    sfnMock.on(StartExecutionCommand).resolves({
      executionArn: `${STATE_MACHINE.replace('stateMachine', 'execution')}:pgw-orders-1`,
      startDate: new Date(),
    });
  }

  it.each(FAULTS)(
    'probes anyway when the lease table cannot be asked (PutItem %s), and says so in its log',
    async (_, fault) => {
      healthyAws();
      leaseTable.fail(fault());
      database('healthy');
      const run = await invoke(await loadHandler('monitor', environment()), scheduled);
      expect(run.error).toBeUndefined();
      expect((run.value as Summary).probes).toBeGreaterThan(0);
      expect(cloudwatchMock.commandCalls(PutMetricDataCommand)).toHaveLength(1);
      expect(run.logs).toContain('the monitor lease table could not be asked; running without it');
      expect(run.logs).toContain(fault().message);
    },
  );

  it.each(FAULTS)(
    'reports a probe it could not invoke (Invoke %s) as a failed probe, and finishes its run',
    async (_, fault) => {
      healthyAws();
      lambdaMock.on(InvokeCommand).rejects(fault());
      const run = await invoke(await loadHandler('monitor', environment()), scheduled);
      expect(run.error).toBeUndefined();
      const summary = run.value as Summary;
      expect(summary.ticks).toBe(1);
      expect(summary.targets[0]).toMatchObject({ targetId: 'orders', failure: 'unknown' });
      expect(summary.probes).toBe(lambdaMock.commandCalls(InvokeCommand).length);
      // The failure says it was pgwarden's side that could not look, and why.
      const probeSuccess = cloudwatchMock
        .commandCalls(PutMetricDataCommand)
        .flatMap((c) => c.args[0].input.MetricData ?? [])
        .find((d) => d.MetricName === 'ProbeSuccess');
      expect(probeSuccess?.Values).toEqual([0]);
      expect(run.logs).not.toMatch(/\n\s+at /);
      expect(run.ms).toBeLessThan(6_000);
    },
  );

  it.each(FAULTS)(
    'never fails because PutMetricData %s: it logs the loss and returns its summary',
    async (_, fault) => {
      healthyAws();
      database('healthy');
      cloudwatchMock.on(PutMetricDataCommand).rejects(fault());
      const run = await invoke(await loadHandler('monitor', environment()), scheduled);
      expect(run.error).toBeUndefined();
      const summary = run.value as Summary;
      expect(summary.targets[0]).toMatchObject({ targetId: 'orders', status: 'healthy' });
      expect(summary.metrics.sent).toBe(0);
      expect(summary.metrics.failed).toBeGreaterThan(0);
      expect(run.logs).toContain('PutMetricData failed');
      expect(run.logs).toContain(fault().message);
    },
  );

  it.each(['ListExecutions', 'StartExecution'] as const)(
    'logs and counts a throttled %s, and carries on probing',
    async (call) => {
      healthyAws();
      database('down');
      SFN_CALLS[call].fail(FAULTS[0][1]());
      const run = await invoke(
        await loadHandler('monitor', environment({ PGWARDEN_RUN_FOR: '2s' })),
        scheduled,
      );
      expect(run.error).toBeUndefined();
      const summary = run.value as Summary;
      expect(summary.targets[0]).toMatchObject({ status: 'unhealthy', failure: 'unreachable' });
      expect(summary.targets[0]?.incident).toBeUndefined();
      expect(run.logs).toContain('could not open the incident');
      expect(run.logs).toContain('Rate exceeded');
      // Probing went on after the failed attempt, and the next verdict tried again.
      expect(SFN_CALLS[call].calls()).toBeGreaterThanOrEqual(2);
      expect(summary.ticks).toBe(2);
      expect(summary.probes).toBeGreaterThan(3);
      // ...and the metrics that drive the alarms still went out, the failed start among them.
      expect(summary.metrics.failed).toBe(0);
      const sent = cloudwatchMock
        .commandCalls(PutMetricDataCommand)
        .flatMap((c) => c.args[0].input.MetricData ?? [])
        .map((d) => d.MetricName);
      expect(sent).toContain('IncidentStartFailures');
    },
  );

  it('logs a timed-out DescribeExecution after a name clash and carries on', async () => {
    healthyAws();
    database('down');
    sfnMock.on(StartExecutionCommand).rejects(awsError('ExecutionAlreadyExists', 'Execution Already Exists'));
    sfnMock.on(DescribeExecutionCommand).rejects(FAULTS[1][1]());
    const run = await invoke(await loadHandler('monitor', environment()), scheduled);
    expect(run.error).toBeUndefined();
    expect((run.value as Summary).targets[0]).toMatchObject({ status: 'unhealthy' });
    expect(sfnMock.commandCalls(DescribeExecutionCommand).length).toBeGreaterThan(0);
    expect(run.logs).toContain('could not open the incident');
    expect(run.logs).toContain('Connection timed out');
  });

  it.each(FAULTS)(
    'keeps watching the listed targets when discovery (DescribeDBClusters/Instances) is %s',
    async (_, fault) => {
      healthyAws();
      database('healthy');
      rdsMock.on(DescribeDBClustersCommand).rejects(fault());
      rdsMock.on(DescribeDBInstancesCommand).rejects(fault());
      const run = await invoke(await loadHandler('monitor', withDiscovery()), scheduled);
      expect(run.error).toBeUndefined();
      expect((run.value as Summary).targets).toEqual([
        expect.objectContaining({ targetId: 'orders', status: 'healthy' }),
      ]);
      expect(run.logs).toContain('discovery failed; using the last known targets');
    },
  );

  it('finishes its run and returns a summary when every AWS API it calls fails at once', async () => {
    lambdaMock.onAnyCommand().rejects(FAULTS[0][1]());
    cloudwatchMock.onAnyCommand().rejects(FAULTS[0][1]());
    sfnMock.onAnyCommand().rejects(FAULTS[0][1]());
    rdsMock.onAnyCommand().rejects(FAULTS[0][1]());
    const run = await invoke(await loadHandler('monitor', withDiscovery()), scheduled);
    expect(run.error).toBeUndefined();
    const summary = run.value as Summary;
    expect(summary.ticks).toBe(1);
    expect(summary.targets[0]).toMatchObject({ targetId: 'orders', status: 'unhealthy' });
    expect(summary.metrics.failed).toBeGreaterThan(0);
    expect(run.ms).toBeLessThan(6_000);
  });

  it('stops waiting for a probe invocation that never answers in time to send its metrics before the deadline', async () => {
    healthyAws();
    lambdaMock.on(InvokeCommand).callsFake(() => new Promise(() => undefined));
    const run = await invoke(await loadHandler('monitor', environment()), scheduled, 7_000);
    expect(run.error).toBeUndefined();
    // Probing ends 5 s before the deadline (4 s for the flush, 1 s for the early abort).
    expect(run.ms).toBeLessThan(6_000);
    const summary = run.value as Summary;
    expect(summary.targets[0]).toMatchObject({ targetId: 'orders', probes: 0 });
    const sent = cloudwatchMock.commandCalls(PutMetricDataCommand).flatMap((c) => c.args[0].input.MetricData);
    expect(sent.map((d) => d?.MetricName)).toEqual(['MonitorHeartbeat']);
  });
});

describe('sweep function when AWS APIs fail', () => {
  const environment = {
    PGWARDEN_REMEDIATE_FUNCTION: 'pgwarden-remediate',
    PGWARDEN_TARGETS: JSON.stringify([
      { id: 'orders', host: 'orders.db', database: 'orders', auth: { secretArn: SECRET } },
      { id: 'billing', host: 'billing.db', database: 'billing', auth: { secretArn: SECRET } },
    ]),
    PGWARDEN_DISCOVERY: '{}',
    PGWARDEN_DEFAULTS: JSON.stringify({ auth: { iam: true, region: 'eu-west-1' } }),
  };

  it.each(FAULTS)('reports every target whose Invoke is %s as failed, and never throws', async (_, fault) => {
    rdsMock.onAnyCommand().resolves({});
    lambdaMock.on(InvokeCommand).rejects(fault());
    const run = await invoke(await loadHandler('sweep', environment), {});
    expect(run.error).toBeUndefined();
    expect(run.value).toEqual({
      results: [
        { targetId: 'orders', ok: false, error: `invoking pgwarden-remediate failed: ${fault().message}` },
        { targetId: 'billing', ok: false, error: `invoking pgwarden-remediate failed: ${fault().message}` },
      ],
    });
  });

  it('sweeps the listed targets when discovery is throttled', async () => {
    rdsMock.onAnyCommand().rejects(FAULTS[0][1]());
    lambdaMock.on(InvokeCommand).callsFake(async (input: { Payload?: Uint8Array }) => {
      const request = JSON.parse(new TextDecoder().decode(input.Payload)) as { targetId: string };
      return payload({ ok: true, dryRun: false, terminated: [], skipped: [], targetId: request.targetId });
    });
    const run = await invoke(await loadHandler('sweep', environment), {});
    expect(run.error).toBeUndefined();
    expect((run.value as { results: Array<{ targetId: string; ok: boolean }> }).results).toEqual([
      expect.objectContaining({ targetId: 'orders', ok: true }),
      expect.objectContaining({ targetId: 'billing', ok: true }),
    ]);
    expect(run.logs).toContain('discovery failed; using the last known targets');
  });
});

describe('rds-events function when AWS APIs fail', () => {
  const fixture = (name: string) =>
    JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/rds-events', name), 'utf8'));
  const environment = {
    PGWARDEN_STATE_MACHINE_ARN: STATE_MACHINE,
    PGWARDEN_TARGETS: JSON.stringify([
      {
        id: 'orders-prod',
        host: 'orders-prod.abc.eu-west-1.rds.amazonaws.com',
        database: 'orders',
        user: 'pgwarden_monitor',
        auth: { iam: true, region: 'eu-west-1' },
        rds: { instanceId: 'orders-prod' },
      },
      {
        id: 'ledger',
        host: 'ledger.cluster-abc.eu-west-1.rds.amazonaws.com',
        database: 'ledger',
        user: 'pgwarden_monitor',
        auth: { iam: true, region: 'eu-west-1' },
        rds: { clusterId: 'ledger' },
      },
    ]),
  };
  function healthySfn() {
    sfnMock.on(ListExecutionsCommand).resolves({ executions: [] });
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: 'arn:x', startDate: new Date() });
  }

  it.each([
    ['ListExecutions', 'ThrottlingException'],
    ['StartExecution', 'ThrottlingException'],
    ['StartExecution', 'TimeoutError'],
  ] as const)('fails with a clean %s %s error for EventBridge to retry', async (call, name) => {
    healthySfn();
    cloudwatchMock.on(PutMetricDataCommand).resolves({});
    SFN_CALLS[call].fail(name === 'TimeoutError' ? FAULTS[1][1]() : FAULTS[0][1]());
    const run = await invoke(await loadHandler('rds-events', environment), fixture('instance-0004.json'));
    expectCleanError(run.error, name);
    expect(run.ms).toBeLessThan(2_000);
  });

  it('still sends IncidentStartFailures, which pages, when the incident cannot be started', async () => {
    healthySfn();
    cloudwatchMock.on(PutMetricDataCommand).resolves({});
    SFN_CALLS.StartExecution.fail(FAULTS[0][1]());
    const run = await invoke(await loadHandler('rds-events', environment), fixture('instance-0004.json'));
    expectCleanError(run.error, 'ThrottlingException');
    const sent = cloudwatchMock
      .commandCalls(PutMetricDataCommand)
      .flatMap((c) => c.args[0].input.MetricData ?? [])
      .map((d) => d.MetricName);
    expect(sent).toContain('IncidentStartFailures');
  });

  it('fails with a clean error when DescribeExecution is throttled after a name clash', async () => {
    healthySfn();
    sfnMock.on(StartExecutionCommand).rejects(awsError('ExecutionAlreadyExists', 'Execution Already Exists'));
    sfnMock.on(DescribeExecutionCommand).rejects(FAULTS[0][1]());
    const run = await invoke(await loadHandler('rds-events', environment), fixture('instance-0004.json'));
    expectCleanError(run.error, 'ThrottlingException');
  });

  it.each(FAULTS)('opens the incident even when PutMetricData is %s', async (_, fault) => {
    healthySfn();
    cloudwatchMock.on(PutMetricDataCommand).rejects(fault());
    const run = await invoke(await loadHandler('rds-events', environment), fixture('instance-0004.json'));
    expect(run.error).toBeUndefined();
    expect(run.value).toMatchObject({ action: 'opened', targetId: 'orders-prod' });
    expect(run.logs).toContain('PutMetricData failed');
  });

  it.each(FAULTS)(
    'ignores, with a warning, an instance event whose cluster lookup (DescribeDBInstances) is %s',
    async (_, fault) => {
      healthySfn();
      cloudwatchMock.on(PutMetricDataCommand).resolves({});
      rdsMock.on(DescribeDBInstancesCommand).rejects(fault());
      const event = fixture('instance-0004.json');
      event.detail.SourceIdentifier = 'ledger-instance-1';
      const run = await invoke(await loadHandler('rds-events', environment), event);
      expect(run.error).toBeUndefined();
      expect(run.value).toMatchObject({ action: 'ignored' });
      expect(run.logs).toContain('could not look up the cluster of an instance');
      expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(0);
    },
  );
});

describe('runbook function when AWS APIs fail', () => {
  const target = fixtureTarget({
    remediation: { ...DEFAULT_REMEDIATION, allowStartInstance: true },
  });
  const environment = {
    PGWARDEN_PAGES_TOPIC_ARN: PAGES,
    PGWARDEN_NOTIFICATIONS_TOPIC_ARN: NOTIFICATIONS,
    ...fleetEnvironmentFor([
      {
        id: target.id,
        connection: target.connection,
        ...(target.rds ? { rds: target.rds } : {}),
        remediation: { allowStartInstance: true },
      },
    ]),
  };
  const state = (extra: Record<string, unknown> = {}) => ({
    incidentId: 'pgw-orders-20261126-1',
    requestId: 'r-1',
    target,
    trigger: { kind: 'probe', summary: 'probes failed', observedAt: now() },
    settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
    ...extra,
  });

  async function openedRecord(handler: Handler): Promise<IncidentRecord> {
    const run = await invoke(handler, { action: 'open', state: state() });
    expect(run.error).toBeUndefined();
    return run.value as IncidentRecord;
  }

  it.each(SNS_FAULTS)(
    'composes the notice and the page without calling SNS, so SNS being %s cannot fail the task',
    async (_, fault) => {
      const handler = await loadHandler('runbook', environment);
      snsMock.on(PublishCommand).rejects(fault());
      const opened = await invoke(handler, { action: 'open', state: state() });
      expect(opened.error).toBeUndefined();
      const incident = opened.value as IncidentRecord;
      expect(incident.outbox?.opened).toMatchObject({ TopicArn: NOTIFICATIONS });
      const paged = await invoke(handler, { action: 'page', state: state({ incident }) });
      expect(paged.error).toBeUndefined();
      expect((paged.value as IncidentRecord).outbox).toEqual({
        page: expect.objectContaining({ TopicArn: PAGES }),
      });
      expect(snsMock.calls()).toHaveLength(0);
    },
  );

  it("retries SNS's throttling error on every state that publishes, and nothing that may follow a delivery", () => {
    for (const name of [
      'PublishOpened',
      'PublishAnnouncement',
      'PageOnCall',
      'PublishResolution',
      'PublishResolutionToOnCall',
      'PublishFinalNotice',
      'PublishFailure',
    ]) {
      expect(runbookRetries(name), name).toContain('SNS.ThrottledException');
      expect(runbookRetries(name), name).not.toContain('States.Timeout');
      expect(runbookRetries(name), name).not.toContain('States.ALL');
    }
  });

  it.each(FAULTS)(
    'lists every evidence source as a gap, and throws nothing, when RDS and CloudWatch are %s',
    async (_, fault) => {
      const handler = await loadHandler('runbook', environment);
      const incident = await openedRecord(handler);
      rdsMock.on(DescribeDBInstancesCommand).rejects(fault());
      rdsMock.on(DescribeEventsCommand).rejects(fault());
      rdsMock.on(DescribeDBLogFilesCommand).rejects(fault());
      rdsMock.on(DownloadDBLogFilePortionCommand).rejects(fault());
      cloudwatchMock.on(GetMetricDataCommand).rejects(fault());
      const run = await invoke(handler, { action: 'evidence', state: state({ incident }) });
      expect(run.error).toBeUndefined();
      const evidence = (run.value as IncidentRecord).evidence;
      expect(evidence?.gaps).toEqual([
        `RDS status: ${fault().message}`,
        `RDS events: ${fault().message}`,
        `database log: ${fault().message}`,
        `instance metrics: ${fault().message}`,
      ]);
      expect(evidence?.metrics).toEqual([]);
      // A log that cannot be listed is a gap of its own; the other sources are still asked.
      rdsMock.on(DescribeDBLogFilesCommand).resolves({ DescribeDBLogFiles: [] });
      const again = await invoke(handler, { action: 'evidence', state: state({ incident }) });
      expect((again.value as IncidentRecord).evidence?.gaps).toEqual([
        `RDS status: ${fault().message}`,
        `RDS events: ${fault().message}`,
        'database log: no log file written in the last hour',
        `instance metrics: ${fault().message}`,
      ]);
    },
  );

  it.each(FAULTS)(
    'judges the running node without the RDS status when DescribeDBInstances is %s',
    async (_, fault) => {
      const handler = await loadHandler('runbook', environment);
      const incident = await openedRecord(handler);
      rdsMock.on(DescribeDBInstancesCommand).rejects(fault());
      const probe: ProbeResult = { ...failure('unreachable'), checkedAt: now() };
      const run = await invoke(handler, {
        action: 'node',
        node: 'running',
        state: state({ incident, probe }),
      });
      expect(run.error).toBeUndefined();
      const step = (run.value as IncidentRecord).steps[0];
      expect(step?.node).toBe('running');
      expect(step?.detail).toContain(fault().message);
    },
  );

  it.each(FAULTS)(
    'records a failed start, and schedules the next check, when StartDBInstance is %s',
    async (_, fault) => {
      const handler = await loadHandler('runbook', environment);
      const incident = await openedRecord(handler);
      rdsMock.on(StartDBInstanceCommand).rejects(fault());
      const run = await invoke(handler, { action: 'start_instance', state: state({ incident }) });
      expect(run.error).toBeUndefined();
      const record = run.value as IncidentRecord;
      expect(record.actions).toEqual([
        expect.objectContaining({
          kind: 'start_instance',
          ok: false,
          summary: `could not start orders: ${fault().message}`,
        }),
      ]);
      expect(record.startRequestedAt).toBeUndefined();
      expect(record.decision).toBe('wait');
    },
  );

  it.each(FAULTS)(
    'fails the hand-over to a new execution with a clean named error, for its retry, when StartExecution is %s',
    async (_, fault) => {
      const handler = await loadHandler('runbook', environment);
      const incident = await openedRecord(handler);
      sfnMock.on(StartExecutionCommand).rejects(fault());
      const run = await invoke(handler, {
        action: 'continue',
        stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgwarden-runbook',
        state: state({ incident }),
      });
      expectCleanError(run.error, fault().name);
      expect(runbookRetries('ContinueAsNew')).toContain(
        fault().name === 'TimeoutError' ? 'States.Timeout' : fault().name,
      );
    },
  );

  it('returns a named TimeoutError before the Lambda deadline when Step Functions never answers the hand-over', async () => {
    const handler = await loadHandler('runbook', environment);
    const incident = await openedRecord(handler);
    sfnMock.on(StartExecutionCommand).callsFake(() => new Promise(() => undefined));
    const run = await invoke(
      handler,
      {
        action: 'continue',
        stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgwarden-runbook',
        state: state({ incident }),
      },
      1_600,
    );
    expectCleanError(run.error, 'TimeoutError');
    expect(run.ms).toBeLessThan(1_600);
  });
});

/** The errors a runbook Task state retries. */
function runbookRetries(stateName: string): string[] {
  const states = runbookDefinition().States as Record<string, { Retry?: Array<{ ErrorEquals: string[] }> }>;
  return (states[stateName]?.Retry ?? []).flatMap((r) => r.ErrorEquals);
}

describe('incident workflow when its own AWS calls fail', () => {
  /** SNS that fails the publishes `fails` picks; everything else is delivered. */
  function flakySns(clock: ManualClock, fails: (kind: string, attempt: number) => Error | undefined) {
    const sns = new LocalSns(clock);
    const attempts = new Map<string, number>();
    return {
      sns,
      attempts,
      async send(command: unknown) {
        const input = (command as PublishCommand).input;
        const kind = input.MessageAttributes?.['pgwarden.kind']?.StringValue ?? '';
        const attempt = (attempts.get(kind) ?? 0) + 1;
        attempts.set(kind, attempt);
        const error = fails(kind, attempt);
        if (error) throw error;
        return sns.send(command);
      },
    };
  }

  /** A database that stays down (nothing listens on its port) for the whole incident. */
  async function outage(
    fails: (kind: string, attempt: number) => Error | undefined,
    rdsFails?: (command: unknown) => Error | undefined,
  ) {
    const clock = new ManualClock(Date.now());
    const secrets = new LocalSecretsManager();
    const secretId = `${SECRET}-workflow-${Math.random().toString(36).slice(2)}`;
    secrets.put(secretId, { username: 'pgwarden_monitor', password: 'monitor-pw-123' });
    const sns = flakySns(clock, fails);
    const localRds = new LocalRds(clock);
    localRds.add({ id: 'orders', status: () => 'available', logLines: () => [] });
    const rds = {
      send: async (command: unknown) => {
        const error = rdsFails?.(command);
        if (error) throw error;
        return localRds.send(command);
      },
    };
    const target: Target = {
      id: 'orders',
      connection: {
        host: '127.0.0.1',
        port: await freePort(),
        database: 'orders',
        auth: { kind: 'secret', secretId },
        tls: { mode: 'disable' },
      },
      rds: { instanceId: 'orders' },
      thresholds: DEFAULT_THRESHOLDS,
      remediation: DEFAULT_REMEDIATION,
    };
    const sfn = createLocalWorkflow({
      clock,
      logger: silentLogger,
      catalog: { targets: [target], defaults: {} },
      secrets,
      sns: sns as never,
      rds: rds as never,
      cloudwatch: new LocalCloudWatch() as never,
      waits: 'virtual',
      probeConfig: { connectTimeoutMs: 1_000, statementTimeoutMs: 1_000 },
    });
    const openedAt = clock.now();
    const input: RunbookInput = {
      incidentId: 'pgw-orders-test-1',
      requestId: 'r',
      target,
      trigger: { kind: 'probe', summary: 'probes failed', observedAt: new Date(openedAt).toISOString() },
      settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 25 * 60 },
    };
    await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: LOCAL_STATE_MACHINE,
        name: input.incidentId,
        input: JSON.stringify(input),
      }),
    );
    const execution = await sfn.wait(input.incidentId);
    const pages = sns.sns.published.filter((m) => m.topic === 'pgwarden-pages');
    return { execution, pages, attempts: sns.attempts, minuteOf: (at: number) => (at - openedAt) / 60_000 };
  }

  it('retries a throttled page publish and pages exactly once, at 20 minutes', async () => {
    const run = await outage((kind, attempt) =>
      kind === 'page' && attempt <= 2 ? awsError('ThrottledException', 'Rate exceeded') : undefined,
    );
    expect(run.execution.status).toBe('SUCCEEDED');
    expect(run.attempts.get('page')).toBe(3);
    const pages = run.pages.filter((m) => m.attributes['pgwarden.kind'] === 'page');
    expect(pages).toHaveLength(1);
    expect(run.minuteOf(pages[0]?.at ?? 0)).toBe(20);
    // The retry backs off; Step Functions waits 2 s, then 4 s, ... (virtual here).
    const retry = (runbookDefinition().States as Record<string, { Retry: Array<Record<string, unknown>> }>)
      .PageOnCall?.Retry[0];
    expect(retry).toMatchObject({ IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 5 });
  });

  it('still pages, listing the gaps, when every RDS evidence call is throttled', async () => {
    const run = await outage(
      () => undefined,
      (command) =>
        command instanceof DescribeEventsCommand || command instanceof DownloadDBLogFilePortionCommand
          ? awsError('Throttling', 'Rate exceeded')
          : undefined,
    );
    const page = run.pages.find((m) => m.attributes['pgwarden.kind'] === 'page');
    expect(page).toBeDefined();
    expect(page?.message).toContain('Not available:');
    expect(page?.message).toContain('RDS events: Rate exceeded');
    expect(page?.message).toContain('database log: Rate exceeded');
  });

  it('sends a page saying the runbook itself failed when the page cannot be published at all', async () => {
    const run = await outage((kind) =>
      kind === 'page' ? awsError('ThrottledException', 'Rate exceeded') : undefined,
    );
    expect(run.execution.status).toBe('FAILED');
    expect(run.execution.error).toBe('RunbookFailed');
    // The first attempt and five retries.
    expect(run.attempts.get('page')).toBe(6);
    expect(run.pages.map((m) => m.attributes['pgwarden.kind'])).toEqual(['runbook_failed']);
    expect(run.pages[0]?.message).toContain('Failure: SNS.ThrottledException');
  });
});
