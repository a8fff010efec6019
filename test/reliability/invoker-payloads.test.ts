/**
 * Whoever may invoke the probe or remediate function, or start the runbook, writes its payload. Crafted
 * payloads go through the real Lambda handlers here, deployed with a fleet in their environment, and
 * a fake PostgreSQL stands where an attacker would point them: it asks for the password in cleartext
 * and keeps what it gets. A payload names a configured target and gets exactly that target; it cannot
 * send a secret elsewhere, lower TLS, or widen the configured policy or incident clock.
 */
import { join } from 'node:path';
import { RDSClient, StartDBInstanceCommand } from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildLockChain, type FaultHandle } from '../../cli/local/faults.ts';
import { runRemediate } from '../../functions/remediate/remediate.ts';
import { bindTarget } from '../../shared/binding.ts';
import { silentLogger } from '../../shared/logger.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import type { RemediationResult } from '../../shared/remediation/remediator.ts';
import type { IncidentRecord } from '../../shared/runbook/record.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Target } from '../../shared/target.ts';
import { type FakePostgres, messages, startFakePostgres, welcome } from '../helpers/fake-postgres.ts';
import { openIdleSessions } from '../helpers/faults.ts';
import { captureOutput, coldStart, type LambdaHandler, lambdaContext } from '../helpers/lambda.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';

const ACCOUNT = '123456789012';
const secretArn = (name: string) => `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:pgwarden/${name}`;
const ORDERS_SECRET = secretArn('orders');
const SECURE_SECRET = secretArn('secure');
const DISCOVERY_SECRET = secretArn('discovered');
const PAGES = `arn:aws:sns:eu-west-1:${ACCOUNT}:pgwarden-pages`;
const NOTIFICATIONS = `arn:aws:sns:eu-west-1:${ACCOUNT}:pgwarden-notifications`;
const CA_FILE = join(import.meta.dirname, '..', 'fixtures', 'tls', 'server.crt');

const secretsMock = mockClient(SecretsManagerClient);
const snsMock = mockClient(SNSClient);
const rdsMock = mockClient(RDSClient);

/** Asks for the password in cleartext, keeps it (the fake counts it), then lets the client in. */
async function phishing(connection: Parameters<Parameters<typeof startFakePostgres>[0]['script']>[0]) {
  await connection.send('R', messages.authCleartext());
  await connection.next();
  await welcome(connection);
}

async function invoke<T>(
  handler: LambdaHandler,
  event: unknown,
): Promise<{ value?: T; error?: Error; logs: string }> {
  const output = captureOutput();
  try {
    return { value: (await handler(event, lambdaContext('pgwarden-test'))) as T, logs: output.text() };
  } catch (error) {
    return { error: error as Error, logs: output.text() };
  } finally {
    output.restore();
  }
}

describe('payloads written by whoever may invoke the functions', () => {
  let server: TestServer;
  let phisher: FakePostgres;
  let tlsPhisher: FakePostgres;
  let monitorPassword: string;
  const faults: FaultHandle[] = [];
  const app = () => ({
    spec: server.spec({ user: 'orders_app', password: 'orders-app-pw-1' }),
    credentials: { user: 'orders_app', password: 'orders-app-pw-1' },
  });

  beforeAll(async () => {
    server = await startTestServer();
    monitorPassword = (await createMonitorRole(server)).password;
    await server.admin(`CREATE ROLE orders_app LOGIN PASSWORD 'orders-app-pw-1'`);
    phisher = await startFakePostgres({ tls: 'refuse', script: phishing });
    tlsPhisher = await startFakePostgres({ tls: 'accept', script: phishing });
  });
  beforeEach(() => {
    secretsMock.reset();
    const secret = (username: string, password: string) => ({
      SecretString: JSON.stringify({ username, password }),
    });
    secretsMock
      .on(GetSecretValueCommand, { SecretId: ORDERS_SECRET })
      .resolves(secret('pgwarden_monitor', monitorPassword));
    secretsMock
      .on(GetSecretValueCommand, { SecretId: SECURE_SECRET })
      .resolves(secret('pgwarden_monitor', 'secure-pw-123'));
    secretsMock
      .on(GetSecretValueCommand, { SecretId: DISCOVERY_SECRET })
      .resolves(secret('pgwarden_monitor', 'disc-pw-123'));
  });
  afterEach(async () => {
    await Promise.all(faults.splice(0).map((f) => f.release()));
  });
  afterAll(async () => {
    secretsMock.restore();
    snsMock.restore();
    rdsMock.restore();
    await phisher?.close();
    await tlsPhisher?.close();
    await server?.destroy();
  });

  /** The deployment: `orders` on the real server, `secure` behind verify-full, optionally discovery. */
  const environment = (options: { discovery?: boolean; orders?: Record<string, unknown> } = {}) => ({
    AWS_REGION: 'eu-west-1',
    PGWARDEN_CONNECT_TIMEOUT: '1s',
    PGWARDEN_TARGETS: JSON.stringify([
      {
        id: 'orders',
        host: '127.0.0.1',
        port: server.port,
        database: 'postgres',
        auth: { secretArn: ORDERS_SECRET },
        tls: 'disable',
        rds: { instanceId: 'orders' },
        ...options.orders,
      },
      {
        id: 'secure',
        host: 'localhost',
        port: tlsPhisher.port,
        database: 'app',
        auth: { secretArn: SECURE_SECRET },
        caFile: CA_FILE,
      },
    ]),
    ...(options.discovery
      ? {
          PGWARDEN_DISCOVERY: '{}',
          PGWARDEN_DEFAULTS: JSON.stringify({
            user: 'pgwarden_monitor',
            auth: { secretArn: DISCOVERY_SECRET },
          }),
        }
      : {}),
  });
  const toPhisher = (secretId: string, fake: FakePostgres = phisher, mode = 'disable') => ({
    host: '127.0.0.1',
    port: fake.port,
    database: 'postgres',
    auth: { kind: 'secret', secretId },
    tls: { mode },
  });

  describe('probe function', () => {
    it('probes the configured host with the configured secret, whatever host the payload names', async () => {
      const probe = await coldStart('probe', environment());
      const run = await invoke<ProbeResult>(probe, {
        targetId: 'orders',
        connection: toPhisher(ORDERS_SECRET),
      });
      expect(run.value?.ok).toBe(true);
      expect(phisher.connections).toBe(0);
      expect(phisher.passwords).toEqual([]);
      expect(run.logs).toContain('payload connection differs from the configured target');
    });

    it('refuses a target that is not configured, before connecting anywhere', async () => {
      const probe = await coldStart('probe', environment());
      const run = await invoke<ProbeResult>(probe, {
        targetId: 'elsewhere',
        connection: toPhisher(ORDERS_SECRET),
      });
      expect(run.error?.name).toBe('ValidationError');
      expect(run.error?.message).toContain('targetId');
      expect(phisher.connections).toBe(0);
    });

    it('keeps TLS as configured when the payload asks for none, and sends no password in cleartext', async () => {
      const probe = await coldStart('probe', environment());
      const run = await invoke<ProbeResult>(probe, {
        targetId: 'secure',
        connection: toPhisher(SECURE_SECRET, tlsPhisher, 'disable'),
      });
      expect(tlsPhisher.startups).toEqual({ tls: 1, plaintext: 0 });
      expect(tlsPhisher.passwords).toEqual([]);
      expect(run.value).toMatchObject({ ok: false, failure: { category: 'auth_failed' } });
    });

    it('with discovery on, sends nothing to a host that is not an RDS endpoint of the region', async () => {
      const probe = await coldStart('probe', environment({ discovery: true }));
      for (const secretId of [DISCOVERY_SECRET, ORDERS_SECRET]) {
        const run = await invoke<ProbeResult>(probe, { targetId: 'shadow', connection: toPhisher(secretId) });
        expect(run.error?.name).toBe('ValidationError');
        expect(run.error?.message).toContain('connection.host');
      }
      expect(phisher.connections).toBe(0);
    });

    it("with discovery on, never sends a configured target's secret to a discovered endpoint", () => {
      const catalog = {
        targets: [
          {
            ...target('orders'),
            connection: {
              ...target('orders').connection,
              auth: { kind: 'secret' as const, secretId: ORDERS_SECRET },
            },
          },
        ],
        defaults: { auth: { secretArn: DISCOVERY_SECRET } },
        discovery: { tagKey: 'pgwarden:monitor', tagValue: 'true' },
        region: 'eu-west-1',
      };
      const endpoint = {
        host: 'shadow.abcdefghijkl.eu-west-1.rds.amazonaws.com',
        port: 5432,
        database: 'app',
        user: 'pgwarden_monitor',
        tls: { mode: 'disable' as const },
      };
      expect(() =>
        bindTarget(
          catalog,
          {
            targetId: 'shadow',
            connection: { ...endpoint, auth: { kind: 'secret', secretId: ORDERS_SECRET } },
          },
          'probe event',
        ),
      ).toThrow(/bound by configuration to target orders/);
      // Its own secret is fine, but only with TLS verified, whatever the payload asked for.
      const bound = bindTarget(
        catalog,
        { targetId: 'shadow', connection: { ...endpoint, auth: { kind: 'none' } } },
        'probe event',
      );
      expect(bound.target.connection).toMatchObject({
        host: endpoint.host,
        auth: { kind: 'secret', secretId: DISCOVERY_SECRET },
        tls: { mode: 'verify-full' },
      });
    });
  });

  describe('remediate function', () => {
    it('applies the configured thresholds, not a wider policy in the payload', async () => {
      const idle = await openIdleSessions(app(), 2, 'orders-api');
      faults.push(idle);
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const remediate = await coldStart('remediate', environment());
      const run = await invoke<RemediationResult>(remediate, {
        targetId: 'orders',
        policy: { ...DEFAULT_REMEDIATION, idleAfterSeconds: 1, maxPerRun: 1_000 },
        actions: ['idle'],
      });
      expect(run.value?.ok).toBe(true);
      expect(run.value?.terminated).toEqual([]);
      if (run.value?.ok)
        expect(run.value.thresholds).toMatchObject({ idleAfterSeconds: 1_800, maxPerRun: 20 });
    });

    it('keeps a configured dry run and keeps query text out unless configured', async () => {
      const chain = await buildLockChain(app(), 2, 'invoker_chain');
      faults.push(chain);
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const remediate = await coldStart(
        'remediate',
        environment({ orders: { remediation: { dryRun: true, blockerIdleAfter: '1s' } } }),
      );
      const run = await invoke<RemediationResult>(remediate, {
        targetId: 'orders',
        policy: { ...DEFAULT_REMEDIATION, dryRun: false, blockerIdleSeconds: 1, includeQueryText: true },
        dryRun: false,
        includeQueryText: true,
        actions: ['blockers'],
      });
      expect(run.value?.dryRun).toBe(true);
      expect(run.value?.terminated).toEqual([
        expect.objectContaining({ pid: chain.blockerPid, outcome: 'would_terminate', query: '[redacted]' }),
      ]);
    });

    it('believes a caller that reports pool pressure only while it can see the pressure itself', async () => {
      const idle = await openIdleSessions(app(), 2, 'orders-api');
      faults.push(idle);
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      // The escalated policy of a second, so the test need not wait for the configuration's minimum.
      const orders: Target = {
        ...target('orders'),
        connection: {
          ...target('orders').connection,
          host: '127.0.0.1',
          port: server.port,
          auth: { kind: 'secret', secretId: ORDERS_SECRET },
        },
        remediation: { ...DEFAULT_REMEDIATION, pressure: { utilizationPct: 95, idleAfterSeconds: 1 } },
      };
      const result = await runRemediate(
        {
          targetId: 'orders',
          actions: ['idle'],
          pressure: { active: true, reason: 'the server refused connections with 53300' },
        },
        { connectTimeoutMs: 1_000, statementTimeoutMs: 2_000, catalog: { targets: [orders], defaults: {} } },
        { logger: silentLogger, secrets: new SecretsManagerClient({}) },
      );
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.pressure.active).toBe(false);
      expect(result.terminated).toEqual([]);
    });
  });

  describe('runbook function', () => {
    const state = (overrides: Partial<Target> = {}) => ({
      incidentId: 'pgw-orders-20261126-1',
      requestId: 'r-1',
      target: {
        ...target('orders'),
        connection: toPhisher(ORDERS_SECRET),
        rds: { instanceId: 'orders' },
        ...overrides,
      },
      trigger: { kind: 'manual', summary: 'crafted', observedAt: new Date().toISOString() },
      // A day before anyone is paged, if the runbook took the input's word for it.
      settings: { escalateAfterSeconds: 86_400, recheckSeconds: 3_600, maxDurationSeconds: 7 * 86_400 },
    });
    const runbookEnv = () => ({
      ...environment(),
      PGWARDEN_PAGES_TOPIC_ARN: PAGES,
      PGWARDEN_NOTIFICATIONS_TOPIC_ARN: NOTIFICATIONS,
      PGWARDEN_ESCALATE_AFTER: '20m',
    });

    it('keeps the configured incident clock: an execution input cannot put the page off', async () => {
      snsMock.on(PublishCommand).resolves({ MessageId: 'm-1' });
      const runbook = await coldStart('runbook', runbookEnv());
      const before = Date.now();
      const run = await invoke<IncidentRecord>(runbook, { action: 'open', state: state() });
      expect(run.error).toBeUndefined();
      const escalateIn = Date.parse(run.value?.escalateAt ?? '') - before;
      expect(escalateIn).toBeGreaterThanOrEqual(20 * 60_000 - 1_000);
      expect(escalateIn).toBeLessThanOrEqual(20 * 60_000 + 5_000);
    });

    it('keeps the configured clock for an incident an input claims to continue', async () => {
      const runbook = await coldStart('runbook', runbookEnv());
      const now = Date.now();
      const forged = {
        incidentId: 'pgw-orders-20261126-1',
        targetId: 'orders',
        status: 'open',
        openedAt: new Date(now - 60_000).toISOString(),
        escalateAt: new Date(now + 30 * 86_400_000).toISOString(),
        endAt: new Date(now + 60 * 86_400_000).toISOString(),
        wakeAt: new Date(now + 7 * 86_400_000).toISOString(),
        cycle: 3,
        steps: [],
        found: [],
        actions: [],
        timeline: [],
        decision: 'wait',
        pressure: { active: false },
        waitSeconds: 0,
        paged: false,
        part: 2,
      };
      const run = await invoke<IncidentRecord>(runbook, {
        action: 'open',
        state: { ...state(), incident: forged },
      });
      expect(run.error).toBeUndefined();
      expect(Date.parse(run.value?.escalateAt ?? '')).toBe(now - 60_000 + 20 * 60_000);
      expect(Date.parse(run.value?.endAt ?? '')).toBeLessThanOrEqual(now - 60_000 + 4 * 3_600_000);
      expect(run.value?.waitSeconds).toBeLessThanOrEqual(60);
    });

    it('starts no instance the configuration did not opt in, whatever the input allows', async () => {
      snsMock.on(PublishCommand).resolves({ MessageId: 'm-1' });
      rdsMock.on(StartDBInstanceCommand).resolves({});
      const runbook = await coldStart('runbook', runbookEnv());
      const crafted = state({ remediation: { ...DEFAULT_REMEDIATION, allowStartInstance: true } });
      const opened = await invoke<IncidentRecord>(runbook, { action: 'open', state: crafted });
      const run = await invoke<IncidentRecord>(runbook, {
        action: 'start_instance',
        state: { ...crafted, incident: opened.value },
      });
      expect(run.error).toBeUndefined();
      expect(rdsMock.commandCalls(StartDBInstanceCommand)).toHaveLength(0);
      expect(run.value?.actions.at(-1)).toMatchObject({ kind: 'start_instance', ok: false });
    });
  });
});

function target(id: string): Target {
  return {
    id,
    connection: {
      host: `${id}.db`,
      port: 5432,
      database: 'postgres',
      auth: { kind: 'none' },
      tls: { mode: 'disable' },
    },
    thresholds: DEFAULT_THRESHOLDS,
    remediation: DEFAULT_REMEDIATION,
  };
}
