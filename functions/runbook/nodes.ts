/**
 * The decision tree of the connection runbook, one pure function per node. Each reads the probe result
 * (and, for `running`, the RDS status) and returns what it found and what to do next.
 */
import { explainCategory, type FailureCategory } from '../../shared/classify.ts';
import { formatDuration } from '../../shared/duration.ts';
import {
  poolExhausted,
  RECENT_RESTART_SECONDS,
  type Severity,
  WRAPAROUND_DANGER_PCT,
} from '../../shared/health.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import type { RunbookNode } from '../../shared/runbook/definition.ts';
import type { Decision, InstanceStatus, NodeOutcome, Recovery } from '../../shared/runbook/record.ts';
import type { Target } from '../../shared/target.ts';
import { notAccepting, recoveryOutcome } from './recovery.ts';

export interface NodeInput {
  target: Target;
  probe: ProbeResult;
  instance?: InstanceStatus;
  /** The RDS status could not be read; why. */
  instanceError?: string;
  /** A StartDBInstance was already requested in this incident. */
  startRequested: boolean;
  /**
   * The escalated policy was already engaged in this incident (the pool was exhausted). It stays on
   * until utilization is back under the alert threshold, so a first pass that frees only a few slots
   * does not leave the pool stuck between the two thresholds.
   */
  pressureEngaged?: boolean;
  /**
   * For how long, in this incident, PostgreSQL has not accepted connections while RDS reported the
   * instance available (see recovery.ts).
   */
  notAcceptingSeconds?: number;
  /** The incident's reboot or failover, if it had one: there is at most one. */
  recovery?: Recovery;
  /** Crash-restarts that belong to this incident (ISO, oldest first). */
  crashRestarts?: readonly string[];
  /**
   * The longest lock wait as judged across the incident's probes (needed before PostgreSQL 14).
   * @default the probe's longestLockWaitSeconds
   */
  lockWaitSeconds?: number;
  /** Remedies whose latest pass in this incident acted on nothing: a warning is not worked on again. */
  fruitless?: readonly Decision[];
}

const ok = (detail: string): NodeOutcome => ({ result: 'ok', detail, decision: 'continue' });
const skip = (detail: string): NodeOutcome => ({ result: 'skipped', detail, decision: 'continue' });
const wait = (detail: string): NodeOutcome => ({ result: 'waiting', detail, decision: 'wait' });
const fault = (
  detail: string,
  decision: Decision = 'unresolved',
  severity: Severity = 'critical',
): NodeOutcome => ({
  result: 'fault',
  detail,
  decision,
  ...(severity === 'warning' ? { severity } : {}),
});
const warning = (detail: string, decision: Decision): NodeOutcome => fault(detail, decision, 'warning');
const seconds = (s: number) => formatDuration(s * 1_000);
const clock = (iso: string) => iso.slice(11, 19);

/** Crash-restarts that keep coming: the incident stays open until the server stays up long enough. */
function recurringCrash({ probe, crashRestarts = [] }: NodeInput): NodeOutcome | undefined {
  const latest = crashRestarts[crashRestarts.length - 1];
  if (!latest) return undefined;
  const window = RECENT_RESTART_SECONDS * 1_000;
  const recent = crashRestarts.filter((at) => Date.parse(latest) - Date.parse(at) <= window);
  if (recent.length < 2) return undefined;
  // The server's clock, which dated the crash-restarts.
  const upFor = probe.ok ? (Date.parse(probe.checkedAt) - Date.parse(latest)) / 1_000 : 0;
  if (upFor >= RECENT_RESTART_SECONDS) return undefined;
  return fault(
    `the server crash-restarted ${recent.length} times (${recent.map(clock).join(', ')}): it keeps crashing; waiting until it stays up for ${seconds(RECENT_RESTART_SECONDS)} (up ${seconds(upFor)})`,
    'wait',
  );
}

const NETWORK: ReadonlySet<FailureCategory> = new Set(['unreachable', 'timeout', 'dns', 'tls']);
const AUTH: ReadonlySet<FailureCategory> = new Set(['auth_failed', 'permission_denied', 'database_missing']);

/** RDS statuses during which connection trouble is expected: wait and re-check. */
const TRANSITIONAL = new Set([
  'rebooting',
  'failing-over',
  'starting',
  'stopping',
  'creating',
  'resetting-master-credentials',
  'renaming',
  'upgrading',
  'promoting',
  'migrating',
]);
/** Statuses in which the database runs normally (maintenance may be in progress). */
const RUNNING = new Set([
  'available',
  'backing-up',
  'modifying',
  'maintenance',
  'storage-optimization',
  'configuring-enhanced-monitoring',
  'configuring-iam-database-auth',
  'configuring-log-exports',
  'storage-config-upgrade',
  'storage-initialization',
  'backtracking',
]);

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

function failureText(probe: Extract<ProbeResult, { ok: false }>): string {
  const f = probe.failure;
  return `${f.category}${f.sqlstate ? ` (${f.sqlstate})` : ''}: ${f.message}`;
}

export function evaluateNode(node: RunbookNode, input: NodeInput): NodeOutcome {
  switch (node) {
    case 'running':
      return running(input);
    case 'accepting_connections':
      return accepting(input);
    case 'network':
      return network(input);
    case 'pool':
      return pool(input);
    case 'auth':
      return auth(input);
    case 'queries':
      return queries(input);
  }
}

function running(input: NodeInput): NodeOutcome {
  const { target, probe, instance, instanceError, startRequested } = input;
  if (instance) {
    const { status, id, kind } = instance;
    if (RUNNING.has(status)) return recurringCrash(input) ?? ok(`RDS ${kind} ${id} is ${status}`);
    if (TRANSITIONAL.has(status))
      return wait(
        `RDS ${kind} ${id} is ${status}: expected to be briefly unavailable; waiting and re-checking`,
      );
    if (status === 'stopped') {
      if (!target.remediation.allowStartInstance)
        return fault(
          `RDS ${kind} ${id} is stopped; starting it is not enabled for this target (remediation.allowStartInstance)`,
        );
      if (startRequested) return wait(`RDS ${kind} ${id} is stopped; a start was requested, waiting for it`);
      return fault(
        `RDS ${kind} ${id} is stopped; starting it (remediation.allowStartInstance is on)`,
        'start_instance',
      );
    }
    if (status === 'storage-full')
      return fault(`RDS ${kind} ${id} is storage-full: add storage (pgwarden does not resize)`);
    if (status.startsWith('incompatible-') || status.startsWith('inaccessible-') || status === 'failed')
      return fault(`RDS ${kind} ${id} is ${status}: it needs a human (check the RDS events and console)`);
    return wait(`RDS ${kind} ${id} is ${status}`);
  }
  const prefix = instanceError ? `RDS status unavailable (${instanceError}); ` : '';
  if (!probe.ok && probe.failure.category === 'unreachable' && isLoopback(target.connection.host)) {
    return fault(
      `${prefix}nothing accepts connections on ${target.connection.host}:${target.connection.port}: PostgreSQL is not running`,
      'wait',
    );
  }
  return (
    recurringCrash(input) ?? skip(`${prefix}${target.rds ? '' : 'not an RDS target; '}judged by the probe`)
  );
}

function accepting({ target, probe, instance, notAcceptingSeconds, recovery }: NodeInput): NodeOutcome {
  if (probe.ok)
    return ok(
      `accepted a connection in ${probe.latencyMs.connect} ms and answered in ${probe.latencyMs.query} ms`,
    );
  const down = notAccepting(probe, instance);
  const acting =
    down && instance
      ? recoveryOutcome({ target, instance, down, seconds: notAcceptingSeconds ?? 0, recovery })
      : undefined;
  if (acting) return acting;
  const { category } = probe.failure;
  if (category === 'starting_up' || category === 'shutting_down')
    return wait(`${failureText(probe)}: ${explainCategory(category)}; waiting and re-checking`);
  if (category === 'connection_lost')
    return wait(
      `${failureText(probe)}: the server dropped the connection (crash, restart or failover); waiting and re-checking`,
    );
  if (NETWORK.has(category))
    return skip('cannot tell: the connection did not reach PostgreSQL (see network)');
  return ok(`PostgreSQL answered at the protocol level (${category})`);
}

function network({ probe }: NodeInput): NodeOutcome {
  if (probe.ok || !NETWORK.has(probe.failure.category)) return ok('the host resolves and the port answers');
  const { category } = probe.failure;
  const hint: Record<string, string> = {
    unreachable:
      'connection refused or host unreachable: check that the server runs and that security groups / NACLs allow the port',
    timeout:
      'no answer in time: a security group or route may be dropping packets, or the server is overloaded',
    dns: 'the endpoint does not resolve: check the host name, or whether the instance was deleted or renamed',
    tls: 'TLS could not be verified: check the CA bundle (NODE_EXTRA_CA_CERTS / sslrootcert) and sslmode',
  };
  return fault(`${failureText(probe)}: ${hint[category] ?? explainCategory(category)}`);
}

function pool({ target, probe, pressureEngaged, fruitless = [] }: NodeInput): NodeOutcome {
  const pressureAt = target.remediation.pressure.utilizationPct;
  if (!probe.ok) {
    if (probe.failure.category !== 'too_many_connections') return ok('no sign of an exhausted pool');
    return {
      ...fault(
        `every connection slot is taken (53300): terminating idle sessions under the escalated policy`,
        'remediate_pool',
      ),
      pressure: { active: true, reason: 'the server refused connections with 53300' },
    };
  }
  const c = probe.connections;
  if (c.utilizationPct < target.thresholds.utilizationPct)
    return ok(`${c.total} of ${c.usable} usable slots in use (${c.utilizationPct}%)`);
  const state = `${c.total} of ${c.usable} usable slots in use (${c.utilizationPct}% ≥ ${target.thresholds.utilizationPct}%): ${c.idle} idle, ${c.idleInTransaction} idle in transaction, ${c.active} active`;
  // With more than one slot free the pool is busy, not exhausted: a warning, worked on while terminating helps.
  const exhausted = poolExhausted(c);
  if (!exhausted && fruitless.includes('remediate_pool'))
    return warning(`${state}; the last pass found no session the policy allows terminating`, 'continue');
  const active = c.utilizationPct >= pressureAt || Boolean(pressureEngaged);
  const reason =
    c.utilizationPct >= pressureAt
      ? `utilization ${c.utilizationPct}% ≥ ${pressureAt}%`
      : `the pool was exhausted in this incident and is still at ${c.utilizationPct}% (≥ ${target.thresholds.utilizationPct}%)`;
  const doing =
    exhausted && fruitless.includes('remediate_pool')
      ? 'the last pass found no session the policy allows terminating: trying again'
      : 'terminating idle sessions';
  return {
    ...fault(`${state}; ${doing}`, 'remediate_pool', exhausted ? 'critical' : 'warning'),
    pressure: active ? { active: true, reason } : { active: false },
  };
}

function auth({ probe }: NodeInput): NodeOutcome {
  if (probe.ok) return ok('authenticated');
  const { category } = probe.failure;
  if (!AUTH.has(category)) return ok('no authentication error');
  const hint: Record<string, string> = {
    auth_failed:
      'check the credentials: a rotated secret, an expired IAM token, a changed password, or pg_hba.conf',
    permission_denied: 'the monitor role lacks a privilege (CONNECT on the database, pg_monitor)',
    database_missing: 'the configured database does not exist (renamed, dropped, or a typo)',
  };
  return fault(`${failureText(probe)}: ${hint[category]}`);
}

function queries(input: NodeInput): NodeOutcome {
  const { target, probe, fruitless = [] } = input;
  if (!probe.ok)
    return fault(`the health query itself failed: ${failureText(probe)} (unknown cause: escalate)`);
  const policy = target.remediation;
  const lockWait = input.lockWaitSeconds ?? probe.longestLockWaitSeconds;
  const lockThreshold = target.thresholds.lockWaitSeconds;
  if (probe.blockedSessions > 0 && lockWait !== null && lockWait >= lockThreshold) {
    const text = `${probe.blockedSessions} session(s) blocked behind pid(s) ${probe.blockingPids.join(', ')}, the longest for ${seconds(lockWait)} (threshold ${seconds(lockThreshold)})`;
    if (!policy.terminateBlockers) return fault(`${text}: terminating blockers is off for this target`);
    return fault(
      fruitless.includes('remediate_blockers')
        ? `${text}; the last pass found no session the policy allows terminating (the head is active, protected or not idle long enough): trying again`
        : `${text}: terminating the idle-in-transaction session at the head of the chain`,
      'remediate_blockers',
    );
  }
  if (probe.longRunningQueries > 0) {
    const text = `${probe.longRunningQueries} query(ies) running longer than ${seconds(probe.longQueryThresholdSeconds)} (longest ${seconds(probe.longestQuerySeconds)}, pid ${probe.longestQueryPid ?? '?'})`;
    const cancelAfter = policy.cancelQueriesAfterSeconds;
    if (cancelAfter === null) return fault(`${text}: canceling queries is off for this target`);
    return probe.longestQuerySeconds >= cancelAfter
      ? fault(`${text}: canceling (policy: after ${seconds(cancelAfter)})`, 'cancel_queries')
      : fault(`${text}: will be canceled after ${seconds(cancelAfter)}`, 'wait');
  }
  const xid = `transaction id age ${probe.wraparoundAge.toLocaleString('en-US')} (${probe.wraparoundPct}% of the wraparound limit)`;
  if (probe.wraparoundPct >= WRAPAROUND_DANGER_PCT && probe.wraparoundAge >= target.thresholds.wraparoundAge)
    return fault(`${xid}: needs a DBA now (VACUUM FREEZE, long transactions, replication slots)`);

  // Warnings: worked on while the runbook has something to do, then left for people to look at.
  const worthALook: string[] = [];
  if (probe.longestIdleInTransactionSeconds >= target.thresholds.idleInTransactionSeconds) {
    const text = `a session has been idle in transaction for ${seconds(probe.longestIdleInTransactionSeconds)}`;
    if (probe.longestIdleInTransactionSeconds < policy.idleInTransactionAfterSeconds)
      return warning(
        `${text}: it will be terminated after ${seconds(policy.idleInTransactionAfterSeconds)}`,
        'wait',
      );
    if (!fruitless.includes('remediate_idle_in_transaction'))
      return warning(
        `${text}: terminating it (policy: after ${seconds(policy.idleInTransactionAfterSeconds)})`,
        'remediate_idle_in_transaction',
      );
    worthALook.push(`${text}; the policy allows terminating none of the sessions idle in transaction`);
  }
  if (probe.wraparoundAge >= target.thresholds.wraparoundAge)
    worthALook.push(`${xid}: plan a VACUUM FREEZE of the oldest tables`);
  if (worthALook.length > 0) return warning(worthALook.join('; '), 'healthy');

  const waiting =
    probe.blockedSessions > 0
      ? ` (${probe.blockedSessions} session(s) waiting on locks${lockWait === null ? '' : `, the longest for ${seconds(lockWait)}`}: under the ${seconds(lockThreshold)} threshold)`
      : '';
  return {
    result: 'ok',
    detail: `no hanging queries, lock chains or long idle transactions${waiting}`,
    decision: 'healthy',
  };
}
