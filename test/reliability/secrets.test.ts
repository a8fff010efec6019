/**
 * Nothing leaks: a known password, a known Secrets Manager value and a known IAM token travel through
 * full runs of the functions and a whole incident, and never show up in a log line, a page, an error,
 * a result or an execution's history. TLS is verified unless turned off explicitly.
 */
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
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LocalStepFunctions } from '../../cli/local/step-functions.ts';
import { classifyError } from '../../shared/classify.ts';
import { parseDatabaseUrl } from '../../shared/connection.ts';
import { type DbSession, openSession, tlsOptions } from '../../shared/db.ts';
import { ValidationError } from '../../shared/errors.ts';
import { parseFleet } from '../../shared/fleet.ts';
import { createConsoleLogger, silentLogger } from '../../shared/logger.ts';
import { probe } from '../../shared/probe/snapshot.ts';
import { redact } from '../../shared/redact.ts';
import { captureOutput, coldStart, lambdaContext } from '../helpers/lambda.ts';
import { fakeLeaseTable, LEASE_TABLE } from '../helpers/lease-table.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';
import { fleetEnvironmentFor } from '../helpers/targets.ts';
import { runIncident } from '../workflow/harness.ts';

/** Values distinctive enough that finding one anywhere is a leak. */
const PASSWORD = 'PGW-pass-7f3a9c2e1d';
const WRONG_PASSWORD = 'PGW-wrong-4b8e6a0c93';
const SIGNATURE = 'PGWsig0123456789abcdef0123456789abcdef';
const TOKEN = `127.0.0.1:5432/?Action=connect&DBUser=iam_user&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAPGWTEST%2F20261126%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20261126T100000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=${SIGNATURE}`;
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/leak-check';
const STATE_MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:pgwarden-runbook';
const NEEDLES = [PASSWORD, WRONG_PASSWORD, SIGNATURE, 'PGW-pass', 'PGW-wrong'];

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/** Everything observable, as one string: results, errors (message and stack), and captured output. */
function everything(...items: unknown[]): string {
  return items
    .map((item) =>
      item instanceof Error
        ? `${item.name} ${item.message} ${item.stack ?? ''} ${JSON.stringify(item)}`
        : typeof item === 'string'
          ? item
          : JSON.stringify(item),
    )
    .join('\n');
}

function expectNoSecret(text: string): void {
  for (const needle of NEEDLES) expect(text, `leaked ${needle}`).not.toContain(needle);
}

/** Runs `work` with stdout, stderr and console captured; returns its outcome and the output. */
async function observed<T>(work: () => Promise<T>): Promise<{ value?: T; error?: unknown; output: string }> {
  const output = captureOutput();
  const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((level) =>
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      process.stdout.write(`${args.map(String).join(' ')}\n`);
    }),
  );
  try {
    return { value: await work(), output: output.text() };
  } catch (error) {
    return { error, output: output.text() };
  } finally {
    for (const spy of spies) spy.mockRestore();
    output.restore();
  }
}

const secretsMock = mockClient(SecretsManagerClient);
const lambdaMock = mockClient(LambdaClient);
const cloudwatchMock = mockClient(CloudWatchClient);
const sfnMock = mockClient(SFNClient);
fakeLeaseTable();

describe('no password, secret or token leaves pgwarden', () => {
  let server: TestServer;
  let secretCount = 0;
  /** A fresh secret id per use: resolved credentials are cached per secret. */
  const secretWith = (password: string) => {
    secretCount += 1;
    const id = `${SECRET_ARN}-${secretCount}`;
    secretsMock
      .on(GetSecretValueCommand, { SecretId: id })
      .resolves({ SecretString: JSON.stringify({ username: 'pgwarden_monitor', password }) });
    return id;
  };
  const connection = (secretId: string, port = server.port) => ({
    host: '127.0.0.1',
    port,
    database: 'postgres',
    auth: { kind: 'secret', secretId },
    tls: { mode: 'disable' },
  });

  beforeAll(async () => {
    server = await startTestServer();
    await createMonitorRole(server, 'pgwarden_monitor', PASSWORD);
    await server.admin(`CREATE ROLE iam_user LOGIN PASSWORD '${TOKEN}'`);
    await server.admin('GRANT pg_monitor TO iam_user');
    vi.stubEnv('PGWARDEN_CONNECT_TIMEOUT', '1s');
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    for (const mock of [secretsMock, lambdaMock, cloudwatchMock, sfnMock]) mock.restore();
    await server?.destroy();
  });

  it('keeps the password out of the probe function’s output, result and errors, healthy or not', async () => {
    const probeHandler = await coldStart(
      'probe',
      fleetEnvironmentFor([
        { id: 'leak', connection: connection(secretWith(PASSWORD)) },
        { id: 'leak-wrong', connection: connection(secretWith(WRONG_PASSWORD)) },
      ]),
    );
    const healthy = await observed(() => probeHandler({ targetId: 'leak' }, lambdaContext('probe')));
    expect(healthy.value).toMatchObject({ ok: true });
    const wrong = await observed(() => probeHandler({ targetId: 'leak-wrong' }, lambdaContext('probe')));
    expect(wrong.value).toMatchObject({ ok: false, failure: { category: 'auth_failed' } });
    const malformed = await observed(() =>
      probeHandler(
        {
          targetId: 'leak',
          connection: { ...connection('x'), auth: { kind: 'password', password: PASSWORD } },
        },
        lambdaContext('probe'),
      ),
    );
    expect((malformed.error as Error).name).toBe('ValidationError');
    for (const run of [healthy, wrong, malformed])
      expectNoSecret(everything(run.value, run.error, run.output));
  });

  it('keeps the password out of the remediate function’s audit, logs and failures, even in query text', async () => {
    // A lock-chain blocker whose last statement holds the monitor's password, read back with query
    // text on (the configuration allows it for this target).
    await server.admin(`CREATE ROLE leaky LOGIN PASSWORD 'leaky-pw-12'`);
    const leaky = { user: 'leaky', password: 'leaky-pw-12' };
    const open = (name: string) =>
      openSession(server.spec(leaky), leaky, {
        connectTimeoutMs: 2_000,
        statementTimeoutMs: 0,
        lockTimeoutMs: 0,
        applicationName: name,
        logger: silentLogger,
      });
    const admin: DbSession = await open('leak:app');
    const waiter: DbSession = await open('leak:waiter');
    await admin.query('begin', 'BEGIN');
    await admin.query('lock', 'SELECT pg_advisory_xact_lock(4242)');
    await admin.query('careless', `SELECT length('${PASSWORD}') AS n`);
    waiter.query('wait', 'SELECT pg_advisory_xact_lock(4242)').catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const remediateHandler = await coldStart(
      'remediate',
      fleetEnvironmentFor([
        {
          id: 'leak',
          connection: connection(secretWith(PASSWORD)),
          remediation: { blockerIdleAfter: '1s', includeQueryText: true },
        },
      ]),
    );
    const event = { targetId: 'leak', actions: ['blockers'], includeQueryText: true };
    try {
      const run = await observed(() => remediateHandler(event, lambdaContext('remediate')));
      expect(run.value).toMatchObject({ ok: true });
      const audit = run.value as { terminated: Array<{ application: string; query: string }> };
      const terminated = audit.terminated.find((t) => t.application === 'leak:app');
      expect(terminated?.query).toBe("SELECT length('***') AS n");
      expectNoSecret(everything(run.value, run.error, run.output));
    } finally {
      await admin.close();
      await waiter.close();
    }
    await server.stop();
    try {
      const down = await observed(() => remediateHandler(event, lambdaContext('remediate')));
      expect(down.value).toMatchObject({ ok: false, failure: { category: 'unreachable' } });
      expectNoSecret(everything(down.value, down.error, down.output));
    } finally {
      await server.start();
    }
  });

  it('keeps a wrong password out of the pages, notices and execution history of a whole incident', async () => {
    const run = await observed(() =>
      runIncident({
        server,
        credentials: { username: 'pgwarden_monitor', password: WRONG_PASSWORD },
        settings: { maxDurationSeconds: 25 * 60 },
      }),
    );
    const outcome = run.value;
    expect(outcome?.pages.filter((m) => m.attributes['pgwarden.kind'] === 'page')).toHaveLength(1);
    expect(outcome?.pages[0]?.message).toContain('auth_failed');
    expectNoSecret(
      everything(
        run.output,
        run.error,
        outcome?.published,
        outcome?.output,
        outcome?.execution.input,
        outcome?.execution.history,
      ),
    );
  });

  it('keeps the password out of a monitor run that opens an incident, and out of what it starts', async () => {
    const secretId = secretWith(PASSWORD);
    const probeHandler = await coldStart(
      'probe',
      fleetEnvironmentFor([
        { id: 'leak', connection: { ...connection(secretId), user: 'pgwarden_monitor' } },
      ]),
    );
    lambdaMock.on(InvokeCommand).callsFake(async (input: { Payload?: Uint8Array }) => {
      const event = JSON.parse(new TextDecoder().decode(input.Payload));
      const result = await probeHandler(event, lambdaContext('pgwarden-probe'));
      return { StatusCode: 200, Payload: new TextEncoder().encode(JSON.stringify(result)) as never };
    });
    cloudwatchMock.on(PutMetricDataCommand).resolves({});
    const sfn = new LocalStepFunctions({
      stateMachineArn: STATE_MACHINE,
      definition: { StartAt: 'Done', States: { Done: { Type: 'Succeed' } } },
      functions: {},
    });
    sfnMock.on(StartExecutionCommand).callsFake((input) => sfn.send(new StartExecutionCommand(input)));
    sfnMock.on(ListExecutionsCommand).callsFake((input) => sfn.send(new ListExecutionsCommand(input)));
    sfnMock.on(DescribeExecutionCommand).callsFake((input) => sfn.send(new DescribeExecutionCommand(input)));
    vi.resetModules();
    vi.stubEnv(
      'PGWARDEN_TARGETS',
      JSON.stringify([
        {
          id: 'leak',
          host: '127.0.0.1',
          port: server.port,
          database: 'postgres',
          user: 'pgwarden_monitor',
          auth: { secretArn: secretId },
          tls: 'disable',
        },
      ]),
    );
    vi.stubEnv('PGWARDEN_PROBE_FUNCTION', 'pgwarden-probe');
    vi.stubEnv('PGWARDEN_STATE_MACHINE_ARN', STATE_MACHINE);
    vi.stubEnv('PGWARDEN_CADENCE', '1s');
    vi.stubEnv('PGWARDEN_CONFIRM_DELAY', '100ms');
    vi.stubEnv('PGWARDEN_RUN_FOR', '1s');
    vi.stubEnv('PGWARDEN_LEASE_TABLE', LEASE_TABLE);
    const monitor = ((await import('../../functions/monitor/handler.ts')) as unknown as { handler: Handler })
      .handler;
    await server.stop();
    let run: Awaited<ReturnType<typeof observed>>;
    try {
      run = await observed(() => monitor({}, lambdaContext('pgwarden-monitor', 30_000)));
    } finally {
      await server.start();
    }
    expect(run.value).toMatchObject({ targets: [{ targetId: 'leak', status: 'unhealthy' }] });
    const started = sfnMock.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);
    expect(started).toHaveLength(1);
    expect(started[0]?.input).toContain(secretId);
    const invoked = lambdaMock
      .commandCalls(InvokeCommand)
      .map((c) => new TextDecoder().decode(c.args[0].input.Payload as Uint8Array));
    const metrics = cloudwatchMock.commandCalls(PutMetricDataCommand).map((c) => c.args[0].input);
    expectNoSecret(everything(run.value, run.error, run.output, started, invoked, metrics));
  });

  it('keeps an RDS IAM token out of probe results and logs, whether the server takes it or not', async () => {
    const logs: string[] = [];
    const logger = createConsoleLogger({ level: 'debug', write: (line) => logs.push(line) });
    const spec = (user: string) => ({
      host: '127.0.0.1',
      port: server.port,
      database: 'postgres',
      user,
      auth: { kind: 'iam' as const, region: 'eu-west-1' },
      tls: { mode: 'disable' as const },
    });
    const signToken = async () => TOKEN;
    const accepted = await probe(spec('iam_user'), { label: 'leak' }, { logger, signToken });
    expect(accepted.ok).toBe(true);
    const refused = await probe(spec('pgwarden_monitor'), { label: 'leak' }, { logger, signToken });
    expect(refused).toMatchObject({ ok: false, failure: { category: 'auth_failed' } });
    const failing = await probe(
      spec('nobody'),
      { label: 'leak' },
      {
        logger,
        signToken: async () => {
          throw new Error(`signing failed for ${TOKEN}`);
        },
      },
    );
    expect(failing).toMatchObject({ ok: false, failure: { category: 'auth_failed' } });
    expectNoSecret(everything(accepted, refused, failing, logs));
    expect(everything(accepted, refused, failing, logs)).not.toContain('AKIAPGWTEST');
  });

  it('redacts passwords in connection strings, key=value pairs and JSON wherever they are classified or logged', () => {
    const secretText = [
      `connect to postgres://mon:${PASSWORD}@db.internal:5432/app failed`,
      `postgresql://mon:${encodeURIComponent(PASSWORD)}@db/app?sslmode=require`,
      `host=db user=mon password=${PASSWORD} sslmode=verify-full`,
      `PGPASSWORD=${PASSWORD} psql`,
      `host=db user=mon password='${PASSWORD}' sslmode=require`,
      JSON.stringify({ username: 'mon', password: WRONG_PASSWORD }),
    ];
    for (const text of secretText) {
      expectNoSecret(redact(text));
      expectNoSecret(classifyError(new Error(text), 'connect').message);
      const logs: string[] = [];
      createConsoleLogger({ write: (line) => logs.push(line) }).error(text, { detail: text, nested: [text] });
      expectNoSecret(logs.join('\n'));
    }
    // Not a secret: host names, users and secret ARNs stay readable for the on-call.
    expect(redact(`could not read secret ${SECRET_ARN} for mon@db.internal`)).toBe(
      `could not read secret ${SECRET_ARN} for mon@db.internal`,
    );
  });

  it('masks a password put where no field expects one, in config as in events', () => {
    let error: unknown;
    try {
      parseFleet(
        {
          targets: [
            { id: 'x', host: 'h', database: 'd', auth: { secretArn: SECRET_ARN, password: PASSWORD } },
          ],
        },
        'pgwarden.config.json',
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain('targets[0].auth.password: is not a known field');
    expectNoSecret(everything(error));
  });
});

describe('TLS', () => {
  it('verifies the certificate and the host name unless the URL says otherwise', () => {
    const parsed = parseDatabaseUrl('postgres://mon@db.example.com/app');
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.spec.tls).toEqual({ mode: 'verify-full' });
    expect(tlsOptions(parsed.spec)).toEqual({ rejectUnauthorized: true, servername: 'db.example.com' });
  });

  it('verifies configured targets by default too', () => {
    const fleet = parseFleet(
      {
        targets: [
          { id: 'orders', host: 'orders.db', database: 'orders', auth: { iam: true, region: 'eu-west-1' } },
        ],
      },
      'pgwarden.config.json',
    );
    const spec = fleet.targets[0]?.connection;
    expect(spec?.tls).toEqual({ mode: 'verify-full' });
    expect(spec && tlsOptions(spec)).toMatchObject({ rejectUnauthorized: true, servername: 'orders.db' });
  });

  it('turns verification off only when asked by name, and refuses modes that fall back to plaintext', () => {
    const mode = (sslmode: string) => {
      const parsed = parseDatabaseUrl(`postgres://mon@db.example.com/app?sslmode=${sslmode}`);
      return parsed.ok ? tlsOptions(parsed.spec) : parsed.issues.map((i) => i.problem).join();
    };
    expect(mode('disable')).toBeUndefined();
    expect(mode('require')).toEqual({ rejectUnauthorized: false });
    expect(mode('verify-ca')).toMatchObject({ rejectUnauthorized: true });
    expect(mode('prefer')).toContain('silently falls back to an unencrypted connection');
    expect(mode('allow')).toContain('silently falls back to an unencrypted connection');
    expect(mode('no-verify')).toContain('is not supported');
  });
});
