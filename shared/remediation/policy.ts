/**
 * Remediation planning, pure: which listed sessions to terminate or cancel, and why every other
 * candidate is left alone. No I/O and no clock — the remediator (remediator.ts) feeds it the listing and
 * carries out the plan, so every guardrail is decided here and can be tested exhaustively.
 */
import type { RemediationPolicy } from '../target.ts';
import type { CandidateBounds, SessionInfo } from './sessions-sql.ts';

/** What a caller may ask the remediator to do. The names are part of the event and CLI contract. */
export const REMEDIATION_ACTIONS = ['idle', 'idle_in_transaction', 'blockers', 'cancel_queries'] as const;
export type RemediationAction = (typeof REMEDIATION_ACTIONS)[number];

/** Why a session was chosen. Part of the audit contract. */
export type ActionReason =
  | 'lock_chain_blocker'
  | 'idle_in_transaction'
  | 'idle'
  /** Idle past the escalated (pool-pressure) threshold but not past the normal one. */
  | 'idle_under_pressure'
  | 'long_query';

/** Sessions pgwarden never signals, in the order they are checked. Part of the audit contract. */
export const GUARDRAILS = [
  'not_client_backend',
  'rdsadmin',
  'superuser',
  'protected_user',
  'protected_application',
  'pgwarden_session',
] as const;
export type Guardrail = (typeof GUARDRAILS)[number];

/** Why a matching session was left alone by the plan. */
export type PlanSkipReason = Guardrail | 'cap_reached';

/**
 * Prefix of every application_name pgwarden connects with (probe, remediator, admin, ...). A client
 * chooses its own application_name, so the prefix alone proves nothing: a session is pgwarden's own
 * only when it also runs as the role pgwarden connects as (`PlanRequest.ownUser`).
 */
export const PGWARDEN_APPLICATION_PREFIX = 'pgwarden-';
/** The RDS-managed superuser that runs the service's own maintenance. */
export const RDS_ADMIN_USER = 'rdsadmin';

export interface PressureState {
  active: boolean;
  /** Why the pool counts as under pressure, for the audit. */
  reason?: string;
}

export interface PlanRequest {
  policy: RemediationPolicy;
  actions: readonly RemediationAction[];
  /** Whether the escalated idle threshold (policy.pressure.idleAfterSeconds) applies. */
  pressure: PressureState;
  /**
   * The role pgwarden is connected as. Its sessions named `pgwarden-…` are pgwarden's own and never
   * signalled; without it, no session counts as pgwarden's.
   */
  ownUser?: string;
}

export interface PlannedAction {
  session: SessionInfo;
  /** pg_terminate_backend or pg_cancel_backend. */
  action: 'terminate' | 'cancel';
  reason: ActionReason;
}

export interface Skip {
  session: SessionInfo;
  reason: PlanSkipReason;
  /** The rule the session matched, i.e. what would have been done without the guardrail or cap. */
  matched: ActionReason;
}

export interface Plan {
  /** In execution order: blockers, then idle in transaction, then idle (oldest first in each), then cancels. */
  act: PlannedAction[];
  /** Every session that matched a rule and was not acted on. */
  skipped: Skip[];
}

/** The thresholds a run applied; `null` where the rule was not requested or is switched off. */
export interface AppliedThresholds {
  idleAfterSeconds: number | null;
  /** The escalated idle threshold, set only when pool pressure was active. */
  pressureIdleAfterSeconds: number | null;
  idleInTransactionAfterSeconds: number | null;
  blockerIdleSeconds: number | null;
  cancelQueriesAfterSeconds: number | null;
  maxPerRun: number;
}

const IDLE_IN_TRANSACTION = new Set(['idle in transaction', 'idle in transaction (aborted)']);

/** Cap priority of each reason: lower goes first. Blockers free every waiter behind them. */
const RANK: Record<ActionReason, number> = {
  lock_chain_blocker: 0,
  idle_in_transaction: 1,
  idle: 2,
  idle_under_pressure: 2,
  long_query: 3,
};

/** Which rules a request switches on, with the policy switches applied. */
function enabled(policy: RemediationPolicy, actions: readonly RemediationAction[]) {
  const asked = new Set(actions);
  return {
    idle: asked.has('idle'),
    idleInTransaction: asked.has('idle_in_transaction'),
    blockers: asked.has('blockers') && policy.terminateBlockers,
    cancel: asked.has('cancel_queries') && policy.cancelQueriesAfterSeconds !== null,
  };
}

/** The thresholds `planRemediation` applies to `request`, for the audit. */
export function appliedThresholds(request: PlanRequest): AppliedThresholds {
  const { policy } = request;
  const on = enabled(policy, request.actions);
  return {
    idleAfterSeconds: on.idle ? policy.idleAfterSeconds : null,
    pressureIdleAfterSeconds: on.idle && request.pressure.active ? policy.pressure.idleAfterSeconds : null,
    idleInTransactionAfterSeconds: on.idleInTransaction ? policy.idleInTransactionAfterSeconds : null,
    blockerIdleSeconds: on.blockers ? policy.blockerIdleSeconds : null,
    cancelQueriesAfterSeconds: on.cancel ? policy.cancelQueriesAfterSeconds : null,
    maxPerRun: policy.maxPerRun,
  };
}

/**
 * Listing bounds for SESSIONS_SQL: loose enough that every session a rule could match is listed
 * whatever the pool pressure turns out to be (it is measured by the same statement), tight enough that
 * fresh sessions stay on the server.
 */
export function candidateBounds(
  policy: RemediationPolicy,
  actions: readonly RemediationAction[],
): CandidateBounds {
  const on = enabled(policy, actions);
  return {
    idleSeconds: on.idle ? Math.min(policy.idleAfterSeconds, policy.pressure.idleAfterSeconds) : null,
    idleInTransactionSeconds: on.idleInTransaction ? policy.idleInTransactionAfterSeconds : null,
    blockerIdleSeconds: on.blockers ? policy.blockerIdleSeconds : null,
    activeSeconds: on.cancel ? policy.cancelQueriesAfterSeconds : null,
  };
}

interface Match {
  action: PlannedAction['action'];
  reason: ActionReason;
  /** Age the cap orders by within a rank: longer first. */
  age: number;
}

/** The highest-priority rule `session` matches, if any. */
function matchRule(
  session: SessionInfo,
  request: PlanRequest,
  on: ReturnType<typeof enabled>,
): Match | undefined {
  const { policy } = request;
  const idle = session.idleSeconds;
  const state = session.state;
  if (state !== null && IDLE_IN_TRANSACTION.has(state) && idle !== null) {
    // A blocker is only ever an idle-in-transaction session: an active one is doing work and its
    // waiters will get the lock when it commits.
    if (on.blockers && session.lockChainHead && idle >= policy.blockerIdleSeconds)
      return { action: 'terminate', reason: 'lock_chain_blocker', age: idle };
    if (on.idleInTransaction && idle > policy.idleInTransactionAfterSeconds)
      return { action: 'terminate', reason: 'idle_in_transaction', age: idle };
    return undefined;
  }
  if (state === 'idle' && idle !== null && on.idle) {
    if (idle > policy.idleAfterSeconds) return { action: 'terminate', reason: 'idle', age: idle };
    if (request.pressure.active && idle > policy.pressure.idleAfterSeconds)
      return { action: 'terminate', reason: 'idle_under_pressure', age: idle };
    return undefined;
  }
  const cancelAfter = policy.cancelQueriesAfterSeconds;
  if (state === 'active' && on.cancel && cancelAfter !== null && session.querySeconds !== null) {
    if (session.querySeconds > cancelAfter)
      return { action: 'cancel', reason: 'long_query', age: session.querySeconds };
  }
  return undefined;
}

/**
 * The first guardrail that protects `session`, if any. Only the role (`usename`, which the server
 * sets at login) is proof of identity; `application_name` is whatever the client says.
 */
export function guardrailFor(
  session: SessionInfo,
  policy: RemediationPolicy,
  ownUser?: string,
): Guardrail | undefined {
  if (session.backendType !== 'client backend') return 'not_client_backend';
  if (session.user === RDS_ADMIN_USER) return 'rdsadmin';
  if (session.superuser) return 'superuser';
  if (session.user !== null && policy.protectUsers.includes(session.user)) return 'protected_user';
  if (policy.protectApplications.includes(session.application)) return 'protected_application';
  if (
    ownUser !== undefined &&
    session.user === ownUser &&
    session.application.startsWith(PGWARDEN_APPLICATION_PREFIX)
  )
    return 'pgwarden_session';
  return undefined;
}

/**
 * Decides what one run does. Each session is judged once, by the highest-priority rule it matches;
 * guardrails are checked before the cap, so a protected session never uses up a slot of `maxPerRun`.
 * Sessions that match no rule appear in neither list. `policy.dryRun` plays no part: a dry run reports
 * exactly the plan a real run would carry out.
 */
export function planRemediation(sessions: readonly SessionInfo[], request: PlanRequest): Plan {
  const on = enabled(request.policy, request.actions);
  const seen = new Set<number>();
  const matched: Array<{ session: SessionInfo; match: Match }> = [];
  for (const session of sessions) {
    if (seen.has(session.pid)) continue;
    seen.add(session.pid);
    const match = matchRule(session, request, on);
    if (match) matched.push({ session, match });
  }
  matched.sort(
    (a, b) =>
      RANK[a.match.reason] - RANK[b.match.reason] ||
      b.match.age - a.match.age ||
      a.session.pid - b.session.pid,
  );

  const act: PlannedAction[] = [];
  const skipped: Skip[] = [];
  for (const { session, match } of matched) {
    const guardrail = guardrailFor(session, request.policy, request.ownUser);
    if (guardrail) skipped.push({ session, reason: guardrail, matched: match.reason });
    else if (act.length >= request.policy.maxPerRun)
      skipped.push({ session, reason: 'cap_reached', matched: match.reason });
    else act.push({ session, action: match.action, reason: match.reason });
  }
  return { act, skipped };
}
