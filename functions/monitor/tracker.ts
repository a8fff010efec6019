/**
 * Per-target judgement across probes: debounce so one lost packet never opens an incident, fast
 * confirmation so a real outage is declared within seconds, restart detection from the snapshot, and
 * the memory a single probe lacks (recurring crash-restarts, lock waits on servers that cannot date
 * them). What opens an incident, and at which severity, is the severity table's (shared/health.ts).
 * Pure: no I/O, time passed in.
 */
import { explainCategory } from '../../shared/classify.ts';
import { assess, type Condition, type Finding, RECENT_RESTART_SECONDS, ruleOf } from '../../shared/health.ts';
import { judgeLockWaits, type LockWaitMemory } from '../../shared/lock-waits.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import type { Trigger } from '../../shared/runbook/types.ts';
import type { Thresholds } from '../../shared/target.ts';

/**
 * `suspect` asks for a confirmation probe soon; `unhealthy` is a verdict that opens an incident;
 * `degraded` means warnings that open none (metrics and alarms tell people).
 */
export type Status = 'healthy' | 'degraded' | 'suspect' | 'unhealthy';

export interface Verdict {
  status: Status;
  findings: Finding[];
  /** Restarts seen in this observation (for the ServerRestarts metric). */
  restarts: number;
  /** Present when status is unhealthy. */
  trigger?: Trigger;
}

export interface TrackerState {
  failures: number;
  firstFailureAt?: string;
  /** Consecutive observations of each condition that opens an incident, and when each run began. */
  streaks: Partial<Record<Condition, { count: number; since: string }>>;
  serverStartedAt?: string;
  backgroundStartedAt?: string | null;
  crashRestartAt?: string | null;
  /** Crash-restarts seen within the last RECENT_RESTART_SECONDS (ISO, oldest first). */
  crashes: string[];
  /** Servers before PostgreSQL 14: when each current lock wait was first seen. */
  lockWaits: LockWaitMemory;
  /** Incident opened or joined most recently, and when. */
  incidentId?: string;
  incidentCheckedAt?: number;
}

export function newTrackerState(): TrackerState {
  return { failures: 0, streaks: {}, crashes: [], lockWaits: {} };
}

/** Records one probe result and returns the verdict so far. Mutates `state`. */
export function observe(state: TrackerState, result: ProbeResult, thresholds: Thresholds): Verdict {
  if (!result.ok) {
    state.failures += 1;
    state.firstFailureAt ??= result.checkedAt;
    state.streaks = {};
    const assessment = assess(result, thresholds);
    if (state.failures < thresholds.failuresBeforeOutage)
      return { status: 'suspect', findings: assessment.findings, restarts: 0 };
    const { category, message } = result.failure;
    return {
      status: 'unhealthy',
      findings: assessment.findings,
      restarts: 0,
      trigger: {
        kind: 'probe',
        summary: `${state.failures} consecutive probes failed: ${category} (${explainCategory(category)}): ${message}`,
        observedAt: state.firstFailureAt,
        category,
        severity: 'critical',
        ...(state.serverStartedAt
          ? {
              startedBefore: {
                serverStartedAt: state.serverStartedAt,
                backgroundStartedAt: state.backgroundStartedAt ?? null,
              },
            }
          : {}),
      },
    };
  }

  state.failures = 0;
  state.firstFailureAt = undefined;
  const now = Date.parse(result.checkedAt);
  let restarts = 0;
  let newCrash = false;
  const postmasterRestarted =
    state.serverStartedAt !== undefined && state.serverStartedAt !== result.serverStartedAt;
  if (postmasterRestarted) restarts += 1;
  // Background processes that restarted under the same postmaster mean a crash-restart, however soon
  // after the server's own start it happened.
  const backgroundRestarted =
    !postmasterRestarted &&
    typeof state.backgroundStartedAt === 'string' &&
    result.backgroundStartedAt !== null &&
    state.backgroundStartedAt !== result.backgroundStartedAt;
  if (backgroundRestarted) {
    restarts += 1;
    newCrash = true;
  }
  if (state.crashRestartAt === undefined && result.crashRestartAt) {
    // First sight of this target (cold start): a crash is news only if it is recent.
    const age = (now - Date.parse(result.crashRestartAt)) / 1_000;
    newCrash = age <= RECENT_RESTART_SECONDS;
  }
  state.serverStartedAt = result.serverStartedAt;
  state.backgroundStartedAt = result.backgroundStartedAt;
  state.crashRestartAt = result.crashRestartAt;
  const crashAt = result.crashRestartAt ?? (backgroundRestarted ? result.backgroundStartedAt : null);
  state.crashes = state.crashes.filter((at) => now - Date.parse(at) <= RECENT_RESTART_SECONDS * 1_000);
  if (newCrash && crashAt && !state.crashes.includes(crashAt)) state.crashes.push(crashAt);

  const locks = judgeLockWaits(state.lockWaits, result);
  state.lockWaits = locks.memory;
  const assessment = assess(result, thresholds, {
    recentCrashRestarts: Math.max(1, state.crashes.length),
    lockWaitSeconds: locks.longestSeconds,
  });

  if (newCrash && crashAt) {
    // A crash-restart is a fact, not a flake: no debounce.
    const ago = Math.max(0, Math.round((now - Date.parse(crashAt)) / 1_000));
    const recurring = state.crashes.length >= 2;
    return {
      status: 'unhealthy',
      findings: assessment.findings,
      restarts,
      trigger: {
        kind: 'probe',
        summary: recurring
          ? `the server crash-restarted again ${ago}s ago (${crashAt}), ${state.crashes.length} times in 15m: every session was reset each time`
          : `the server crash-restarted ${ago}s ago (${crashAt}): every session was reset`,
        observedAt: crashAt,
        findings: ['crash_restart'],
        severity: recurring ? 'critical' : 'warning',
        crashRestarts: [...state.crashes],
      },
    };
  }

  // A crash-restart opens its incident when first seen (above), never again from its finding.
  const opening = assessment.findings.filter((f) => ruleOf(f).incident && f.code !== 'crash_restart');
  const present = new Set<Condition>(opening.map((f) => f.condition));
  for (const condition of Object.keys(state.streaks) as Condition[])
    if (!present.has(condition)) delete state.streaks[condition];
  for (const f of opening) {
    const streak = state.streaks[f.condition] ?? { count: 0, since: result.checkedAt };
    streak.count += 1;
    state.streaks[f.condition] = streak;
  }
  if (opening.length === 0) {
    const quiet = assessment.findings.every((f) => f.code === 'crash_restart');
    return { status: quiet ? 'healthy' : 'degraded', findings: assessment.findings, restarts };
  }
  const confirmed = opening.filter(
    (f) => (state.streaks[f.condition]?.count ?? 0) >= thresholds.breachesBeforeIncident,
  );
  if (confirmed.length === 0) return { status: 'suspect', findings: assessment.findings, restarts };
  // Dated from when the newest of these conditions began: an incident that ended while an older one
  // went on must not make a new condition look stale (shared/incidents.ts refuses stale triggers).
  const since = confirmed
    .map((f) => state.streaks[f.condition]?.since ?? result.checkedAt)
    .sort()
    .at(-1) as string;
  const datesLockWaits =
    result.longestLockWaitSeconds === null && confirmed.some((f) => f.condition === 'lock_chain');
  return {
    status: 'unhealthy',
    findings: assessment.findings,
    restarts,
    trigger: {
      kind: 'probe',
      summary: confirmed.map((f) => f.message).join('; '),
      observedAt: since,
      findings: [...new Set(confirmed.map((f) => f.code))],
      severity: confirmed.some((f) => f.severity === 'critical') ? 'critical' : 'warning',
      ...(datesLockWaits ? { lockWaitsSeen: { ...state.lockWaits } } : {}),
    },
  };
}
