/**
 * Judges a probe result against a target's thresholds. Pure: the monitor adds debounce on top, the CLI
 * and the runbook use it directly.
 */
import { explainCategory } from './classify.ts';
import { formatDuration } from './duration.ts';
import type { ProbeResult } from './probe/probe.ts';
import type { Thresholds } from './target.ts';

export type FindingCode =
  | 'probe_failed'
  | 'pool_pressure'
  | 'long_queries'
  | 'blocked_sessions'
  | 'idle_in_transaction'
  | 'wraparound'
  | 'crash_restart';

export interface Finding {
  code: FindingCode;
  severity: 'critical' | 'warning';
  message: string;
}

export interface Assessment {
  healthy: boolean;
  findings: Finding[];
}

/** A crash-restart this recent is still news. */
export const RECENT_RESTART_SECONDS = 15 * 60;

export function assess(result: ProbeResult, thresholds: Thresholds): Assessment {
  if (!result.ok) {
    const { category, message } = result.failure;
    return {
      healthy: false,
      findings: [
        {
          code: 'probe_failed',
          severity: 'critical',
          message: `${category}: ${explainCategory(category)} (${message})`,
        },
      ],
    };
  }
  const findings: Finding[] = [];
  const c = result.connections;
  if (c.utilizationPct >= thresholds.utilizationPct) {
    findings.push({
      code: 'pool_pressure',
      severity: c.utilizationPct >= 100 ? 'critical' : 'warning',
      message: `connection utilization ${c.utilizationPct}% of ${c.usable} usable slots (threshold ${thresholds.utilizationPct}%): ${c.idle} idle, ${c.idleInTransaction} idle in transaction, ${c.active} active`,
    });
  }
  if (result.blockedSessions > 0) {
    findings.push({
      code: 'blocked_sessions',
      severity: 'warning',
      message: `${result.blockedSessions} session(s) blocked behind pid(s) ${result.blockingPids.join(', ') || 'unknown'}`,
    });
  }
  if (result.longRunningQueries > 0) {
    findings.push({
      code: 'long_queries',
      severity: 'warning',
      message: `${result.longRunningQueries} quer${result.longRunningQueries === 1 ? 'y' : 'ies'} running longer than ${formatDuration(result.longQueryThresholdSeconds * 1_000)} (longest ${formatDuration(result.longestQuerySeconds * 1_000)}, pid ${result.longestQueryPid ?? '?'})`,
    });
  }
  if (result.longestIdleInTransactionSeconds >= thresholds.idleInTransactionSeconds) {
    findings.push({
      code: 'idle_in_transaction',
      severity: 'warning',
      message: `a session has been idle in transaction for ${formatDuration(result.longestIdleInTransactionSeconds * 1_000)} (threshold ${formatDuration(thresholds.idleInTransactionSeconds * 1_000)})`,
    });
  }
  if (result.wraparoundAge >= thresholds.wraparoundAge) {
    findings.push({
      code: 'wraparound',
      severity: result.wraparoundPct >= 90 ? 'critical' : 'warning',
      message: `transaction id age ${result.wraparoundAge.toLocaleString('en-US')} (${result.wraparoundPct}% of the wraparound limit; threshold ${thresholds.wraparoundAge.toLocaleString('en-US')})`,
    });
  }
  if (result.crashRestartAt) {
    const ago = (Date.parse(result.checkedAt) - Date.parse(result.crashRestartAt)) / 1_000;
    if (ago <= RECENT_RESTART_SECONDS) {
      findings.push({
        code: 'crash_restart',
        severity: 'warning',
        message: `the server crash-restarted ${formatDuration(ago * 1_000)} ago (${result.crashRestartAt}): every session was reset`,
      });
    }
  }
  return { healthy: findings.length === 0, findings };
}
