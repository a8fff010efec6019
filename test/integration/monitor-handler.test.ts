import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalStepFunctions } from '../../cli/local/step-functions.ts';
import { coldStart, lambdaContext } from '../helpers/lambda.ts';
import { fakeLeaseTable, LEASE_TABLE } from '../helpers/lease-table.ts';
import { startTestServer, type TestServer } from '../helpers/postgres.ts';

const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/local-AbCdEf';
const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgwarden-runbook';
type Handler = (event: unknown, context: unknown) => Promise<unknown>;

const lambdaMock = mockClient(LambdaClient);
const cloudwatchMock = mockClient(CloudWatchClient);
const sfnMock = mockClient(SFNClient);
const secretsMock = mockClient(SecretsManagerClient);
const leaseTable = fakeLeaseTable();

describe('monitor function handler', () => {
  let server: TestServer;
  let probeHandler: Handler;
  let held: Array<() => void> = [];
  let sfn: LocalStepFunctions;

  const environment = (overrides: Record<string, string> = {}) => ({
    PGWARDEN_TARGETS: JSON.stringify([
      {
        id: 'local-db',
        host: '127.0.0.1',
        port: server.port,
        database: 'postgres',
        user: 'postgres',
        auth: { secretArn: SECRET },
        tls: 'disable',
      },
    ]),
    PGWARDEN_PROBE_FUNCTION: 'pgwarden-probe',
    PGWARDEN_STATE_MACHINE_ARN: STATE_MACHINE,
    PGWARDEN_CADENCE: '1s',
    PGWARDEN_CONFIRM_DELAY: '100ms',
    PGWARDEN_RUN_FOR: '2s',
    PGWARDEN_LEASE_TABLE: LEASE_TABLE,
    ...overrides,
  });

  async function loadMonitor(env: Record<string, string>): Promise<Handler> {
    vi.resetModules();
    for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
    return ((await import('../../functions/monitor/handler.ts')) as unknown as { handler: Handler }).handler;
  }

  beforeAll(async () => {
    server = await startTestServer();
    // The probe function, deployed with the same fleet as the monitor.
    probeHandler = await coldStart('probe', { PGWARDEN_TARGETS: environment().PGWARDEN_TARGETS });
  });
  afterAll(async () => {
    for (const release of held) release();
    vi.unstubAllEnvs();
    await server?.destroy();
  });
  beforeEach(() => {
    for (const mock of [lambdaMock, cloudwatchMock, sfnMock, secretsMock]) mock.reset();
    leaseTable.reset();
    secretsMock
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ username: 'postgres', password: server.password }) });
    // The probe function runs for real (against the real server) behind the faked Lambda API.
    lambdaMock.on(InvokeCommand).callsFake(async (input) => {
      const payload = JSON.parse(new TextDecoder().decode(input.Payload));
      const result = await probeHandler(payload, lambdaContext('pgwarden-probe'));
      return { StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(result)) };
    });
    cloudwatchMock.on(PutMetricDataCommand).resolves({});
    held = [];
    sfn = new LocalStepFunctions({
      stateMachineArn: STATE_MACHINE,
      definition: {
        StartAt: 'Hold',
        States: {
          Hold: { Type: 'Task', Resource: 'arn:aws:lambda:eu-west-1:123456789012:function:hold', End: true },
        },
      },
      functions: {
        'arn:aws:lambda:eu-west-1:123456789012:function:hold': () =>
          new Promise((r) => held.push(() => r({}))),
      },
    });
    sfnMock.on(StartExecutionCommand).callsFake((input) => sfn.send(new StartExecutionCommand(input)));
    sfnMock.on(ListExecutionsCommand).callsFake((input) => sfn.send(new ListExecutionsCommand(input)));
    sfnMock.on(DescribeExecutionCommand).callsFake((input) => sfn.send(new DescribeExecutionCommand(input)));
  });

  it('probes through the probe function on a sub-minute cadence and sends all metrics in one PutMetricData call', async () => {
    const handler = await loadMonitor(environment());
    const summary = (await handler(
      { source: 'aws.events', 'detail-type': 'Scheduled Event' },
      lambdaContext('pgwarden-monitor', 60_000),
    )) as {
      ticks: number;
      probes: number;
      targets: Array<{ targetId: string; status: string }>;
      metrics: { calls: number; sent: number };
    };
    expect(summary.ticks).toBe(2);
    expect(summary.targets).toEqual([{ targetId: 'local-db', status: 'healthy', probes: summary.probes }]);
    expect(lambdaMock.commandCalls(InvokeCommand)).toHaveLength(summary.probes);
    expect(lambdaMock.commandCalls(InvokeCommand)[0]?.args[0].input.FunctionName).toBe('pgwarden-probe');
    const puts = cloudwatchMock.commandCalls(PutMetricDataCommand);
    expect(puts).toHaveLength(1);
    expect(puts[0]?.args[0].input.Namespace).toBe('PgWarden');
    expect(summary.metrics.calls).toBe(1);
    expect(sfnMock.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  it('holds the lease from before the first probe until after the metrics are sent, then frees it', async () => {
    const handler = await loadMonitor(environment({ PGWARDEN_RUN_FOR: '1s' }));
    const order: string[] = [];
    const seen = (what: string) => () => order.push(what);
    lambdaMock.on(InvokeCommand).callsFake(async (input) => {
      if (!order.includes('probe')) seen('probe')();
      const payload = JSON.parse(new TextDecoder().decode(input.Payload));
      const result = await probeHandler(payload, lambdaContext('pgwarden-probe'));
      return { StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(result)) };
    });
    cloudwatchMock.on(PutMetricDataCommand).callsFake(async () => {
      seen('publish')();
      return {};
    });
    await handler({}, lambdaContext('pgwarden-monitor', 59_000));
    expect(leaseTable.calls()).toEqual(['put', 'delete']);
    expect(order).toEqual(['probe', 'publish']);
    expect(leaseTable.item()).toBeUndefined();
  });

  it('does nothing while another run holds the lease: no probe, no metric', async () => {
    const handler = await loadMonitor(environment({ PGWARDEN_RUN_FOR: '1s' }));
    leaseTable.hold('another-run', Date.now() + 30_000);
    const result = await handler({}, lambdaContext('pgwarden-monitor', 59_000));
    expect(result).toMatchObject({ skipped: 'another monitor run is in progress', status: 'busy' });
    expect(lambdaMock.commandCalls(InvokeCommand)).toHaveLength(0);
    expect(cloudwatchMock.commandCalls(PutMetricDataCommand)).toHaveLength(0);
    expect(leaseTable.item()?.holder?.S).toBe('another-run');
  });

  it('never lets two runs delivered at once both probe and publish', async () => {
    const handler = await loadMonitor(environment({ PGWARDEN_RUN_FOR: '1s' }));
    const results = await Promise.all([
      handler({ id: 'event-1' }, lambdaContext('pgwarden-monitor', 59_000)),
      handler({ id: 'event-1' }, lambdaContext('pgwarden-monitor', 59_000)),
    ]);
    expect(results.filter((r) => (r as { skipped?: string }).skipped !== undefined)).toHaveLength(1);
    expect(cloudwatchMock.commandCalls(PutMetricDataCommand)).toHaveLength(1);
  });

  it('takes over a lease whose run has ended without freeing it (timed out)', async () => {
    const handler = await loadMonitor(environment({ PGWARDEN_RUN_FOR: '1s' }));
    leaseTable.hold('timed-out-run', Date.now() - 1);
    const result = (await handler({}, lambdaContext('pgwarden-monitor', 59_000))) as { probes: number };
    expect(result.probes).toBeGreaterThan(0);
  });

  it('starts exactly one runbook execution when the database goes away', async () => {
    const handler = await loadMonitor(environment({ PGWARDEN_RUN_FOR: '1s' }));
    await server.stop();
    try {
      await handler({}, lambdaContext('pgwarden-monitor', 60_000));
    } finally {
      await server.start();
    }
    const starts = sfnMock.commandCalls(StartExecutionCommand);
    expect(starts).toHaveLength(1);
    const input = JSON.parse(starts[0]?.args[0].input.input ?? '{}');
    expect(starts[0]?.args[0].input.name).toMatch(/^pgw-local-db-\d{8}-1$/);
    expect(input.trigger).toMatchObject({ kind: 'probe', category: 'unreachable' });
    expect(input.target.connection.auth).toEqual({ kind: 'secret', secretId: SECRET });
    expect(input.settings).toEqual({
      escalateAfterSeconds: 1_200,
      recheckSeconds: 60,
      maxDurationSeconds: 14_400,
    });
  });

  it('fails at cold start with a ConfigError naming the variable, the field and the fix', async () => {
    const bad = environment({
      PGWARDEN_TARGETS: JSON.stringify([
        { id: 'Orders DB', host: 'h', port: 99_999, database: 'x', auth: { secretArn: SECRET } },
      ]),
      PGWARDEN_CADENCE: 'often',
    });
    const error = await loadMonitor(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('ConfigError');
    expect((error as Error).message).toContain('PGWARDEN_CADENCE: is not a duration (got "often")');
    const fleetError = await loadMonitor({ ...bad, PGWARDEN_CADENCE: '10s' }).catch((e: unknown) => e);
    expect((fleetError as Error).message).toContain('targets[0].id: has the wrong format (got "Orders DB")');
    expect((fleetError as Error).message).toContain('targets[0].port: is out of range (got 99999)');
  });
});
