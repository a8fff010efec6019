/**
 * `application_name` is whatever a client says it is. A client that calls its sessions `pgwarden-…`
 * must not become untouchable, or under pool pressure pgwarden would evict everyone else while it
 * keeps its slots. pgwarden recognises its own sessions by the role it connects as together with the
 * name; `protectUsers` (a role, which a client cannot choose) is the strong guard, and a protection
 * entry PostgreSQL could never report is refused up front instead of silently protecting nothing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FaultHandle, FaultTarget } from '../../cli/local/faults.ts';
import { remediateEventSchema } from '../../functions/remediate/remediate.ts';
import type { ConnectionSpec } from '../../shared/connection.ts';
import { ConfigError, ValidationError } from '../../shared/errors.ts';
import { parseFleet } from '../../shared/fleet.ts';
import { silentLogger } from '../../shared/logger.ts';
import { type RemediationSuccess, remediate } from '../../shared/remediation/remediator.ts';
import { DEFAULT_REMEDIATION } from '../../shared/target.ts';
import { parse } from '../../shared/validate.ts';
import { runCli } from '../helpers/cli.ts';
import { openIdleSessions } from '../helpers/faults.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';

describe('sessions that declare themselves immune', () => {
  let server: TestServer;
  let monitor: ConnectionSpec;
  let monitorAsApp: FaultTarget;
  let orders: FaultTarget;
  let mallory: FaultTarget;
  const faults: FaultHandle[] = [];

  beforeAll(async () => {
    server = await startTestServer({ maxConnections: 40 });
    const role = await createMonitorRole(server);
    monitor = server.spec({ user: role.user, password: role.password });
    monitorAsApp = { spec: monitor, credentials: { user: role.user, password: role.password } };
    for (const name of ['orders', 'mallory'])
      await server.admin(`CREATE ROLE ${name} LOGIN PASSWORD '${name}-pw-123'`);
    orders = {
      spec: server.spec({ user: 'orders', password: 'orders-pw-123' }),
      credentials: { user: 'orders', password: 'orders-pw-123' },
    };
    mallory = {
      spec: server.spec({ user: 'mallory', password: 'mallory-pw-123' }),
      credentials: { user: 'mallory', password: 'mallory-pw-123' },
    };
  });
  afterEach(async () => {
    await Promise.all(faults.splice(0).map((f) => f.release()));
  });
  afterAll(async () => {
    await server?.destroy();
  });

  const open = async (target: FaultTarget, count: number, application: string) => {
    const handle = await openIdleSessions(target, count, application);
    faults.push(handle);
    return handle.pids;
  };
  /** The escalated policy: every session idle for a second is fair game, as when the pool is full. */
  const underPressure = () =>
    remediate(
      monitor,
      {
        targetId: 'local',
        policy: {
          ...DEFAULT_REMEDIATION,
          maxPerRun: 100,
          pressure: { utilizationPct: 95, idleAfterSeconds: 1 },
        },
        actions: ['idle'],
        pressure: { active: true, reason: 'the server refused connections with 53300' },
      },
      { logger: silentLogger },
    ) as Promise<RemediationSuccess>;
  const terminatedPids = (result: RemediationSuccess) =>
    result.terminated.map((t) => t.pid).sort((a, b) => a - b);

  it('terminates an ordinary role that names its sessions like pgwarden, as it does everyone else', async () => {
    const impostors = [
      ...(await open(mallory, 2, 'pgwarden-probe')),
      ...(await open(mallory, 2, 'pgwarden-remediate')),
    ];
    const honest = await open(orders, 2, 'orders-api');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const result = await underPressure();
    expect(result.ok).toBe(true);
    expect(terminatedPids(result)).toEqual([...impostors, ...honest].sort((a, b) => a - b));
    expect(result.skipCounts.pgwarden_session).toBeUndefined();
  });

  it("leaves pgwarden's own sessions alone: its role together with its name", async () => {
    const own = await open(monitorAsApp, 2, 'pgwarden-probe');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const result = await underPressure();
    expect(result.terminated.map((t) => t.pid)).not.toContain(own[0]);
    expect(
      result.skipped
        .filter((s) => s.reason === 'pgwarden_session')
        .map((s) => s.pid)
        .sort(),
    ).toEqual([...own].sort());
  });

  it('shows why a non-ASCII protection entry could never protect anything', async () => {
    await open(orders, 1, 'café-api');
    const rows = await server.admin<{ application_name: string }>(
      `SELECT application_name FROM pg_stat_activity WHERE usename = 'orders'`,
    );
    expect(rows.map((r) => r.application_name)).not.toContain('café-api');
  });

  const LONG = 'a'.repeat(64);
  const UNREPORTABLE = {
    protectApplications: [['café-api'], [LONG], ['tab\there']],
    protectUsers: [[LONG]],
  };

  it.each(Object.entries(UNREPORTABLE).flatMap(([field, values]) => values.map((v) => [field, v] as const)))(
    'refuses %s %j in the configuration, naming the field and why',
    (field, value) => {
      const fleet = {
        targets: [
          { id: 'a', host: 'a.db', database: 'app', auth: { iam: true }, remediation: { [field]: value } },
        ],
      };
      let error: unknown;
      try {
        parseFleet(fleet, 'pgwarden.config.json', 'fleet', { defaultRegion: 'eu-west-1' });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const issue = (error as ConfigError).issues[0];
      expect(issue?.path).toBe(`fleet.targets[0].remediation.${field}[0]`);
      expect(issue?.problem).toMatch(/PostgreSQL/);
    },
  );

  it('refuses such an entry in a remediation payload', () => {
    const event = {
      targetId: 'a',
      policy: { ...DEFAULT_REMEDIATION, protectApplications: ['café-api'] },
      actions: ['idle'],
    };
    expect(() => parse(remediateEventSchema, event, 'remediate event', ValidationError)).toThrow(
      /PostgreSQL/,
    );
  });

  it('refuses such an entry on the command line', async () => {
    const run = await runCli(['sweep', '--url', server.url(), '--protect-app', 'café-api', '--dry-run']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--protect-app');
  });
});
