import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLockChain, exhaustSlots } from '../../cli/local/faults.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestServer, superuser, type TestServer } from '../helpers/postgres.ts';

describe('pgwarden probe', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ maxConnections: 12 });
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('prints the snapshot as one JSON object and exits 0 when healthy', async () => {
    const run = await runCli(['probe', '--url', server.url(), '--json']);
    expect(run.code).toBe(0);
    const json = JSON.parse(run.stdout);
    expect(json).toMatchObject({
      ok: true,
      healthy: true,
      findings: [],
      longRunningQueries: 0,
      blockedSessions: 0,
    });
    for (const field of [
      'checkedAt',
      'latencyMs',
      'connections',
      'oldestTransactionAgeSeconds',
      'wraparoundPct',
      'serverStartedAt',
    ]) {
      expect(json).toHaveProperty(field);
    }
    expect(Object.keys(json.connections)).toEqual(
      expect.arrayContaining(['total', 'active', 'idle', 'idleInTransaction', 'max', 'utilizationPct']),
    );
    expect(json.connections.max).toBe(12);
    expect(run.stdout).not.toContain(server.password);
  });

  it('prints a readable report by default', async () => {
    const run = await runCli(['probe', '--url', server.url()]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('healthy');
    expect(run.stdout).toMatch(/connections\s+\d+\/9 usable/);
  });

  it('takes the password from PGPASSWORD', async () => {
    const run = await runCli(
      ['probe', '--url', server.url({ password: '' }).replace(/:[^:@]*@/, '@'), '--json'],
      {
        PGPASSWORD: server.password,
      },
    );
    expect(run.code).toBe(0);
  });

  it('judges a lock chain by how long it has waited: --lock-wait-after decides', async () => {
    await server.admin('CREATE TABLE IF NOT EXISTS cli_probe_chain (id int PRIMARY KEY, v int)');
    const chain = await buildLockChain(superuser(server), 1, 'cli_probe_chain');
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const patient = await runCli(['probe', '--url', server.url(), '--json']);
      expect(patient.code).toBe(0);
      const waiting = JSON.parse(patient.stdout);
      expect(waiting).toMatchObject({ healthy: true, blockedSessions: 1, blockingPids: [chain.blockerPid] });
      expect(waiting.longestLockWaitSeconds).toBeGreaterThanOrEqual(1);
      const strict = await runCli(['probe', '--url', server.url(), '--json', '--lock-wait-after', '1s']);
      expect(strict.code).toBe(1);
      expect(JSON.parse(strict.stdout).findings).toEqual([
        expect.objectContaining({ code: 'blocked_sessions', condition: 'lock_chain', severity: 'critical' }),
      ]);
      const text = await runCli(['probe', '--url', server.url(), '--lock-wait-after', '1s']);
      expect(text.stdout).toMatch(/locks\s+1 blocked, chain head pid\(s\) \d+, the longest waiting \d+s/);
      expect(text.stdout).toContain('!! critical: 1 session(s) blocked behind pid(s)');
    } finally {
      await chain.release();
    }
  });

  it('exits 1 with the failure category when slots are exhausted', async () => {
    const flood = await exhaustSlots(superuser(server));
    try {
      const run = await runCli(['probe', '--url', server.url(), '--json']);
      expect(run.code).toBe(1);
      expect(JSON.parse(run.stdout)).toMatchObject({
        ok: false,
        failure: { category: 'too_many_connections', sqlstate: '53300', retryable: true },
      });
    } finally {
      await flood.release();
    }
  });

  it('exits 1 for a wrong password and never prints it', async () => {
    const run = await runCli(['probe', '--url', server.url({ password: 'not-the-password' })]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('auth_failed');
    expect(run.stdout + run.stderr).not.toContain('not-the-password');
  });

  it('exits 2 with a message naming the flag for bad usage', async () => {
    const missing = await runCli(['probe'], { DATABASE_URL: '' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--url: is required');
    const badDuration = await runCli(['probe', '--url', server.url(), '--connect-timeout', 'soon']);
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toContain('--connect-timeout: is not a duration (got "soon")');
    const unknown = await runCli(['probe', '--url', server.url(), '--jsn']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--jsn');
    expect(badDuration.stderr + unknown.stderr).not.toMatch(/\n\s+at /);
  });
});
