import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { openIdleSessions } from '../helpers/faults.ts';
import { startTestServer, type TestServer } from '../helpers/postgres.ts';

const APP = { user: 'app', password: 'app-pw-123' };

describe('pgwarden sweep', () => {
  let server: TestServer;
  const alive = async (pids: readonly number[]) =>
    (
      await server.admin<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])', [
        pids,
      ])
    )
      .map((r) => r.pid)
      .sort();
  /** pg_terminate_backend only signals: a terminated backend leaves pg_stat_activity a moment later. */
  const aliveOnceExited = async (pids: readonly number[], timeoutMs = 5_000) => {
    const deadline = Date.now() + timeoutMs;
    let left = await alive(pids);
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      left = await alive(pids);
    }
    return left;
  };
  const idle = async (n: number, user = APP) => {
    const handle = await openIdleSessions({ spec: server.spec(user), credentials: user }, n, 'cli-test');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    return handle;
  };

  beforeAll(async () => {
    server = await startTestServer();
    await server.admin(`CREATE ROLE app LOGIN PASSWORD 'app-pw-123'`);
    await server.admin(`CREATE ROLE etl LOGIN PASSWORD 'etl-pw-1234'`);
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('terminates idle sessions past the threshold and prints the JSON contract', async () => {
    const sessions = await idle(2);
    try {
      const run = await runCli(['sweep', '--url', server.url(), '--idle-after', '1s', '--json']);
      expect(run.code).toBe(0);
      const json = JSON.parse(run.stdout);
      expect(Object.keys(json).sort()).toEqual(['dryRun', 'skipped', 'terminated']);
      expect(json.dryRun).toBe(false);
      expect(json.terminated.map((t: { pid: number }) => t.pid).sort()).toEqual([...sessions.pids].sort());
      expect(json.terminated[0]).toEqual({
        pid: expect.any(Number),
        user: 'app',
        application: 'cli-test',
        state: 'idle',
        idleSeconds: expect.any(Number),
        reason: 'idle',
      });
      expect(await aliveOnceExited(sessions.pids)).toEqual([]);
    } finally {
      await sessions.release();
    }
  });

  it('acts on nothing in dry-run mode, and says what it would do', async () => {
    const sessions = await idle(2);
    try {
      const run = await runCli(['sweep', '--url', server.url(), '--idle-after', '1s', '--dry-run']);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('DRY RUN: would terminate 2 session(s)');
      expect(await alive(sessions.pids)).toEqual([...sessions.pids].sort());
    } finally {
      await sessions.release();
    }
  });

  it('leaves protected users alone and respects the cap', async () => {
    const app = await idle(3);
    const etl = await idle(1, { user: 'etl', password: 'etl-pw-1234' });
    try {
      const run = await runCli([
        'sweep',
        '--url',
        server.url(),
        '--idle-after',
        '1s',
        '--protect-user',
        'etl',
        '--max',
        '2',
        '--json',
      ]);
      expect(run.code).toBe(0);
      const json = JSON.parse(run.stdout);
      expect(json.terminated).toHaveLength(2);
      const reasons = Object.fromEntries(
        json.skipped.map((s: { pid: number; reason: string }) => [s.pid, s.reason]),
      );
      expect(reasons[etl.pids[0] as number]).toBe('protected_user');
      expect(Object.values(reasons)).toContain('cap_reached');
      expect(await alive(etl.pids)).toEqual([...etl.pids]);
    } finally {
      await Promise.all([app.release(), etl.release()]);
    }
  });

  it('exits 1 with a classified failure when it cannot connect, and 2 on bad usage', async () => {
    const down = await runCli(['sweep', '--url', 'postgres://app@127.0.0.1:1/db?sslmode=disable', '--json']);
    expect(down.code).toBe(1);
    expect(JSON.parse(down.stdout)).toMatchObject({
      dryRun: false,
      terminated: [],
      failure: { category: 'unreachable' },
    });
    const usage = await runCli(['sweep', '--url', server.url(), '--max', 'lots', '--idle-after', '10']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--max: must be a number (got "lots")');
    expect(usage.stderr).toContain('--idle-after: is not a duration (got "10")');
  });
});
