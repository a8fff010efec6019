import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli } from '../helpers/cli.ts';

const home = mkdtempSync(join(tmpdir(), 'pgwarden-start-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('pgwarden start (npm start)', () => {
  it('runs the whole system locally, takes a drill from another terminal, and stops cleanly on Ctrl-C', async () => {
    const system = spawnCli([
      'start',
      '--plain',
      '--home',
      home,
      '--cadence',
      '500ms',
      '--recheck-every',
      '1s',
    ]);
    try {
      await system.waitFor(
        /monitoring local \(pgwarden_monitor@127\.0\.0\.1:\d+\/postgres\) on an embedded PostgreSQL/,
      );
      await system.waitFor(/local healthy conn \d+\/\d+ \([\d.]+%\)/);
      const port = Number(/127\.0\.0\.1:(\d+)\//.exec(system.output())?.[1]);

      // A second terminal: the drill goes to the running system through its control socket.
      const drill = await runCli(['drill', 'crash', '--home', home, '--json'], {}, 60_000);
      expect(drill.code).toBe(0);
      expect(drill.stdout).not.toContain('starting one for this drill');
      expect(JSON.parse(drill.stdout)).toMatchObject({ drill: 'crash', outcome: 'resolved' });
      await system.waitFor(/incident pgw-local-\d{8}-1 ended: resolved/);
      // The incident opens on whichever signal reaches the monitor first: the crash-restart, or (on a
      // busy machine, when recovery outlasts three probes) the failed probes. Either way the
      // resolution names the crash-restart.
      expect(system.output()).toMatch(
        /notification \(opened\): \[pgwarden\] incident opened: local: (the server crash-restarted|3 consecutive probes failed)/,
      );
      expect(system.output()).toMatch(
        /notification \(resolved\): \[pgwarden\] resolved: local: crash-restart at \d\d:\d\d:\d\d; healthy again/,
      );

      const outbox = readdirSync(join(home, 'outbox'));
      expect(outbox.some((f) => /pgwarden-notifications-opened\.txt$/.test(f))).toBe(true);
      expect(outbox.some((f) => /pgwarden-notifications-resolved\.json$/.test(f))).toBe(true);

      // Metrics reach the file every 5 seconds, as PutMetricData requests.
      const file = join(home, 'metrics.jsonl');
      const deadline = Date.now() + 10_000;
      while (
        !(existsSync(file) && readFileSync(file, 'utf8').includes('ServerRestarts')) &&
        Date.now() < deadline
      ) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const metrics = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(metrics.length).toBeGreaterThan(0);
      expect(metrics[0].Namespace).toBe('PgWarden');
      const names = new Set(
        metrics.flatMap((m: { MetricData: Array<{ MetricName: string }> }) =>
          m.MetricData.map((d) => d.MetricName),
        ),
      );
      for (const name of [
        'ProbeSuccess',
        'Connections',
        'ConnectionUtilization',
        'ServerRestarts',
        'MonitorHeartbeat',
      ])
        expect(names).toContain(name);
      expect(metrics[0].MetricData[0]).toHaveProperty('Values');

      expect(await system.stop('SIGINT')).toBe(0);
      expect(system.output()).toContain(
        'stopped: monitor, sweep and runbook ended, embedded PostgreSQL shut down.',
      );
      expect(await portRefuses(port)).toBe(true);
    } finally {
      await system.stop('SIGKILL');
    }
  }, 120_000);

  it('plays out a drill given at start and exits with its outcome', async () => {
    const run = await runCli(
      [
        'start',
        '--plain',
        '--home',
        join(home, 'second'),
        '--cadence',
        '500ms',
        '--recheck-every',
        '1s',
        '--pressure-idle-after',
        '2s',
        '--drill',
        'idle-flood',
        '--exit-after-drill',
      ],
      {},
      90_000,
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('drill idle-flood: ');
    expect(run.stdout).toContain('outcome: RESOLVED');
    expect(existsSync(join(home, 'second', 'control.sock'))).toBe(false);
  }, 120_000);
});
