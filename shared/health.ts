/**
 * What pgwarden makes of what it sees: the severity table (conditions → severity → what happens) and
 * the judgement of one probe against it. The monitor, the runbook, the CLI and the README all follow
 * this table; only its critical rows may page. Pure: the monitor adds debounce and memory on top.
 */
import { explainCategory } from './classify.ts';
import { formatDuration } from './duration.ts';
import type { ConnectionCounts, ProbeResult } from './probe/snapshot.ts';
import type { Thresholds } from './target.ts';

export type FindingCode =
  | 'probe_failed'
  | 'pool_pressure'
  | 'long_queries'
  | 'blocked_sessions'
  | 'idle_in_transaction'
  | 'wraparound'
  | 'crash_restart';

export type Severity = 'critical' | 'warning';

/** The rows of the severity table. Part of the JSON contract (`findings[].condition`). */
export const CONDITIONS = [
  'outage',
  'pool_exhausted',
  'pool_busy',
  'lock_chain',
  'long_query',
  'idle_in_transaction',
  'crash_restart',
  'crash_recurring',
  'wraparound',
  'wraparound_danger',
] as const;
export type Condition = (typeof CONDITIONS)[number];

/** One row of the severity table. */
export interface SeverityRule {
  code: FindingCode;
  severity: Severity;
  /** The condition, as the README states it. */
  when: string;
  /** The metrics that show it. */
  metrics: string;
  /** Who hears about it on the notifications topic. */
  notice: string;
  /**
   * The monitor opens (or joins) an incident for it, and the runbook works on it. A warning's incident
   * resolves once the runbook has nothing left to do; only a critical one can end in a page.
   */
  incident: boolean;
  /** What the runbook does about it ("" without an incident). */
  action: string;
}

/** What a row says in the README's page column: only critical conditions can page. */
export function pageText(rule: SeverityRule): string {
  return rule.severity === 'critical' ? 'once, if still there at the escalation time (20 min)' : 'never';
}

/** Crash-restarts this close together are one recurring problem, and the incident waits this long after the last. */
export const RECENT_RESTART_SECONDS = 15 * 60;
/** Transaction-id age, in percent of the wraparound limit, at which it is critical (about 1.93 billion). */
export const WRAPAROUND_DANGER_PCT = 90;

const INCIDENT_NOTICE = 'incident opened, then resolved';

/**
 * The severity table. A critical condition opens an incident and pages on-call once if it is still
 * there at the escalation time; a warning never pages.
 */
export const SEVERITY_TABLE: Readonly<Record<Condition, SeverityRule>> = {
  outage: {
    code: 'probe_failed',
    severity: 'critical',
    when: 'the database down, unreachable, refusing connections or refusing the monitor: 3 failed probes in a row',
    metrics: '`ProbeSuccess`',
    notice: INCIDENT_NOTICE,
    incident: true,
    action: 'waits through restarts and failovers, starts a stopped instance if opted in',
  },
  pool_exhausted: {
    code: 'pool_pressure',
    severity: 'critical',
    when: 'the pool exhausted: every usable slot taken but at most one (which a probe may be holding), or 53300 (2 observations)',
    metrics: '`ConnectionUtilization`',
    notice: INCIDENT_NOTICE,
    incident: true,
    action: 'terminates idle sessions under the escalated policy (idle > 30 s)',
  },
  pool_busy: {
    code: 'pool_pressure',
    severity: 'warning',
    when: 'utilization ≥ `thresholds.utilizationPct` (80 %) of usable slots, more than one slot free',
    metrics: '`ConnectionUtilization`',
    notice: 'the `utilization-high` alarm after 5 minutes, which also opens an incident',
    incident: false,
    action: '',
  },
  lock_chain: {
    code: 'blocked_sessions',
    severity: 'critical',
    when: 'a session waiting on a lock for `thresholds.lockWait` (60 s) or longer (2 observations)',
    metrics: '`BlockedSessions`',
    notice: INCIDENT_NOTICE,
    incident: true,
    action: 'terminates the head of the chain if it is idle in its transaction (≥ 60 s)',
  },
  long_query: {
    code: 'long_queries',
    severity: 'critical',
    when: 'a query running longer than `thresholds.longQuery` (5 min) (2 observations)',
    metrics: '`LongRunningQueries`',
    notice: INCIDENT_NOTICE,
    incident: true,
    action: 'cancels it only when `remediation.cancelQueriesAfter` is set',
  },
  idle_in_transaction: {
    code: 'idle_in_transaction',
    severity: 'warning',
    when: 'a session idle in transaction for `thresholds.idleInTransaction` (5 min) (2 observations)',
    metrics: '`ConnectionsIdleInTransaction`, `OldestTransactionAge`',
    notice: INCIDENT_NOTICE,
    incident: true,
    action: 'terminates it after `remediation.idleInTransactionAfter` (10 min), then resolves',
  },
  crash_restart: {
    code: 'crash_restart',
    severity: 'warning',
    when: 'a crash-restart: the background processes restarted under the same postmaster',
    metrics: '`ServerRestarts`',
    notice: INCIDENT_NOTICE,
    incident: true,
    action: 'gathers the evidence (crash lines from the log) and resolves once the server answers',
  },
  crash_recurring: {
    code: 'crash_restart',
    severity: 'critical',
    when: 'crash-restarts that keep recurring: a second one within 15 minutes',
    metrics: '`ServerRestarts`',
    notice: INCIDENT_NOTICE,
    incident: true,
    action: 'keeps the incident open until the server has stayed up for 15 minutes',
  },
  wraparound: {
    code: 'wraparound',
    severity: 'warning',
    when: 'transaction-id age ≥ `thresholds.wraparoundAge` (1 billion)',
    metrics: '`WraparoundPercent`',
    notice: 'the `wraparound-high` alarm',
    incident: false,
    action: '',
  },
  wraparound_danger: {
    code: 'wraparound',
    severity: 'critical',
    when: `transaction-id age ≥ ${WRAPAROUND_DANGER_PCT} % of the wraparound limit (about 1.93 billion)`,
    metrics: '`WraparoundPercent`',
    notice: INCIDENT_NOTICE,
    incident: true,
    action: 'none of its own: vacuuming (freeze) needs a DBA',
  },
};

export interface Finding {
  code: FindingCode;
  /** The row of the severity table that applies. */
  condition: Condition;
  severity: Severity;
  message: string;
}

export interface Assessment {
  healthy: boolean;
  findings: Finding[];
}

/** What one probe cannot tell by itself; the monitor remembers it between probes. */
export interface AssessContext {
  /** Crash-restarts seen within RECENT_RESTART_SECONDS, the latest included. @default 1 */
  recentCrashRestarts?: number;
  /**
   * The longest lock wait as judged across probes (`judgeLockWaits`): needed before PostgreSQL 14, where
   * the snapshot cannot date a wait. @default the snapshot's longestLockWaitSeconds
   */
  lockWaitSeconds?: number;
}

function finding(condition: Condition, message: string): Finding {
  const rule = SEVERITY_TABLE[condition];
  return { code: rule.code, condition, severity: rule.severity, message };
}

/**
 * Every usable slot taken, or all but one. A slot counted free may be held for a moment by a probe or
 * any other short connection when applications are refused: a pool full but one is exhausted.
 */
export function poolExhausted(c: Pick<ConnectionCounts, 'total' | 'usable'>): boolean {
  return c.total >= c.usable - 1;
}

/** The rule a finding follows. */
export function ruleOf(f: Pick<Finding, 'condition'>): SeverityRule {
  return SEVERITY_TABLE[f.condition];
}

export function assess(result: ProbeResult, thresholds: Thresholds, context: AssessContext = {}): Assessment {
  if (!result.ok) {
    const { category, message } = result.failure;
    return {
      healthy: false,
      findings: [
        finding(
          category === 'too_many_connections' ? 'pool_exhausted' : 'outage',
          `${category}: ${explainCategory(category)} (${message})`,
        ),
      ],
    };
  }
  const seconds = (s: number) => formatDuration(s * 1_000);
  const findings: Finding[] = [];
  const c = result.connections;
  if (c.utilizationPct >= thresholds.utilizationPct) {
    findings.push(
      finding(
        poolExhausted(c) ? 'pool_exhausted' : 'pool_busy',
        `connection utilization ${c.utilizationPct}% of ${c.usable} usable slots (threshold ${thresholds.utilizationPct}%): ${c.idle} idle, ${c.idleInTransaction} idle in transaction, ${c.active} active`,
      ),
    );
  }
  const lockWait = context.lockWaitSeconds ?? result.longestLockWaitSeconds;
  if (result.blockedSessions > 0 && lockWait !== null && lockWait >= thresholds.lockWaitSeconds) {
    findings.push(
      finding(
        'lock_chain',
        `${result.blockedSessions} session(s) blocked behind pid(s) ${result.blockingPids.join(', ') || 'unknown'}, the longest for ${seconds(lockWait)} (threshold ${seconds(thresholds.lockWaitSeconds)})`,
      ),
    );
  }
  if (result.longRunningQueries > 0) {
    findings.push(
      finding(
        'long_query',
        `${result.longRunningQueries} quer${result.longRunningQueries === 1 ? 'y' : 'ies'} running longer than ${seconds(result.longQueryThresholdSeconds)} (longest ${seconds(result.longestQuerySeconds)}, pid ${result.longestQueryPid ?? '?'})`,
      ),
    );
  }
  if (result.longestIdleInTransactionSeconds >= thresholds.idleInTransactionSeconds) {
    findings.push(
      finding(
        'idle_in_transaction',
        `a session has been idle in transaction for ${seconds(result.longestIdleInTransactionSeconds)} (threshold ${seconds(thresholds.idleInTransactionSeconds)})`,
      ),
    );
  }
  if (result.wraparoundAge >= thresholds.wraparoundAge) {
    findings.push(
      finding(
        result.wraparoundPct >= WRAPAROUND_DANGER_PCT ? 'wraparound_danger' : 'wraparound',
        `transaction id age ${result.wraparoundAge.toLocaleString('en-US')} (${result.wraparoundPct}% of the wraparound limit; threshold ${thresholds.wraparoundAge.toLocaleString('en-US')})`,
      ),
    );
  }
  if (result.crashRestartAt) {
    const ago = (Date.parse(result.checkedAt) - Date.parse(result.crashRestartAt)) / 1_000;
    if (ago <= RECENT_RESTART_SECONDS) {
      const recent = context.recentCrashRestarts ?? 1;
      findings.push(
        recent >= 2
          ? finding(
              'crash_recurring',
              `the server crash-restarted ${recent} times in ${seconds(RECENT_RESTART_SECONDS)}, the latest ${seconds(ago)} ago (${result.crashRestartAt}): every session was reset each time`,
            )
          : finding(
              'crash_restart',
              `the server crash-restarted ${seconds(ago)} ago (${result.crashRestartAt}): every session was reset`,
            ),
      );
    }
  }
  return { healthy: findings.length === 0, findings };
}
