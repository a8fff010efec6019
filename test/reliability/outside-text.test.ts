/**
 * Text that comes from outside (a server's error message, a role's name, a payload's summary, a
 * database log line a client shaped with its startup user name) reaches terminals, pages and
 * notices. Escape sequences (colours, cursor moves, OSC titles), newlines that forge a line of their
 * own and bidirectional overrides are shown as visible escapes, log lines are quoted as such, and the
 * lines pgwarden can attribute to the server itself are kept ahead of what any client can write.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PublishCommandInput } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloudWatch, LocalRds } from '../../cli/local/aws.ts';
import { gatherEvidence } from '../../functions/runbook/evidence.ts';
import { openSession } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';
import type { IncidentRecord } from '../../shared/runbook/record.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS } from '../../shared/target.ts';
import { runCli, spawnCli } from '../helpers/cli.ts';
import { ManualClock } from '../helpers/clock.ts';
import { type FakePostgres, messages, startFakePostgres } from '../helpers/fake-postgres.ts';
import { openIdleSessions } from '../helpers/faults.ts';
import { captureOutput, coldStart, lambdaContext } from '../helpers/lambda.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';
import { fleetEnvironmentFor } from '../helpers/targets.ts';

/** An OSC window title, a screen clear, a colour, a forged line and a right-to-left override. */
const HOSTILE = 'boom\u001b]0;pwned\u0007\u001b[2J\u001b[31m red\nFORGED: all clear\r\u202eevil';

/** What must never reach a person raw. */
function expectPrintable(text: string, what: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters
  expect(text, `${what} holds an escape character`).not.toMatch(/[\u001b\u0007\u000d\u202e]/);
  expect(text, `${what} holds a forged line`).not.toMatch(/\nFORGED/);
}

/** Every string inside a JSON value. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

describe('text from outside, shown to people', () => {
  let fake: FakePostgres;
  const home = mkdtempSync(join(tmpdir(), 'pgwarden-text-'));

  beforeAll(async () => {
    fake = await startFakePostgres({
      script: async (c) => {
        await c.send('E', messages.fields({ severity: 'FATAL', code: 'XX000', message: HOSTILE }));
      },
    });
  });
  afterAll(async () => {
    await fake?.close();
    rmSync(home, { recursive: true, force: true });
  });

  const fakeUrl = () => `postgres://monitor@127.0.0.1:${fake.port}/app?sslmode=disable`;

  it('prints a server error message with its escapes visible, in probe and probe --json', async () => {
    const run = await runCli(['probe', '--url', fakeUrl()]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('boom');
    expectPrintable(run.stdout, 'probe output');
    expect(run.stdout).toContain('\\x1b]0;pwned\\x07');
    const json = await runCli(['probe', '--url', fakeUrl(), '--json']);
    const message = (JSON.parse(json.stdout) as { failure: { message: string } }).failure.message;
    expectPrintable(message, 'failure.message');
  });

  it('keeps the live view of npm start to one line per event', async () => {
    const running = spawnCli(['start', '--plain', '--url', fakeUrl(), '--home', join(home, 'live')]);
    try {
      await running.waitFor('boom', 30_000);
    } finally {
      await running.stop();
    }
    expectPrintable(running.output(), 'live view');
  });

  describe('on a real server', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer({ settings: { log_line_prefix: '%t:%r:%u@%d:[%p]:' } });
    });
    afterAll(async () => {
      await server?.destroy();
    });

    it('shows a role named with escape sequences as text in sweep', async () => {
      const monitor = await createMonitorRole(server);
      const role = 'app\u001b]0;pwned\u0007\u001b[2J';
      await server.admin(`CREATE ROLE "${role}" LOGIN PASSWORD 'evil-pw-123'`);
      const idle = await openIdleSessions(
        {
          spec: server.spec({ user: role, password: 'evil-pw-123' }),
          credentials: { user: role, password: 'evil-pw-123' },
        },
        1,
        'orders-api',
      );
      try {
        await new Promise((resolve) => setTimeout(resolve, 1_200));
        const url = server.url({ user: monitor.user, password: monitor.password });
        const run = await runCli(['sweep', '--url', url, '--idle-after', '1s', '--dry-run']);
        expect(run.code).toBe(0);
        expect(run.stdout).toContain('would terminate');
        expectPrintable(run.stdout, 'sweep output');
      } finally {
        await idle.release();
      }
    });

    it('quotes log lines, keeps the server’s own crash line ahead of lines clients forged, and strips escapes', async () => {
      await server.crashBackend();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      // Any client can shape the log with its startup user name, no password needed: a newline in it
      // starts a line that looks like the server's own, and a flood of them pushes real lines out.
      for (let i = 0; i < 25; i++) {
        const user = `x${i}\n2026-01-01 00:00:00 UTC::@:[1]:PANIC:  disk gone \u001b[2J`;
        await openSession(
          { ...server.spec(), user },
          { user, password: 'nope-nope' },
          {
            connectTimeoutMs: 2_000,
            statementTimeoutMs: 1_000,
            applicationName: 'forger',
            logger: silentLogger,
          },
        ).then(
          (s) => s.close(),
          () => undefined,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      const clock = new ManualClock(Date.now());
      const rds = new LocalRds(clock);
      rds.add({ id: 'local', status: () => 'available', logLines: () => server.logLines() });
      const evidence = await gatherEvidence(
        {
          id: 'local',
          connection: server.spec(),
          rds: { instanceId: 'local' },
          thresholds: DEFAULT_THRESHOLDS,
          remediation: DEFAULT_REMEDIATION,
        },
        { rds, cloudwatch: new LocalCloudWatch() },
        clock.now(),
      );
      const text = evidence.logLines.join('\n');
      expect(text).toMatch(/server process \(PID \d+\) was terminated by signal 9/);
      for (const line of evidence.logLines) {
        expectPrintable(line, 'log line');
        if (line.includes('disk gone')) expect(line).toMatch(/^\(unattributed\)/);
      }
    });
  });

  it('composes pages and notices with escapes visible, whatever the execution input said', async () => {
    const target = {
      id: 'orders',
      connection: {
        host: 'orders.db',
        port: 5432,
        database: 'orders',
        user: 'mon',
        auth: { kind: 'iam' as const, region: 'eu-west-1' },
        tls: { mode: 'verify-full' as const },
      },
      thresholds: DEFAULT_THRESHOLDS,
      remediation: DEFAULT_REMEDIATION,
    };
    const runbook = await coldStart('runbook', {
      AWS_REGION: 'eu-west-1',
      PGWARDEN_PAGES_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:pages',
      PGWARDEN_NOTIFICATIONS_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:notifications',
      ...fleetEnvironmentFor([{ id: 'orders', connection: target.connection }]),
    });
    const output = captureOutput();
    let record: IncidentRecord;
    try {
      record = (await runbook(
        {
          action: 'open',
          state: {
            incidentId: 'pgw-orders-20261126-1',
            requestId: 'r-1',
            target,
            trigger: { kind: 'manual', summary: HOSTILE, observedAt: new Date().toISOString() },
            settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
          },
        },
        lambdaContext('runbook'),
      )) as IncidentRecord;
    } finally {
      output.restore();
    }
    expect(record.status).toBe('open');
    // What the state machine publishes, as the runbook composed it.
    const composed = Object.values(record.outbox ?? {}) as PublishCommandInput[];
    expect(composed).toHaveLength(1);
    const message = composed[0] as PublishCommandInput;
    const body = JSON.parse(message.Message ?? '{}') as Record<string, string>;
    expectPrintable(message.Subject ?? '', 'subject');
    expectPrintable(body.email ?? '', 'email body');
    expect(body.email).toContain('boom');
    for (const value of strings(JSON.parse(body.sqs ?? '{}'))) expectPrintable(value, 'JSON document');
  });
});
