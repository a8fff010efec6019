import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLockChain } from '../../cli/local/faults.ts';
import { runCli } from '../helpers/cli.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';

describe('pgwarden runbook', () => {
  let server: TestServer;
  let monitorUrl: string;

  beforeAll(async () => {
    server = await startTestServer();
    const role = await createMonitorRole(server);
    monitorUrl = server.url(role);
    await server.admin(`CREATE ROLE app LOGIN PASSWORD 'app-pw-123'`);
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('walks every node of the tree on a healthy database and exits 0', async () => {
    const run = await runCli(['runbook', '--url', monitorUrl, '--json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(Object.keys(report).sort()).toEqual([
      'actions',
      'endedAt',
      'incidentId',
      'outcome',
      'pages',
      'startedAt',
      'steps',
    ]);
    expect(report.outcome).toBe('resolved');
    expect(report.steps.map((s: { node: string }) => s.node)).toEqual([
      'running',
      'accepting_connections',
      'network',
      'pool',
      'auth',
      'queries',
    ]);
    expect(
      report.steps.every(
        (s: { result: string; detail: string }) =>
          ['ok', 'skipped'].includes(s.result) && s.detail.length > 0,
      ),
    ).toBe(true);
    expect(report.pages.map((p: { topic: string }) => p.topic)).toEqual(['notifications', 'notifications']);
    expect(report.pages[1].subject).toContain('resolved');
  });

  it('terminates the blocker of a lock chain and reports the action', async () => {
    const app = { user: 'app', password: 'app-pw-123' };
    const chain = await buildLockChain({ spec: server.spec(app), credentials: app }, 2, 'cli_chain');
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const args = [
        'runbook',
        '--url',
        monitorUrl,
        '--recheck-every',
        '1s',
        '--blocker-idle-after',
        '1s',
        '--lock-wait-after',
        '1s',
        '--json',
      ];
      const run = await runCli(args, {}, 30_000);
      expect(run.code).toBe(0);
      const report = JSON.parse(run.stdout);
      expect(report.outcome).toBe('resolved');
      const queries = report.steps.find(
        (s: { node: string; result: string }) => s.node === 'queries' && s.result === 'fault',
      );
      expect(queries.detail).toContain('blocked behind pid');
      expect(report.actions[0]).toMatchObject({ kind: 'terminate_blockers', ok: true, count: 1 });
    } finally {
      await chain.release();
    }
  });

  it('pages once for a wrong password and exits 1 as escalated', async () => {
    const wrong = monitorUrl.replace(/:[^:@/]+@/, ':not-the-password@');
    const run = await runCli([
      'runbook',
      '--url',
      wrong,
      '--escalate-after',
      '2s',
      '--recheck-every',
      '1s',
      '--max-duration',
      '4s',
      '--json',
    ]);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout);
    expect(report.outcome).toBe('escalated');
    expect(
      report.pages.filter(
        (p: { topic: string; subject: string }) => p.topic === 'pages' && p.subject.includes('CRITICAL'),
      ),
    ).toHaveLength(1);
    expect(
      report.steps.some((s: { node: string; result: string }) => s.node === 'auth' && s.result === 'fault'),
    ).toBe(true);
    expect(run.stdout).not.toContain('not-the-password');
  }, 60_000);

  it('prints the steps as they happen and a readable verdict', async () => {
    const run = await runCli(['runbook', '--url', monitorUrl]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/ok {4}pool: \d+ of \d+ usable slots in use/);
    expect(run.stdout).toContain('RESOLVED');
  });

  it('refuses bad flags with exit 2', async () => {
    const run = await runCli(['runbook', '--url', monitorUrl, '--escalate-after', 'twenty minutes']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--escalate-after: is not a duration (got "twenty minutes")');
  });
});
