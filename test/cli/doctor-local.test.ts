/**
 * `pgwarden doctor` and `pgwarden test-page` in local mode: from a second terminal, against the system
 * `npm start` runs in the same folder, through its control socket; the outbox stands in for the topics.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Check } from '../../cli/doctor/report.ts';
import { runCli, spawnCli } from '../helpers/cli.ts';

const home = mkdtempSync(join(tmpdir(), 'pgwarden-doctor-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('pgwarden doctor and test-page, local mode', () => {
  it('checks the running system and sends a test page to its outbox; with none running, says so', async () => {
    const system = spawnCli(['start', '--plain', '--home', home, '--cadence', '500ms']);
    try {
      await system.waitFor(/local healthy conn \d+\/\d+ \([\d.]+%\)/);

      const doctor = await runCli(['doctor', '--home', home, '--json']);
      expect(doctor.code).toBe(0);
      const report = JSON.parse(doctor.stdout) as { ok: boolean; checks: Check[] };
      expect(report.ok).toBe(true);
      const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
      expect(status).toMatchObject({
        'local.running': 'ok',
        'monitor.heartbeat': 'ok',
        'probe.local': 'ok',
        outbox: 'ok',
        connect: 'ok',
        tls: 'ok',
        'role.read_sessions': 'ok',
        'role.signal_backends': 'ok',
        'role.superuser': 'ok',
        // Local mode reserves slots for its monitor role, as the README tells users to.
        'role.reserved_slot': 'ok',
        'margin.slots': 'ok',
        'margin.probe_time': 'ok',
      });

      const page = await runCli(['test-page', '--home', home]);
      expect(page.code).toBe(0);
      expect(page.stdout).toMatch(/^Published a TEST page through the local system in /);
      const file = /Written to (\S+\.txt)/.exec(page.stdout)?.[1] as string;
      expect(file).toMatch(/-pgwarden-pages-test\.txt$/);
      const written = readFileSync(file, 'utf8');
      expect(written).toMatch(/^Subject: \[pgwarden\] TEST page from local system in .*: nothing is wrong\n/);
      expect(written).toContain('Target: none. This is a TEST page from pgwarden');
      await system.waitFor(/PAGE \(test\): \[pgwarden\] TEST page from local system/);

      const notification = await runCli(['test-page', '--home', home, '--topic', 'notifications', '--json']);
      expect(notification.code).toBe(0);
      expect(JSON.parse(notification.stdout)).toMatchObject({ ok: true, topic: 'notifications' });
      expect(
        readdirSync(join(home, 'outbox')).some((f) => f.endsWith('-pgwarden-notifications-test.json')),
      ).toBe(true);
    } finally {
      expect(await system.stop('SIGINT')).toBe(0);
    }

    const after = await runCli(['doctor', '--home', home]);
    expect(after.code).toBe(1);
    expect(after.stdout).toContain(`FAIL  local.running`);
    expect(after.stdout).toContain(`no local pgwarden is running in ${home}`);
    const noPage = await runCli(['test-page', '--home', home]);
    expect(noPage.code).toBe(1);
    expect(noPage.stderr).toContain('Start it in this folder with npm start');
  });
});
