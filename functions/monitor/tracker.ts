/**
 * Per-target judgement across probes: debounce so one lost packet never opens an incident, fast
 * confirmation so a real outage is declared within seconds, and restart detection from the snapshot.
 * Pure: no I/O, time passed in.
 */
import { explainCategory } from '../../shared/classify.ts';
import { assess, type Finding, RECENT_RESTART_SECONDS } from '../../shared/health.ts';
import type { ProbeResult } from '../../shared/probe/probe.ts';
import type { Trigger } from '../../shared/runbook/types.ts';
import type { Thresholds } from '../../shared/target.ts';

/** `suspect` asks for a confirmation probe soon; `unhealthy` is a verdict that opens an incident. */
export type Status = 'healthy' | 'suspect' | 'unhealthy';

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
  breaches: number;
  firstBreachAt?: string;
  serverStartedAt?: string;
  backgroundStartedAt?: string | null;
  crashRestartAt?: string | null;
  /** Incident opened or joined most recently, and when. */
  incidentId?: string;
  incidentCheckedAt?: number;
}

export function newTrackerState(): TrackerState {
  return { failures: 0, breaches: 0 };
}

/** Records one probe result and returns the verdict so far. Mutates `state`. */
export function observe(state: TrackerState, result: ProbeResult, thresholds: Thresholds): Verdict {
  if (!result.ok) {
    state.failures += 1;
    state.firstFailureAt ??= result.checkedAt;
    state.breaches = 0;
    state.firstBreachAt = undefined;
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
      },
    };
  }

  state.failures = 0;
  state.firstFailureAt = undefined;
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
    const age = (Date.parse(result.checkedAt) - Date.parse(result.crashRestartAt)) / 1_000;
    newCrash = age <= RECENT_RESTART_SECONDS;
  }
  state.serverStartedAt = result.serverStartedAt;
  state.backgroundStartedAt = result.backgroundStartedAt;
  state.crashRestartAt = result.crashRestartAt;

  const assessment = assess(result, thresholds);
  const crashAt = result.crashRestartAt ?? (backgroundRestarted ? result.backgroundStartedAt : null);
  if (newCrash && crashAt) {
    // A crash-restart is a fact, not a flake: no debounce.
    const ago = Math.max(0, Math.round((Date.parse(result.checkedAt) - Date.parse(crashAt)) / 1_000));
    return {
      status: 'unhealthy',
      findings: assessment.findings,
      restarts,
      trigger: {
        kind: 'probe',
        summary: `the server crash-restarted ${ago}s ago (${crashAt}): every session was reset`,
        observedAt: crashAt,
        findings: ['crash_restart'],
      },
    };
  }
  const actionable = assessment.findings.filter((f) => f.code !== 'crash_restart');
  if (actionable.length === 0) {
    state.breaches = 0;
    state.firstBreachAt = undefined;
    return { status: 'healthy', findings: assessment.findings, restarts };
  }
  state.breaches += 1;
  state.firstBreachAt ??= result.checkedAt;
  if (state.breaches < thresholds.breachesBeforeIncident)
    return { status: 'suspect', findings: assessment.findings, restarts };
  return {
    status: 'unhealthy',
    findings: assessment.findings,
    restarts,
    trigger: {
      kind: 'probe',
      summary: actionable.map((f) => f.message).join('; '),
      observedAt: state.firstBreachAt,
      findings: actionable.map((f) => f.code),
    },
  };
}
