import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { captureOutput, lambdaContext } from '../helpers/lambda.ts';
import { startTestServer, type TestServer } from '../helpers/postgres.ts';

const secretsMock = mockClient(SecretsManagerClient);
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/monitor-AbCdEf';
const SECRETS = {
  'local-db': SECRET_ARN,
  'local-db-wrong': `${SECRET_ARN}-wrong`,
  'local-db-throttled': `${SECRET_ARN}-throttled`,
};

describe('probe function handler', () => {
  let server: TestServer;
  let handler: (event: unknown, context: unknown) => Promise<unknown>;

  beforeAll(async () => {
    server = await startTestServer();
    process.env.PGWARDEN_CONNECT_TIMEOUT = '2s';
    // The deployed fleet. Each test probes a target of its own: resolved credentials are cached per
    // secret for five minutes.
    process.env.PGWARDEN_TARGETS = JSON.stringify(
      Object.entries(SECRETS).map(([id, secretArn]) => ({
        id,
        host: '127.0.0.1',
        port: server.port,
        database: 'postgres',
        auth: { secretArn },
        tls: 'disable',
      })),
    );
    ({ handler } = (await import('../../functions/probe/handler.ts')) as unknown as {
      handler: typeof handler;
    });
  });
  afterAll(async () => {
    await server?.destroy();
  });
  beforeEach(() => {
    secretsMock.reset();
  });

  const event = (overrides: Record<string, unknown> = {}, targetId: keyof typeof SECRETS = 'local-db') => ({
    targetId,
    connection: {
      host: '127.0.0.1',
      port: server.port,
      database: 'postgres',
      auth: { kind: 'secret', secretId: SECRETS[targetId] },
      tls: { mode: 'disable' },
    },
    ...overrides,
  });

  it('reads the password from Secrets Manager and returns the snapshot, never logging the secret', async () => {
    secretsMock
      .on(GetSecretValueCommand, { SecretId: SECRET_ARN })
      .resolves({ SecretString: JSON.stringify({ username: 'postgres', password: server.password }) });
    const output = captureOutput();
    let result: { ok: boolean; target: string };
    try {
      result = (await handler(event(), lambdaContext('probe'))) as typeof result;
    } finally {
      output.restore();
    }
    expect(result.ok).toBe(true);
    expect(result.target).toBe('local-db');
    expect(output.text()).not.toContain(server.password);
  });

  it('returns auth_failed, not an error, when the secret holds a wrong password', async () => {
    secretsMock
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ username: 'postgres', password: 'nope-nope' }) });
    const result = (await handler(event({}, 'local-db-wrong'), lambdaContext('probe'))) as {
      ok: boolean;
      failure: { category: string };
    };
    expect(result.ok).toBe(false);
    expect(result.failure.category).toBe('auth_failed');
  });

  it('returns a retryable auth_failed when Secrets Manager is unavailable', async () => {
    secretsMock
      .on(GetSecretValueCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const result = (await handler(event({}, 'local-db-throttled'), lambdaContext('probe'))) as {
      ok: boolean;
      failure: { category: string; retryable: boolean; message: string };
    };
    expect(result.failure).toMatchObject({ category: 'auth_failed', retryable: true });
    expect(result.failure.message).toContain('Rate exceeded');
  });

  it('rejects a malformed event with a named ValidationError that lists the fields and has no stack', async () => {
    const error = await handler(
      {
        targetId: 'Bad Id!',
        connection: {
          host: 'h',
          port: 'x',
          database: 'd',
          auth: { kind: 'password' },
          tls: { mode: 'disable' },
        },
      },
      lambdaContext('probe'),
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.name).toBe('ValidationError');
    expect(error?.message).toContain('targetId');
    expect(error?.message).toContain('connection.port');
    expect(error?.message).toContain('connection.auth.kind');
    expect(error?.stack).toBe(`ValidationError: ${error?.message}`);
  });

  it('refuses a literal password in the event, so no secret travels in payloads', async () => {
    const error = await handler(
      event({ connection: { ...event().connection, auth: { kind: 'password', password: 'x' } } }),
      lambdaContext('probe'),
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.name).toBe('ValidationError');
    expect(error?.message).toContain('connection.auth');
  });
});
