import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assess, CONDITIONS, pageText, SEVERITY_TABLE } from '../../shared/health.ts';
import { DEFAULT_THRESHOLDS } from '../../shared/target.ts';
import { failure, snapshot } from './runbook/fixtures.ts';

/** The README's severity table, as rows of trimmed cells. */
function readmeSeverityRows(): string[][] {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('| condition ');
  const lines = readme.slice(start).split('\n');
  const rows: string[][] = [];
  for (const line of lines.slice(2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

describe('severity table', () => {
  it('is the table the README shows, row for row', () => {
    const rows = readmeSeverityRows();
    for (const condition of CONDITIONS) {
      const rule = SEVERITY_TABLE[condition];
      expect(rows, condition).toContainEqual([
        rule.when,
        rule.severity,
        rule.metrics,
        rule.notice,
        rule.incident ? `yes: ${rule.action}` : 'no',
        pageText(rule),
      ]);
    }
    // Plus one row for what is only a metric.
    expect(rows).toHaveLength(CONDITIONS.length + 1);
  });

  it('lets only critical conditions page, and every critical condition open an incident', () => {
    for (const condition of CONDITIONS) {
      const rule = SEVERITY_TABLE[condition];
      if (rule.severity === 'critical') expect(rule.incident, condition).toBe(true);
      else expect(pageText(rule), condition).toBe('never');
    }
  });
});

describe('assess', () => {
  const t = DEFAULT_THRESHOLDS;
  const conditions = (probe: Parameters<typeof assess>[0], context = {}) =>
    assess(probe, t, context).findings.map((f) => [f.condition, f.severity]);

  it('puts a failed probe under the outage row, and 53300 under the exhausted pool', () => {
    expect(conditions(failure('unreachable'))).toEqual([['outage', 'critical']]);
    expect(conditions(failure('too_many_connections', '53300'))).toEqual([['pool_exhausted', 'critical']]);
  });

  it('tells a busy pool (a warning) from an exhausted one, full or full but one slot (critical)', () => {
    const at = (total: number) =>
      snapshot({
        connections: {
          ...snapshot().connections,
          total,
          utilizationPct: Math.round((total / 97) * 1_000) / 10,
        },
      });
    expect(conditions(at(77))).toEqual([]);
    expect(conditions(at(85))).toEqual([['pool_busy', 'warning']]);
    expect(conditions(at(95))).toEqual([['pool_busy', 'warning']]);
    expect(conditions(at(96))).toEqual([['pool_exhausted', 'critical']]);
    expect(conditions(at(97))).toEqual([['pool_exhausted', 'critical']]);
  });

  it('judges lock waits by how long they last, from the snapshot or from what the monitor remembers', () => {
    const waiting = (longestLockWaitSeconds: number | null) =>
      snapshot({ blockedSessions: 4, blockingPids: [9], longestLockWaitSeconds });
    expect(conditions(waiting(59.9))).toEqual([]);
    expect(conditions(waiting(60))).toEqual([['lock_chain', 'critical']]);
    expect(conditions(waiting(null))).toEqual([]);
    expect(conditions(waiting(null), { lockWaitSeconds: 75 })).toEqual([['lock_chain', 'critical']]);
  });

  it('makes a crash-restart critical only when it recurs', () => {
    const crashed = snapshot({ crashRestartAt: '2026-11-26T09:59:00.000Z' });
    expect(conditions(crashed)).toEqual([['crash_restart', 'warning']]);
    expect(conditions(crashed, { recentCrashRestarts: 2 })).toEqual([['crash_recurring', 'critical']]);
    const old = snapshot({ crashRestartAt: '2026-11-26T09:40:00.000Z' });
    expect(conditions(old, { recentCrashRestarts: 2 })).toEqual([]);
  });

  it('calls transaction-id age a warning, and critical from 90 % of the limit', () => {
    expect(conditions(snapshot({ wraparoundAge: 1_100_000_000, wraparoundPct: 51.2 }))).toEqual([
      ['wraparound', 'warning'],
    ]);
    expect(conditions(snapshot({ wraparoundAge: 1_950_000_000, wraparoundPct: 90.8 }))).toEqual([
      ['wraparound_danger', 'critical'],
    ]);
  });

  it('calls long queries critical and long idle transactions a warning', () => {
    expect(
      conditions(
        snapshot({
          longRunningQueries: 1,
          longestQuerySeconds: 400,
          longestIdleInTransactionSeconds: 400,
        }),
      ),
    ).toEqual([
      ['long_query', 'critical'],
      ['idle_in_transaction', 'warning'],
    ]);
  });
});
