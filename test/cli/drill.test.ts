import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDrill } from '../helpers/cli.ts';

/** Fast clocks so each drill plays out in seconds (local mode prints them at start-up). */
const FAST = [
  '--cadence',
  '500ms',
  '--recheck-every',
  '1s',
  '--pressure-idle-after',
  '2s',
  '--blocker-idle-after',
  '2s',
  '--lock-wait-after',
  '2s',
];
const homes: string[] = [];
afterAll(() => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function drill(fault: string, ...flags: string[]) {
  const home = mkdtempSync(join(tmpdir(), 'pgwarden-drill-'));
  homes.push(home);
  return runDrill(home, fault, [...FAST, ...flags]);
}

const kinds = (pages: Array<{ topic: string; subject: string }>) =>
  pages.map((p) => `${p.topic}:${p.subject.split(':')[0]}`);

describe('pgwarden drill (each starts its own local system)', () => {
  it('idle-flood: detects the exhausted pool, terminates idle sessions, resolves without a page', async () => {
    const { run, report } = await drill('idle-flood');
    expect(run.code).toBe(0);
    expect(report.outcome).toBe('resolved');
    expect(report.actions.some((a) => a.kind === 'terminate_idle' && a.ok)).toBe(true);
    expect(kinds(report.pages)).toEqual([
      'notifications:[pgwarden] incident opened',
      'notifications:[pgwarden] resolved',
    ]);
  });

  it('idle-in-transaction: terminates the abandoned transaction', async () => {
    const { run, report } = await drill('idle-in-transaction', '--idle-in-transaction-after', '2s');
    expect(run.code).toBe(0);
    expect(report.actions).toEqual([
      expect.objectContaining({ kind: 'terminate_idle_in_transaction', ok: true }),
    ]);
  });

  it('lock-chain: terminates the blocker at the head of the chain', async () => {
    const { run, report } = await drill('lock-chain');
    expect(run.code).toBe(0);
    expect(report.actions.some((a) => a.kind === 'terminate_blockers' && a.ok)).toBe(true);
    expect(report.found[0]).toContain('blocked behind pid');
  });

  it('crash: sees a crash-restart of a fraction of a second and reports the log line', async () => {
    const { run, report } = await drill('crash');
    expect(run.code).toBe(0);
    expect(report.outcome).toBe('resolved');
    const resolution = report.pages.find((p) => p.subject.includes('resolved'));
    expect(resolution?.message).toContain('was terminated by signal 9');
  });
});
