/**
 * The remediator: one session, one listing statement, a pure plan, then one guarded signal per planned
 * action. Every action and every skip is logged and returned as an audit record. A database fault is a
 * classified result, never a thrown error, and the audit recorded up to the fault is kept.
 */
import { classifyError, type Failure } from '../classify.ts';
import { type Clock, systemClock } from '../clock.ts';
import type { ConnectionSpec } from '../connection.ts';
import { type CredentialDeps, forgetCredentials, resolveCredentials } from '../credentials.ts';
import { type DbSession, openSession, SYSTEM_SEARCH_PATH } from '../db.ts';
import { CredentialsError, describeError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redact } from '../redact.ts';
import type { RemediationPolicy } from '../target.ts';
import {
  type ActionReason,
  type AppliedThresholds,
  appliedThresholds,
  candidateBounds,
  type PlannedAction,
  type PlanSkipReason,
  type PressureState,
  planRemediation,
  type RemediationAction,
} from './policy.ts';
import {
  CANCEL_SQL,
  SESSIONS_SQL,
  type SessionInfo,
  type SessionsRow,
  type SignalRow,
  sessionsParams,
  TERMINATE_SQL,
} from './sessions-sql.ts';

/** The application_name the remediator connects with; the `pgwarden-` prefix keeps other runs off it. */
export const REMEDIATOR_APPLICATION = 'pgwarden-remediate';
/** What stands in for query text unless the caller asked for it (it can hold personal data or secrets). */
export const REDACTED_QUERY = '[redacted]';
/**
 * Skip records returned in a result by default; the rest are counted (and logged). Keeps a run that
 * meets a leaking pool of thousands of sessions under the Step Functions payload limit (256 KB).
 */
export const MAX_SKIP_RECORDS = 200;

/**
 * A remediation session's timeouts unless told otherwise: the remediate function's defaults
 * (functions/remediate/settings.ts). Statements get longer than a probe's: they signal many backends.
 */
export const REMEDIATION_TIMEOUTS = { connectTimeoutMs: 3_000, statementTimeoutMs: 5_000 } as const;

export interface RemediateRequest {
  /** Target id, carried into the audit and the logs. */
  targetId: string;
  policy: RemediationPolicy;
  /** The rules to apply this run. */
  actions: readonly RemediationAction[];
  /** Turns dry-run on for this run. It cannot turn it off: `policy.dryRun: true` always wins. */
  dryRun?: boolean;
  /** Pool pressure the caller saw (e.g. the monitor got 53300); the remediator also measures it. */
  pressure?: PressureState;
  /**
   * The caller's pressure counts only while the remediator itself measures at least this utilization
   * (the functions pass the target's alert threshold): it keeps the escalated policy on while a pool
   * drains, and cannot switch it on for a pool that is fine. @default 0 (the caller is believed)
   */
  claimedPressureFloorPct?: number;
  /** Put the first 200 characters of each statement in the audit. @default false */
  includeQueryText?: boolean;
  /** The runbook execution this run belongs to. */
  incidentId?: string;
  /** Skip records to return; the rest are only counted and logged. @default MAX_SKIP_RECORDS */
  maxSkipRecords?: number;
  /** @default REMEDIATION_TIMEOUTS.connectTimeoutMs */
  connectTimeoutMs?: number;
  /** @default REMEDIATION_TIMEOUTS.statementTimeoutMs */
  statementTimeoutMs?: number;
}

export interface RemediateDeps extends Omit<CredentialDeps, 'clock'> {
  logger: Logger;
  clock?: Clock;
}

/** One session acted on (or, in a dry run, that would have been). */
export interface AuditRecord {
  pid: number;
  user: string | null;
  application: string;
  clientAddr: string | null;
  state: string | null;
  /** Seconds since the session's last state change. */
  idleSeconds: number | null;
  /** Seconds since its transaction began; null outside a transaction. */
  transactionSeconds: number | null;
  /** Seconds since its current or last statement began. */
  querySeconds: number | null;
  action: 'terminate' | 'cancel';
  reason: ActionReason;
  /** `terminated` / `canceled`: the server accepted the signal. `would_*`: dry run, nothing sent. */
  outcome: 'terminated' | 'canceled' | 'would_terminate' | 'would_cancel';
  /** First 200 characters of the statement, or `[redacted]`. */
  query: string;
}

/** Why a session that matched a rule was not signalled. Part of the audit contract. */
export type SkipReason =
  | PlanSkipReason
  /** It ran a statement, changed state or disconnected between the listing and the signal. */
  | 'state_changed'
  /** The server refused or could not deliver the signal (e.g. the role lacks pg_signal_backend). */
  | 'signal_failed'
  /** The invocation's deadline arrived before this action's turn. */
  | 'deadline_reached';

export interface SkipRecord {
  pid: number;
  reason: SkipReason;
  user: string | null;
  application: string;
  state: string | null;
  /** The rule the session matched. */
  matched: ActionReason;
  /** The server's message, for `signal_failed`. */
  detail?: string;
}

interface RemediationAudit {
  targetId: string;
  incidentId?: string;
  dryRun: boolean;
  terminated: AuditRecord[];
  canceled: AuditRecord[];
  /** The first `maxSkipRecords` skips, in plan order. */
  skipped: SkipRecord[];
  /** Every skip, by reason, including those not listed. */
  skipCounts: Partial<Record<SkipReason, number>>;
  /** Skips counted but not listed in `skipped`. */
  skippedOmitted: number;
  startedAt: string;
  durationMs: number;
}

export interface RemediationSuccess extends RemediationAudit {
  ok: true;
  pressure: PressureState;
  /** Client backends (the remediator's own excluded) as a share of the slots applications can use. */
  utilizationPct: number;
  thresholds: AppliedThresholds;
  /** The remediator's own backend pid, never a candidate. */
  remediatorPid: number;
}

export interface RemediationFailure extends RemediationAudit {
  ok: false;
  failure: Failure;
}

export type RemediationResult = RemediationSuccess | RemediationFailure;

const round = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);

/** Sessions actually signalled (dry-run records excluded): the SessionsTerminated metric. */
export function sessionsSignalled(result: RemediationResult): number {
  const real = (r: AuditRecord) => r.outcome === 'terminated' || r.outcome === 'canceled';
  return result.terminated.filter(real).length + result.canceled.filter(real).length;
}

/** Collects the audit and logs each entry as it is recorded, so a crash mid-run still leaves a trail. */
class Recorder {
  readonly terminated: AuditRecord[] = [];
  readonly canceled: AuditRecord[] = [];
  readonly skipped: SkipRecord[] = [];
  readonly skipCounts: Partial<Record<SkipReason, number>> = {};
  skippedOmitted = 0;
  private readonly request: RemediateRequest;
  private readonly logger: Logger;
  private readonly context: Record<string, unknown>;

  constructor(request: RemediateRequest, logger: Logger, dryRun: boolean) {
    this.request = request;
    this.logger = logger;
    this.context = {
      targetId: request.targetId,
      ...(request.incidentId ? { incidentId: request.incidentId } : {}),
      dryRun,
    };
  }

  action(planned: PlannedAction, outcome: AuditRecord['outcome']): void {
    const s = planned.session;
    const text = this.request.includeQueryText ? redact(s.query ?? '') : REDACTED_QUERY;
    const record: AuditRecord = {
      pid: s.pid,
      user: s.user,
      application: s.application,
      clientAddr: s.clientAddr,
      state: s.state,
      idleSeconds: round(s.idleSeconds),
      transactionSeconds: round(s.transactionSeconds),
      querySeconds: round(s.querySeconds),
      action: planned.action,
      reason: planned.reason,
      outcome,
      query: text,
    };
    (planned.action === 'terminate' ? this.terminated : this.canceled).push(record);
    const { query, ...logged } = record;
    this.logger.info('remediation action', {
      ...this.context,
      ...logged,
      ...(this.request.includeQueryText ? { query } : {}),
    });
  }

  skip(session: SessionInfo, reason: SkipReason, matched: ActionReason, detail?: string): void {
    const record: SkipRecord = {
      pid: session.pid,
      reason,
      user: session.user,
      application: session.application,
      state: session.state,
      matched,
      ...(detail ? { detail } : {}),
    };
    this.skipCounts[reason] = (this.skipCounts[reason] ?? 0) + 1;
    if (this.skipped.length < (this.request.maxSkipRecords ?? MAX_SKIP_RECORDS)) this.skipped.push(record);
    else this.skippedOmitted++;
    this.logger.info('remediation skip', {
      ...this.context,
      ...record,
      backendType: session.backendType,
      idleSeconds: round(session.idleSeconds),
    });
  }
}

/** Formats a percentage for the pressure reason: at most one decimal. */
const pct = (n: number) => `${Math.round(n * 10) / 10}%`;

/**
 * Runs one remediation pass against `spec`: lists candidate sessions, measures pool pressure, plans
 * with `planRemediation`, and — unless dry-run — signals each planned session only if it is still in
 * the state it was judged in. Never throws for a database or credential fault; the session it opens is
 * always closed.
 */
export async function remediate(
  spec: ConnectionSpec,
  request: RemediateRequest,
  deps: RemediateDeps,
): Promise<RemediationResult> {
  const clock = deps.clock ?? systemClock;
  const { logger } = deps;
  const { policy } = request;
  const startedAt = new Date(clock.now()).toISOString();
  const started = performance.now();
  const dryRun = policy.dryRun || request.dryRun === true;
  const recorder = new Recorder(request, logger, dryRun);

  const audit = (): RemediationAudit => ({
    targetId: request.targetId,
    ...(request.incidentId ? { incidentId: request.incidentId } : {}),
    dryRun,
    terminated: recorder.terminated,
    canceled: recorder.canceled,
    skipped: recorder.skipped,
    skipCounts: recorder.skipCounts,
    skippedOmitted: recorder.skippedOmitted,
    startedAt,
    durationMs: Math.round(performance.now() - started),
  });
  const fail = (failure: Failure): RemediationFailure => {
    logger.warn('remediation failed', {
      targetId: request.targetId,
      ...(request.incidentId ? { incidentId: request.incidentId } : {}),
      category: failure.category,
      phase: failure.phase,
      error: failure.message,
    });
    return { ok: false, ...audit(), failure };
  };

  let credentials: Awaited<ReturnType<typeof resolveCredentials>>;
  try {
    credentials = await resolveCredentials(spec, { ...deps, clock });
  } catch (error) {
    return fail({
      category: 'auth_failed',
      message: redact(describeError(error)),
      retryable: error instanceof CredentialsError,
      phase: 'connect',
    });
  }

  let session: DbSession;
  try {
    session = await openSession(spec, credentials, {
      connectTimeoutMs: request.connectTimeoutMs ?? REMEDIATION_TIMEOUTS.connectTimeoutMs,
      statementTimeoutMs: request.statementTimeoutMs ?? REMEDIATION_TIMEOUTS.statementTimeoutMs,
      applicationName: REMEDIATOR_APPLICATION,
      searchPath: SYSTEM_SEARCH_PATH,
      logger,
    });
  } catch (error) {
    const failure = classifyError(error, 'connect');
    if (failure.category === 'auth_failed') forgetCredentials(spec);
    return fail(failure);
  }

  try {
    let listing: SessionsRow;
    try {
      const { rows } = await session.query<SessionsRow>(
        'remediation-sessions',
        SESSIONS_SQL,
        sessionsParams(candidateBounds(policy, request.actions), request.includeQueryText === true),
      );
      const row = rows[0];
      if (!row) throw new Error('the session listing returned no row');
      listing = row;
    } catch (error) {
      return fail(classifyError(error, 'query'));
    }

    const reserved = listing.superuser_reserved + listing.reserved + listing.rds_reserved;
    const usable = Math.max(1, listing.max_connections - reserved);
    const utilizationPct = Math.round((listing.client_backends / usable) * 1_000) / 10;
    const reasons: string[] = [];
    const floor = request.claimedPressureFloorPct ?? 0;
    if (request.pressure?.active) {
      const claim = request.pressure.reason ?? 'reported by the caller';
      if (utilizationPct >= floor) reasons.push(claim);
      else
        logger.warn('pool pressure reported by the caller not seen; normal policy applies', {
          targetId: request.targetId,
          claim,
          utilizationPct,
          floorPct: floor,
        });
    }
    if (utilizationPct >= policy.pressure.utilizationPct) {
      const own = `utilization ${pct(utilizationPct)} ≥ ${pct(policy.pressure.utilizationPct)}`;
      // The caller (the runbook) may report the very same measurement; say it once.
      if (!reasons.includes(own)) reasons.push(own);
    }
    const pressure: PressureState =
      reasons.length > 0 ? { active: true, reason: reasons.join('; ') } : { active: false };

    const planRequest = { policy, actions: request.actions, pressure, ownUser: listing.own_user };
    // Defence in depth: the listing already excludes the caller's backend.
    const candidates = listing.sessions.filter((s) => s.pid !== session.pid);
    const plan = planRemediation(candidates, planRequest);
    for (const skip of plan.skipped) recorder.skip(skip.session, skip.reason, skip.matched);

    for (const [index, planned] of plan.act.entries()) {
      if (deps.signal?.aborted) {
        for (const rest of plan.act.slice(index))
          recorder.skip(rest.session, 'deadline_reached', rest.reason);
        break;
      }
      if (dryRun) {
        recorder.action(planned, planned.action === 'terminate' ? 'would_terminate' : 'would_cancel');
        continue;
      }
      const s = planned.session;
      let rows: SignalRow[];
      try {
        ({ rows } = await session.query<SignalRow>(
          planned.action === 'terminate' ? 'remediation-terminate' : 'remediation-cancel',
          planned.action === 'terminate' ? TERMINATE_SQL : CANCEL_SQL,
          [s.pid, s.state, s.stateChange],
        ));
      } catch (error) {
        // 42501: this role may not signal that backend. It concerns one session, not the run.
        if ((error as { code?: unknown }).code === '42501') {
          recorder.skip(s, 'signal_failed', planned.reason, redact(describeError(error)));
          continue;
        }
        return fail(classifyError(error, 'query'));
      }
      const row = rows[0];
      if (!row) recorder.skip(s, 'state_changed', planned.reason);
      else if (!row.signalled)
        recorder.skip(s, 'signal_failed', planned.reason, 'the server could not signal the backend');
      else recorder.action(planned, planned.action === 'terminate' ? 'terminated' : 'canceled');
    }

    const result: RemediationSuccess = {
      ok: true,
      ...audit(),
      pressure,
      utilizationPct,
      thresholds: appliedThresholds(planRequest),
      remediatorPid: session.pid,
    };
    logger.info('remediation finished', {
      targetId: request.targetId,
      ...(request.incidentId ? { incidentId: request.incidentId } : {}),
      dryRun,
      pressure: pressure.active,
      utilizationPct,
      terminated: result.terminated.length,
      canceled: result.canceled.length,
      skipped: result.skipCounts,
      durationMs: result.durationMs,
    });
    return result;
  } finally {
    await session.close();
  }
}
