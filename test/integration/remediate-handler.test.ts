import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FaultHandle, type FaultTarget, openIdleSessions } from '../../shared/local/faults.ts';
import type { RemediationResult } from '../../shared/remediation/remediate.ts';
import { DEFAULT_REMEDIATION } from '../../shared/target.ts';
import { captureOutput, lambdaContext } from '../helpers/lambda.ts';
import { startTestServer, type TestServer } from '../helpers/postgres.ts';

const secretsMock = mockClient(SecretsManagerClient);
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/remediate-AbCdEf';

/** The embedded-metric-format records in captured output. */
function emfLines(text: string): Array<Record<string, unknown> & { _aws: { CloudWatchMetrics: unknown[] } }> {
  return text
    .split('\n')
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line));
}

describe('remediate function handler', () => {
  let server: TestServer;
  let app: FaultTarget;
  const faults: FaultHandle[] = [];
  let handler: (event: unknown, context: unknown) => Promise<unknown>;

  beforeAll(async () => {
    server = await startTestServer();
    await server.admin(`CREATE ROLE app_user LOGIN PASSWORD 'app-pw-123'`);
    app = {
      spec: server.spec({ user: 'app_user', password: 'app-pw-123' }),
      credentials: { user: 'app_user', password: 'app-pw-123' },
    };
    process.env.PGWARDEN_CONNECT_TIMEOUT = '2s';
    ({ handler } = (await import('../../functions/remediate/handler.ts')) as unknown as {
      handler: typeof handler;
    });
  });
  afterAll(async () => {
    await Promise.all(faults.splice(0).map((f) => f.release()));
    await server?.destroy();
  });
  beforeEach(() => {
    secretsMock.reset();
  });

  // Each test names its own secret: resolved credentials are cached per secret for five minutes.
  const event = (secretId: string, overrides: Record<string, unknown> = {}) => ({
    targetId: 'local-db',
    connection: {
      host: '127.0.0.1',
      port: server.port,
      database: 'postgres',
      auth: { kind: 'secret', secretId },
      tls: { mode: 'disable' },
    },
    policy: { ...DEFAULT_REMEDIATION, idleAfterSeconds: 1 },
    actions: ['idle'],
    ...overrides,
  });

  async function invoke(payload: unknown): Promise<{ result: RemediationResult; output: string }> {
    const output = captureOutput();
    try {
      const result = (await handler(payload, lambdaContext('remediate'))) as RemediationResult;
      return { result, output: output.text() };
    } finally {
      output.restore();
    }
  }

  it('writes one EMF line counting only signalled sessions: 0 in a dry run, then the terminations', async () => {
    const secretId = `${SECRET_ARN}-emf`;
    secretsMock
      .on(GetSecretValueCommand, { SecretId: secretId })
      .resolves({ SecretString: JSON.stringify({ username: 'postgres', password: server.password }) });
    const idle = await openIdleSessions(app, 2, 'orders-api');
    faults.push(idle);
    await new Promise((resolve) => setTimeout(resolve, 1_200));

    const dry = await invoke(event(secretId, { dryRun: true }));
    expect(dry.result.terminated.map((r) => r.outcome)).toEqual(['would_terminate', 'would_terminate']);
    const [dryLine, ...dryExtra] = emfLines(dry.output);
    expect(dryExtra).toEqual([]);
    expect(dryLine).toMatchObject({ Target: 'local-db', SessionsTerminated: 0 });

    const real = await invoke(event(secretId));
    expect(real.result.ok).toBe(true);
    expect(real.result.terminated.map((r) => r.pid).sort()).toEqual([...idle.pids].sort());
    const [line, ...extra] = emfLines(real.output);
    expect(extra).toEqual([]);
    expect(line).toMatchObject({
      _aws: {
        Timestamp: expect.any(Number),
        CloudWatchMetrics: [
          {
            Namespace: 'PgWarden',
            Dimensions: [['Target']],
            Metrics: [{ Name: 'SessionsTerminated', Unit: 'Count' }],
          },
        ],
      },
      Target: 'local-db',
      SessionsTerminated: 2,
    });
    expect(real.output).toContain('remediation action');
    expect(real.output).not.toContain(server.password);
  });

  it('returns a classified failure and still writes the metric when the database refuses the secret', async () => {
    const secretId = `${SECRET_ARN}-wrong`;
    secretsMock
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ username: 'postgres', password: 'nope-nope' }) });

    const { result, output } = await invoke(event(secretId));

    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.failure.category).toBe('auth_failed');
    expect(emfLines(output)).toMatchObject([{ Target: 'local-db', SessionsTerminated: 0 }]);
  });

  it('rejects a malformed event with a named ValidationError that lists every bad field and has no stack', async () => {
    const error = await handler(
      {
        ...event(`${SECRET_ARN}-bad`),
        targetId: 'Bad Id!',
        connection: { ...event(SECRET_ARN).connection, port: 'x' },
        policy: { ...DEFAULT_REMEDIATION, maxPerRun: 0 },
        actions: ['idle', 'nuke'],
        dryRun: 'yes',
      },
      lambdaContext('remediate'),
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.name).toBe('ValidationError');
    for (const field of ['targetId', 'connection.port', 'policy.maxPerRun', 'actions[1]', 'dryRun']) {
      expect(error?.message).toContain(field);
    }
    expect(error?.stack).toBe(`ValidationError: ${error?.message}`);
  });

  it('rejects an empty action list', async () => {
    const error = await handler(
      event(`${SECRET_ARN}-empty`, { actions: [] }),
      lambdaContext('remediate'),
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.name).toBe('ValidationError');
    expect(error?.message).toContain('actions: must have at least 1 item(s)');
  });

  it('refuses a literal password in the event, so no secret travels in payloads', async () => {
    const error = await handler(
      event(SECRET_ARN, {
        connection: { ...event(SECRET_ARN).connection, auth: { kind: 'password', password: 'x' } },
      }),
      lambdaContext('remediate'),
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.name).toBe('ValidationError');
    expect(error?.message).toContain('connection.auth');
  });
});
