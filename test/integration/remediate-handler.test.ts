import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildLockChain, type FaultHandle, type FaultTarget } from '../../cli/local/faults.ts';
import type { RemediationResult } from '../../shared/remediation/remediator.ts';
import { DEFAULT_REMEDIATION } from '../../shared/target.ts';
import { captureOutput, lambdaContext } from '../helpers/lambda.ts';
import { startTestServer, type TestServer } from '../helpers/postgres.ts';
import { fleetEnvironmentFor } from '../helpers/targets.ts';

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
  const connection = (secretId: string) => ({
    host: '127.0.0.1',
    port: server.port,
    database: 'postgres',
    auth: { kind: 'secret', secretId },
    tls: { mode: 'disable' },
  });
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
    // The deployed fleet, one target per test: resolved credentials are cached per secret for five
    // minutes. Lock-chain blockers may go after a second; idle sessions only after the configuration's
    // minimum of a minute, too slow for a test.
    Object.assign(
      process.env,
      fleetEnvironmentFor(
        ['emf', 'wrong', 'bad', 'empty', 'plain'].map((name) => ({
          id: `local-db-${name}`,
          connection: connection(`${SECRET_ARN}-${name}`),
          remediation: { blockerIdleAfter: '1s' },
        })),
      ),
    );
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

  const event = (name: string, overrides: Record<string, unknown> = {}) => ({
    targetId: `local-db-${name}`,
    connection: connection(`${SECRET_ARN}-${name}`),
    actions: ['blockers'],
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
    secretsMock
      .on(GetSecretValueCommand, { SecretId: `${SECRET_ARN}-emf` })
      .resolves({ SecretString: JSON.stringify({ username: 'postgres', password: server.password }) });
    const chain = await buildLockChain(app, 2, 'handler_chain');
    faults.push(chain);
    await new Promise((resolve) => setTimeout(resolve, 1_200));

    const dry = await invoke(event('emf', { dryRun: true }));
    expect(dry.result.terminated.map((r) => r.outcome)).toEqual(['would_terminate']);
    const [dryLine, ...dryExtra] = emfLines(dry.output);
    expect(dryExtra).toEqual([]);
    expect(dryLine).toMatchObject({ Target: 'local-db-emf', SessionsTerminated: 0 });

    const real = await invoke(event('emf'));
    expect(real.result.ok).toBe(true);
    expect(real.result.terminated.map((r) => r.pid)).toEqual([chain.blockerPid]);
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
      Target: 'local-db-emf',
      SessionsTerminated: 1,
    });
    expect(real.output).toContain('remediation action');
    expect(real.output).not.toContain(server.password);
  });

  it('returns a classified failure and still writes the metric when the database refuses the secret', async () => {
    secretsMock
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ username: 'postgres', password: 'nope-nope' }) });

    const { result, output } = await invoke(event('wrong'));

    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.failure.category).toBe('auth_failed');
    expect(emfLines(output)).toMatchObject([{ Target: 'local-db-wrong', SessionsTerminated: 0 }]);
  });

  it('rejects a malformed event with a named ValidationError that lists every bad field and has no stack', async () => {
    const error = await handler(
      {
        ...event('bad'),
        targetId: 'Bad Id!',
        connection: { ...event('bad').connection, port: 'x' },
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
    const error = await handler(event('empty', { actions: [] }), lambdaContext('remediate')).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.name).toBe('ValidationError');
    expect(error?.message).toContain('actions: must have at least 1 item(s)');
  });

  it('refuses a literal password in the event, so no secret travels in payloads', async () => {
    const error = await handler(
      event('plain', {
        connection: { ...event('plain').connection, auth: { kind: 'password', password: 'x' } },
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
