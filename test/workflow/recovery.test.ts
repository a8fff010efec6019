/**
 * Reboot and failover, run through the deployed definition in the local engine: a real PostgreSQL
 * that refuses connections (stopped) behind an RDS, faked at the SDK boundary, that reports it
 * available.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalSns } from '../../cli/local/aws.ts';
import type { IncidentRecord } from '../../shared/runbook/record.ts';
import { DEFAULT_REMEDIATION } from '../../shared/target.ts';
import { FakeRds } from '../helpers/fake-rds.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';
import { MINUTE, runIncident } from './harness.ts';

describe('reboot and failover of a database RDS reports available and PostgreSQL does not serve', () => {
  let server: TestServer;
  let monitor: { username: string; password: string };
  beforeAll(async () => {
    server = await startTestServer();
    const role = await createMonitorRole(server);
    monitor = { username: role.user, password: role.password };
  });
  afterAll(async () => {
    await server?.destroy();
  });

  /** What had been published, and when, each time pgwarden sent a reboot or failover. */
  function watch() {
    const seen: { sns?: LocalSns; now?: () => number } = {};
    const atAction: Array<{ published: string[]; at: number }> = [];
    return {
      onWorkflow: (w: { sns: LocalSns; clock: { now(): number } }) => {
        seen.sns = w.sns;
        seen.now = () => w.clock.now();
      },
      record: () =>
        atAction.push({
          published: (seen.sns?.published ?? []).map((m) => m.attributes['pgwarden.kind'] ?? ''),
          at: seen.now?.() ?? 0,
        }),
      atAction,
    };
  }

  it('reboots the instance after 10 minutes of refused connections, announced first, and resolves without a page', async () => {
    await server.stop();
    const seen = watch();
    const rds = new FakeRds({
      kind: 'instance',
      id: 'local-db',
      onAction: async () => {
        seen.record();
        await server.start();
      },
    });
    const outcome = await runIncident({
      server,
      credentials: monitor,
      remediation: { allowReboot: true },
      rdsClient: rds,
      onWorkflow: seen.onWorkflow,
    });
    expect(server.running).toBe(true);
    expect(rds.actions).toEqual([
      { command: 'RebootDBInstance', input: { DBInstanceIdentifier: 'local-db' } },
    ]);
    // Announced before it was sent, ten minutes into the incident.
    expect(seen.atAction).toHaveLength(1);
    expect(seen.atAction[0]?.published).toEqual(['opened', 'recovery']);
    expect(((seen.atAction[0]?.at ?? 0) - outcome.openedAt) / MINUTE).toBe(10);
    expect(outcome.published.map((m) => m.attributes['pgwarden.kind'])).toEqual([
      'opened',
      'recovery',
      'resolved',
    ]);
    const announcement = outcome.published[1];
    expect(announcement?.topic).toBe('pgwarden-notifications');
    expect(announcement?.message).toContain('pgwarden is about to reboot RDS instance local-db');
    // Audited, and in the resolution.
    const record = outcome.output as unknown as IncidentRecord;
    expect(record.status).toBe('resolved');
    expect(record.actions).toEqual([
      expect.objectContaining({
        kind: 'reboot_instance',
        ok: true,
        summary: expect.stringContaining('rebooted RDS instance local-db: PostgreSQL refuses connections'),
      }),
    ]);
    expect(outcome.published[2]?.message).toContain('rebooted RDS instance local-db');
  });

  it('reboots at most once: when that does not help, it pages at 20 minutes with the reboot in what was tried', async () => {
    await server.stop();
    const rds = new FakeRds({ kind: 'instance', id: 'local-db', transitionalFor: 2 });
    const outcome = await runIncident({
      server,
      credentials: monitor,
      remediation: { allowReboot: true },
      rdsClient: rds,
      settings: { maxDurationSeconds: 30 * 60 },
    });
    expect(rds.actions).toHaveLength(1);
    const pages = outcome.pages.filter((m) => m.attributes['pgwarden.kind'] === 'page');
    expect(pages).toHaveLength(1);
    expect(outcome.minuteOf(pages[0] as (typeof pages)[number])).toBe(20);
    expect(pages[0]?.message).toContain('rebooted RDS instance local-db');
    expect(pages[0]?.message).toContain('it needs a human');
  });

  it('never reboots without the opt-in: it pages at 20 minutes', async () => {
    await server.stop();
    const rds = new FakeRds({ kind: 'instance', id: 'local-db' });
    const outcome = await runIncident({
      server,
      credentials: monitor,
      remediation: { ...DEFAULT_REMEDIATION, allowReboot: false, allowFailover: true },
      rdsClient: rds,
      settings: { maxDurationSeconds: 25 * 60 },
    });
    expect(rds.actions).toEqual([]);
    expect(outcome.published.map((m) => m.attributes['pgwarden.kind'])).not.toContain('recovery');
    expect(outcome.pages.filter((m) => m.attributes['pgwarden.kind'] === 'page')).toHaveLength(1);
    await server.start();
  });

  it('never reboots while RDS reports the instance in maintenance', async () => {
    await server.stop();
    const rds = new FakeRds({ kind: 'instance', id: 'local-db', status: 'maintenance' });
    const outcome = await runIncident({
      server,
      credentials: monitor,
      remediation: { allowReboot: true },
      rdsClient: rds,
      settings: { maxDurationSeconds: 25 * 60 },
    });
    expect(rds.actions).toEqual([]);
    expect(outcome.pages.filter((m) => m.attributes['pgwarden.kind'] === 'page')).toHaveLength(1);
    await server.start();
  });

  it('fails the cluster over to its reader after 10 minutes of refused connections, and resolves', async () => {
    await server.stop();
    const seen = watch();
    const rds = new FakeRds({
      kind: 'cluster',
      id: 'local-cluster',
      onAction: async () => {
        seen.record();
        await server.start();
      },
    });
    const outcome = await runIncident({
      server,
      credentials: monitor,
      remediation: { allowFailover: true },
      rdsResource: { clusterId: 'local-cluster' },
      rdsClient: rds,
      onWorkflow: seen.onWorkflow,
    });
    expect(rds.actions).toEqual([
      { command: 'FailoverDBCluster', input: { DBClusterIdentifier: 'local-cluster' } },
    ]);
    expect(seen.atAction[0]?.published).toEqual(['opened', 'recovery']);
    expect(outcome.output.status).toBe('resolved');
    expect(outcome.pages).toEqual([]);
    expect(outcome.published[1]?.subject).toBe(
      '[pgwarden] failing over local-db: PostgreSQL does not accept connections',
    );
  });
});
