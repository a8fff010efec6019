import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, runDrill } from '../helpers/cli.ts';

const FAST = ['--cadence', '500ms', '--recheck-every', '1s'];
const homes: string[] = [];
afterAll(() => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function drill(fault: string, ...flags: string[]) {
  const home = mkdtempSync(join(tmpdir(), 'pgwarden-drill-'));
  homes.push(home);
  return runDrill(home, fault, [...FAST, ...flags]);
}

describe('pgwarden drill: waiting, escalation and cancellation', () => {
  it('stop: waits for the server to come back and resolves without a page', async () => {
    const { run, report } = await drill('stop', '--for', '3s');
    expect(run.code).toBe(0);
    expect(report.outcome).toBe('resolved');
    expect(report.pages.filter((p) => p.topic === 'pages')).toEqual([]);
    expect(report.found.join('\n')).toContain('is stopped');
  });

  it('bad-password: cannot fix credentials, pages once at the escalation time, exits 1', async () => {
    const { run, report } = await drill('bad-password', '--for', '12s', '--escalate-after', '3s');
    expect(run.code).toBe(1);
    expect(report.outcome).toBe('escalated');
    const pages = report.pages.filter((p) => p.topic === 'pages' && p.subject.includes('CRITICAL'));
    expect(pages).toHaveLength(1);
    expect(pages[0]?.message).toContain('auth_failed (28P01)');
    // The password comes back after --for, and the resolution reaches on-call too.
    expect(report.status).toBe('resolved');
  });

  it('long-query: cancels the query when canceling is on', async () => {
    const { run, report } = await drill(
      'long-query',
      '--long-query-after',
      '2s',
      '--cancel-queries-after',
      '3s',
    );
    expect(run.code).toBe(0);
    expect(report.actions).toEqual([expect.objectContaining({ kind: 'cancel_queries', ok: true })]);
  });

  it('long-query: escalates when canceling is off', async () => {
    const { run, report } = await drill(
      'long-query',
      '--long-query-after',
      '2s',
      '--escalate-after',
      '3s',
      // Released well after the page is due, so the page is not a race on a loaded machine.
      '--for',
      '12s',
    );
    expect(run.code).toBe(1);
    expect(report.outcome).toBe('escalated');
    expect(
      report.pages.some((p) => p.topic === 'pages' && p.message.includes('canceling queries is off')),
    ).toBe(true);
  });

  it('refuses an unknown fault with the list of drills', async () => {
    const run = await runCli(['drill', 'meteor']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('<fault>: is not a drill (got "meteor")');
    expect(run.stderr).toContain(
      'idle-flood, idle-in-transaction, lock-chain, long-query, crash, stop, bad-password',
    );
  });
});
