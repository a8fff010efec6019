/**
 * The runbook function: every Task of the incident workflow that is not SQL. It keeps the incident
 * record, judges each node of the decision tree, keeps the clock (escalation, verify cadence, maximum
 * duration) from its own injectable clock, gathers evidence, and composes the notices and the page
 * into the record's outbox, which the state machine publishes (see shared/runbook/definition.ts).
 */
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import {
  FailoverDBClusterCommand,
  type RDSClient,
  RebootDBInstanceCommand,
  StartDBClusterCommand,
  StartDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { bindTarget, narrowPolicy, type TargetCatalog } from '../../shared/binding.ts';
import type { Clock } from '../../shared/clock.ts';
import { formatDuration } from '../../shared/duration.ts';
import { describeError, ValidationError } from '../../shared/errors.ts';
import { continuationName } from '../../shared/incident-names.ts';
import { judgeLockWaits } from '../../shared/lock-waits.ts';
import type { Logger } from '../../shared/logger.ts';
import { printable } from '../../shared/printable.ts';
import type { IntegrityResult } from '../../shared/probe/integrity.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import type { RemediationResult } from '../../shared/remediation/remediator.ts';
import { type OutboxSlot, RUNBOOK_NODES, type RunbookNode } from '../../shared/runbook/definition.ts';
import { RUNBOOK_HISTORY } from '../../shared/runbook/history.ts';
import {
  addAction,
  addFound,
  addTimeline,
  type Decision,
  type IncidentRecord,
  type InstanceStatus,
  LIMITS,
  type RecoveryKind,
} from '../../shared/runbook/record.ts';
import {
  DEFAULT_RUNBOOK_SETTINGS,
  type RunbookInput,
  type RunbookSettings,
  TRIGGER_KINDS,
} from '../../shared/runbook/types.ts';
import {
  DEFAULT_REMEDIATION,
  DEFAULT_THRESHOLDS,
  type Target,
  targetSchema,
  toTargetFromPayload,
} from '../../shared/target.ts';
import {
  number,
  object,
  oneOf,
  optional,
  parse,
  passthrough,
  safeParse,
  string,
} from '../../shared/validate.ts';
import { describeStatus, gatherEvidence } from './evidence.ts';
import {
  failedNotice,
  finalNotice,
  type Notice,
  openedNotice,
  pageNotice,
  publishInput,
  recoveryNotice,
  resolvedNotice,
} from './messages.ts';
import { evaluateNode } from './nodes.ts';
import { notAccepting, RECOVERY_WORDS, recoveryFor } from './recovery.ts';

export const RUNBOOK_ACTIONS = [
  'open',
  'node',
  'evaluate',
  'record',
  'start_instance',
  'evidence',
  'page',
  'resolve',
  'final',
  'failed',
  'continue',
  'announce',
  'recover',
] as const;
export type RunbookAction = (typeof RUNBOOK_ACTIONS)[number];

interface TaskError {
  Error?: string;
  Cause?: string;
}

/** The workflow's state as each runbook Task receives it (`$`). */
export interface WorkflowState extends RunbookInput {
  incident?: IncidentRecord;
  probe?: ProbeResult;
  remediation?: RemediationResult | TaskError;
  integrity?: IntegrityResult | TaskError;
  error?: TaskError;
}

const requestSchema = object({
  action: oneOf(RUNBOOK_ACTIONS),
  node: optional(oneOf(RUNBOOK_NODES)),
  executionArn: optional(string()),
  stateMachineArn: optional(
    string({ pattern: /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/ }),
  ),
  state: object(
    {
      incidentId: string({ pattern: /^[A-Za-z0-9_-]{1,80}$/, patternHint: 'an execution name' }),
      requestId: optional(string()),
      target: targetSchema,
      trigger: object(
        {
          kind: oneOf(TRIGGER_KINDS),
          summary: string({ maxLength: 2_000 }),
          observedAt: string(),
        },
        { strict: false },
      ),
      settings: object(
        {
          escalateAfterSeconds: number({ min: 0 }),
          recheckSeconds: number({ min: 1 }),
          maxDurationSeconds: number({ min: 1 }),
          dashboardUrl: optional(string()),
          consoleUrl: optional(string()),
        },
        { strict: false },
      ),
      incident: optional(passthrough<IncidentRecord>()),
      probe: optional(passthrough<ProbeResult>()),
      remediation: optional(passthrough<RemediationResult | TaskError>()),
      integrity: optional(passthrough<IntegrityResult | TaskError>()),
      error: optional(passthrough<TaskError>()),
    },
    { strict: false },
  ),
});

export interface RunbookDeps {
  /**
   * The deployed fleet. The execution's input names the target; its thresholds and policy come from
   * here (the input's policy can only narrow them), whoever started the execution.
   */
  catalog: TargetCatalog;
  /** The configured clock and links; when set, the execution input's settings are not used. */
  settings?: RunbookSettings;
  /** Starts the execution that continues a long incident. */
  sfn: Pick<SFNClient, 'send'>;
  rds: Pick<RDSClient, 'send'>;
  cloudwatch: Pick<CloudWatchClient, 'send'>;
  topics: { pages: string; notifications: string };
  clock: Clock;
  logger: Logger;
  signal?: AbortSignal;
}

/** After acting on sessions, or while the pool is exhausted, look again this soon (seconds). */
const SETTLE_SECONDS = 10;

const iso = (ms: number) => new Date(ms).toISOString();

/** Validates a task invocation and runs the action; returns the updated incident record. */
export async function runRunbook(event: unknown, deps: RunbookDeps): Promise<IncidentRecord> {
  // The last resort must not depend on the state being well-formed: whatever broke, somebody is told.
  if ((event as { action?: unknown } | null)?.action === 'failed') return failedLeniently(event, deps);
  const request = parse(requestSchema, event, 'runbook task', ValidationError);
  const state = request.state as unknown as WorkflowState;
  const target = boundTarget(deps.catalog, toTargetFromPayload(request.state.target));
  const input: RunbookInput = {
    ...state,
    target,
    // Whoever started the execution wrote the summary; it is quoted in notices and pages as one line.
    trigger: { ...state.trigger, summary: printable(state.trigger.summary, { maxLength: 500 }) },
    settings: deps.settings ?? state.settings,
  };
  const now = deps.clock.now();
  const { action } = request;
  if (action !== 'open' && action !== 'failed' && !state.incident) {
    throw new ValidationError('runbook task', [
      {
        path: 'state.incident',
        received: 'nothing',
        problem: `is required for "${action}"`,
        fix: 'Run "open" first.',
      },
    ]);
  }
  const record = state.incident ? structuredClone(state.incident) : undefined;
  // What the previous task composed has been published (or failed with it) by now.
  if (record) delete record.outbox;
  const ctx: Context = { input, target, now, deps, executionArn: request.executionArn };

  switch (action) {
    case 'open':
      return record ? resume(ctx, record) : open(ctx);
    case 'continue':
      return handOver(
        ctx,
        record as IncidentRecord,
        (event as { state: WorkflowState }).state,
        request.stateMachineArn,
      );
    case 'node': {
      if (!request.node) {
        throw new ValidationError('runbook task', [
          {
            path: 'node',
            received: 'nothing',
            problem: 'is required for "node"',
            fix: `Use one of ${RUNBOOK_NODES.join(', ')}.`,
          },
        ]);
      }
      return node(ctx, record as IncidentRecord, request.node, state.probe);
    }
    case 'evaluate':
      return schedule(ctx, record as IncidentRecord, input.settings.recheckSeconds);
    case 'record':
      return recordRemediation(ctx, record as IncidentRecord, state.remediation);
    case 'start_instance':
      return startInstance(ctx, record as IncidentRecord);
    case 'announce':
      return announceRecovery(ctx, record as IncidentRecord, state.probe);
    case 'recover':
      return recover(ctx, record as IncidentRecord);
    case 'evidence': {
      const r = record as IncidentRecord;
      r.evidence = await gatherEvidence(target, { ...deps }, now);
      return r;
    }
    case 'page':
      return page(ctx, record as IncidentRecord);
    case 'resolve':
      return resolve(ctx, record as IncidentRecord, state.integrity);
    case 'final':
      return final(ctx, record as IncidentRecord);
    case 'failed':
      return failed(ctx, record, state.error ?? {});
  }
}

/**
 * The target as configured (or, for a discovered one, as `fleet.defaults` has it), with the input's
 * policy allowed only to narrow the configured one.
 */
function boundTarget(catalog: TargetCatalog, requested: Target): Target {
  const { target } = bindTarget(
    catalog,
    {
      targetId: requested.id,
      connection: requested.connection,
      ...(requested.rds ? { rds: requested.rds } : {}),
    },
    'runbook task',
  );
  return { ...target, remediation: narrowPolicy(target.remediation, requested.remediation) };
}

interface Context {
  input: RunbookInput;
  target: Target;
  now: number;
  deps: RunbookDeps;
  executionArn: string | undefined;
}

/** Puts a message in the record's outbox, for the state machine's publishing state of that slot. */
function compose(ctx: Context, record: IncidentRecord, slot: OutboxSlot, notice: Notice): void {
  record.outbox = { ...record.outbox, [slot]: publishInput(ctx.deps.topics[notice.topic], notice) };
  ctx.deps.logger.info('notice composed', {
    incidentId: ctx.input.incidentId,
    kind: notice.kind,
    topic: notice.topic,
    subject: notice.subject,
  });
}

function open(ctx: Context): IncidentRecord {
  const { input, now } = ctx;
  const record: IncidentRecord = {
    incidentId: input.incidentId,
    targetId: input.target.id,
    status: 'open',
    openedAt: iso(now),
    escalateAt: iso(now + input.settings.escalateAfterSeconds * 1_000),
    endAt: iso(now + input.settings.maxDurationSeconds * 1_000),
    cycle: 0,
    steps: [],
    found: [],
    actions: [],
    timeline: [],
    decision: 'continue',
    pressure: { active: false },
    waitSeconds: 0,
    paged: false,
  };
  const { trigger } = input;
  const crashes =
    trigger.crashRestarts ?? (trigger.findings?.includes('crash_restart') ? [trigger.observedAt] : []);
  if (crashes.length > 0) record.crashRestarts = [...crashes];
  if (trigger.lockWaitsSeen) record.lockWaits = { ...trigger.lockWaitsSeen };
  addTimeline(record, record.openedAt, `opened by ${input.trigger.kind}: ${input.trigger.summary}`);
  compose(ctx, record, 'opened', openedNotice(input, record, ctx.executionArn));
  return record;
}

async function node(
  ctx: Context,
  record: IncidentRecord,
  name: RunbookNode,
  probe: ProbeResult | undefined,
): Promise<IncidentRecord> {
  const { target, now, deps } = ctx;
  if (!probe || typeof probe.ok !== 'boolean') {
    throw new ValidationError('runbook task', [
      {
        path: 'state.probe',
        received: 'nothing',
        problem: 'is required to judge a node',
        fix: 'Run ProbeDatabase first.',
      },
    ]);
  }
  let instance: InstanceStatus | undefined;
  let instanceError: string | undefined;
  if (name === 'running') {
    record.cycle += 1;
    record.steps = [];
    record.pressure = { active: false };
    observeCycle(ctx, record, probe);
    try {
      instance = await describeStatus(target, deps);
    } catch (error) {
      instanceError = describeError(error);
    }
    if (instance) record.instance = instance;
    else delete record.instance;
  }
  let notAcceptingSeconds: number | undefined;
  if (name === 'accepting_connections') {
    instance = record.instance;
    if (notAccepting(probe, instance)) {
      record.notAcceptingSince ??= iso(now);
      notAcceptingSeconds = (now - Date.parse(record.notAcceptingSince)) / 1_000;
    } else delete record.notAcceptingSince;
  }
  const outcome = evaluateNode(name, {
    target,
    probe,
    instance,
    instanceError,
    startRequested: Boolean(record.startRequestedAt),
    pressureEngaged: Boolean(record.pressureEngagedAt),
    ...(notAcceptingSeconds !== undefined ? { notAcceptingSeconds } : {}),
    ...(record.recovery ? { recovery: record.recovery } : {}),
    crashRestarts: record.crashRestarts ?? [],
    ...(record.lockWaitSeconds !== undefined ? { lockWaitSeconds: record.lockWaitSeconds } : {}),
    fruitless: record.fruitless ?? [],
  });
  record.steps.push({
    node: name,
    result: outcome.result,
    detail: outcome.detail,
    at: iso(now),
    ...(outcome.result === 'fault' || outcome.result === 'waiting'
      ? { severity: outcome.severity ?? 'critical' }
      : {}),
  });
  record.decision = outcome.decision;
  if (outcome.pressure) record.pressure = outcome.pressure;
  if (name === 'pool') {
    if (outcome.pressure?.active) record.pressureEngagedAt ??= iso(now);
    else if (outcome.result === 'ok') delete record.pressureEngagedAt;
  }
  if (outcome.result === 'fault' || outcome.result === 'waiting') {
    const known = record.found.some((f) => f.startsWith(`${name}: `));
    if (!known) {
      addFound(record, `${name}: ${outcome.detail}`);
      addTimeline(record, iso(now), `${name}: ${outcome.detail}`);
    }
  }
  if (outcome.decision === 'healthy') record.pressure = { active: false };
  deps.logger.info('runbook node', {
    incidentId: record.incidentId,
    node: name,
    result: outcome.result,
    decision: outcome.decision,
    cycle: record.cycle,
  });
  return record;
}

/**
 * Crash-restarts this long before the trigger's observation still belong to the incident: the crash
 * happened between the last good probe and the first bad one, at most a cadence apart.
 */
const CRASH_ATTRIBUTION_SECONDS = 60;

/** What the start of each cycle learns from the probe: crash-restarts that belong here, lock-wait ages. */
function observeCycle(ctx: Context, record: IncidentRecord, probe: ProbeResult): void {
  if (!probe.ok) {
    delete record.lockWaitSeconds;
    return;
  }
  const { trigger } = ctx.input;
  // Background processes that started again under the same server since the last good probe (the
  // monitor's, before the outage, or this incident's own): a crash-restart, the tracker's own rule.
  const before = record.started ?? trigger.startedBefore;
  const restarted =
    before?.serverStartedAt === probe.serverStartedAt &&
    before.backgroundStartedAt !== null &&
    probe.backgroundStartedAt !== null &&
    before.backgroundStartedAt !== probe.backgroundStartedAt
      ? probe.backgroundStartedAt
      : null;
  record.started = { serverStartedAt: probe.serverStartedAt, backgroundStartedAt: probe.backgroundStartedAt };
  // Without that memory, the snapshot's crash-restart time: an outage (or an RDS event, an alarm) may
  // turn out to be one; an incident opened for a threshold counts only those while it is open.
  const outage = trigger.kind !== 'manual' && (trigger.category !== undefined || trigger.kind !== 'probe');
  const crashTrigger = trigger.findings?.includes('crash_restart') ?? false;
  const from =
    outage || crashTrigger
      ? Date.parse(trigger.observedAt) - CRASH_ATTRIBUTION_SECONDS * 1_000
      : Date.parse(record.openedAt);
  const reported =
    probe.crashRestartAt && Date.parse(probe.crashRestartAt) >= from ? probe.crashRestartAt : null;
  const crashAt = restarted ?? reported;
  const known = record.crashRestarts ?? [];
  if (crashAt && !known.includes(crashAt)) {
    record.crashRestarts = [...known, crashAt].slice(-LIMITS.crashRestarts);
    const text = `the server crash-restarted at ${crashAt}: its background processes restarted and every session was reset`;
    addFound(record, `crash-restart: ${text}`);
    addTimeline(record, iso(ctx.now), text);
  }
  const locks = judgeLockWaits(record.lockWaits ?? {}, probe);
  if (Object.keys(locks.memory).length > 0) record.lockWaits = locks.memory;
  else delete record.lockWaits;
  record.lockWaitSeconds = locks.longestSeconds;
}

/** A fault or a wait in the current walk that may page: a warning never does. */
function hasCritical(record: IncidentRecord): boolean {
  return record.steps.some(
    (s) => (s.result === 'fault' || s.result === 'waiting') && (s.severity ?? 'critical') === 'critical',
  );
}

/**
 * The clock: page once at the escalation time if something critical is still wrong, stop at the
 * maximum, otherwise wait `waitSeconds` — in a new execution once this one has walked its share of
 * cycles (shared/runbook/history.ts).
 */
function schedule(ctx: Context, record: IncidentRecord, waitSeconds: number): IncidentRecord {
  const { now } = ctx;
  const escalateAt = Date.parse(record.escalateAt);
  const endAt = Date.parse(record.endAt);
  const critical = hasCritical(record);
  let decision: Decision;
  if (now >= endAt) decision = 'final';
  else if (!record.paged && critical && now >= escalateAt) decision = 'page';
  else {
    const cyclesHere = record.cycle - (record.partStartCycle ?? 0);
    decision = cyclesHere >= RUNBOOK_HISTORY.cyclesPerExecution ? 'continue_as_new' : 'wait';
    // Wake up exactly at the escalation time or the end, if either comes before the next check.
    let wait = waitSeconds;
    if (!record.paged && critical && escalateAt > now) wait = Math.min(wait, (escalateAt - now) / 1_000);
    wait = Math.min(wait, (endAt - now) / 1_000);
    record.waitSeconds = Math.max(1, Math.ceil(wait));
    record.wakeAt = iso(now + record.waitSeconds * 1_000);
  }
  record.decision = decision;
  return record;
}

/**
 * Takes over an incident a previous execution handed on: the record as it was, the wait it was about
 * to start (what is left of it).
 */
function resume(ctx: Context, record: IncidentRecord): IncidentRecord {
  const { now, input } = ctx;
  if (record.incidentId !== input.incidentId)
    throw new ValidationError('runbook task', [
      {
        path: 'state.incident.incidentId',
        received: JSON.stringify(record.incidentId),
        problem: `is not the incident this execution carries (${input.incidentId})`,
        fix: 'Continue an incident with its own record.',
      },
    ]);
  // The record arrives with the execution's input, which whoever may start one writes: its clock may
  // run no later than the configured one (a page may come sooner, never be put off).
  const { settings } = input;
  const openedAt = Math.min(Date.parse(record.openedAt) || now, now);
  record.escalateAt = iso(
    Math.min(Date.parse(record.escalateAt) || now, openedAt + settings.escalateAfterSeconds * 1_000),
  );
  record.endAt = iso(
    Math.min(Date.parse(record.endAt) || now, openedAt + settings.maxDurationSeconds * 1_000),
  );
  const wakeAt = Math.min(
    record.wakeAt ? Date.parse(record.wakeAt) || now : now,
    now + settings.recheckSeconds * 1_000,
  );
  record.waitSeconds = Math.max(1, Math.ceil((wakeAt - now) / 1_000));
  record.wakeAt = iso(now + record.waitSeconds * 1_000);
  record.decision = 'resume';
  ctx.deps.logger.info('incident continued in this execution', {
    incidentId: record.incidentId,
    part: record.part ?? 1,
    cycle: record.cycle,
  });
  return record;
}

/**
 * Starts the execution that continues this incident, with the record as it is. The input is built
 * from the state alone, so a retry of this task sends the very same request: Step Functions answers
 * it with the execution already started, or `ExecutionAlreadyExists` once that one has moved on.
 */
async function handOver(
  ctx: Context,
  record: IncidentRecord,
  state: WorkflowState,
  stateMachineArn: string | undefined,
): Promise<IncidentRecord> {
  if (!stateMachineArn)
    throw new ValidationError('runbook task', [
      {
        path: 'stateMachineArn',
        received: 'nothing',
        problem: 'is required for "continue"',
        fix: 'Pass $$.StateMachine.Id.',
      },
    ]);
  const part = (record.part ?? 1) + 1;
  const name = continuationName(record.incidentId, part);
  const next: IncidentRecord = { ...record, part, partStartCycle: record.cycle };
  delete next.continuedAs;
  const input: RunbookInput & { incident: IncidentRecord } = {
    incidentId: state.incidentId,
    requestId: state.requestId,
    target: state.target,
    trigger: state.trigger,
    settings: state.settings,
    incident: next,
  };
  try {
    await ctx.deps.sfn.send(
      new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
      ctx.deps.signal ? { abortSignal: ctx.deps.signal } : {},
    );
  } catch (error) {
    if ((error as { name?: string })?.name !== 'ExecutionAlreadyExists') throw error;
  }
  record.continuedAs = name;
  ctx.deps.logger.info('incident handed over to a new execution', {
    incidentId: record.incidentId,
    execution: name,
    part,
    cycle: record.cycle,
  });
  return record;
}

const ACTION_KIND: Partial<Record<Decision, string>> = {
  remediate_pool: 'terminate_idle',
  remediate_blockers: 'terminate_blockers',
  remediate_idle_in_transaction: 'terminate_idle_in_transaction',
  cancel_queries: 'cancel_queries',
};

function remediationSummary(result: RemediationResult): { summary: string; count: number } {
  const acted = [...result.terminated, ...result.canceled];
  const count = result.dryRun
    ? 0
    : acted.filter((a) => a.outcome === 'terminated' || a.outcome === 'canceled').length;
  const verb = result.canceled.length > 0 && result.terminated.length === 0 ? 'canceled' : 'terminated';
  const reasons = [...new Set(acted.map((a) => a.reason))].join(', ');
  const skips = Object.entries(result.skipCounts ?? {})
    .map(([reason, n]) => `${reason}: ${n}`)
    .join(', ');
  const pressure =
    result.ok && result.pressure.active
      ? ` under the escalated policy (${result.pressure.reason ?? 'pool pressure'})`
      : '';
  const what = result.dryRun
    ? `dry-run: would have ${verb} ${acted.length} session(s)`
    : acted.length === 0
      ? 'found no session the policy allows terminating'
      : `${verb} ${count} session(s)${reasons ? ` (${reasons})` : ''}`;
  return { summary: `${what}${pressure}${skips ? `; left alone ${skips}` : ''}`, count };
}

function recordRemediation(
  ctx: Context,
  record: IncidentRecord,
  remediation: RemediationResult | TaskError | undefined,
): IncidentRecord {
  const { now, input } = ctx;
  const kind = ACTION_KIND[record.decision] ?? 'remediate';
  let acted = 0;
  if (!remediation) {
    addAction(record, {
      at: iso(now),
      kind,
      ok: false,
      summary: `${kind}: no result from the remediate function`,
    });
  } else if ('Error' in remediation && remediation.Error) {
    addAction(record, {
      at: iso(now),
      kind,
      ok: false,
      summary: `${kind} failed: ${remediation.Error}: ${String(remediation.Cause ?? '').slice(0, 300)}`,
    });
  } else {
    const result = remediation as RemediationResult;
    if (result.ok) {
      const { summary, count } = remediationSummary(result);
      acted = count;
      addAction(record, { at: iso(now), kind, ok: true, summary, count, dryRun: result.dryRun });
    } else {
      addAction(record, {
        at: iso(now),
        kind,
        ok: false,
        summary: `${kind}: could not act: ${result.failure.category}: ${result.failure.message}`,
      });
    }
  }
  const decided = record.decision;
  const others = (record.fruitless ?? []).filter((d) => d !== decided);
  record.fruitless = acted > 0 ? others : [...others, decided];
  const last = record.actions[record.actions.length - 1];
  if (last) addTimeline(record, iso(now), last.summary);
  ctx.deps.logger.info('remediation recorded', {
    incidentId: record.incidentId,
    kind,
    acted,
    summary: last?.summary,
  });
  return schedule(
    ctx,
    record,
    // Soon after acting (to verify), and soon while the pool is exhausted: the sessions holding it
    // become eligible within seconds, and every minute lost is an outage for the application.
    acted > 0 || record.pressure.active
      ? Math.min(SETTLE_SECONDS, input.settings.recheckSeconds)
      : input.settings.recheckSeconds,
  );
}

async function startInstance(ctx: Context, record: IncidentRecord): Promise<IncidentRecord> {
  const { target, now, deps, input } = ctx;
  const rds = target.rds;
  if (!target.remediation.allowStartInstance || !rds) {
    addAction(record, {
      at: iso(now),
      kind: 'start_instance',
      ok: false,
      summary: 'starting the instance is not enabled for this target',
    });
    return schedule(ctx, record, input.settings.recheckSeconds);
  }
  try {
    if (rds.clusterId)
      await deps.rds.send(
        new StartDBClusterCommand({ DBClusterIdentifier: rds.clusterId }),
        deps.signal ? { abortSignal: deps.signal } : {},
      );
    else
      await deps.rds.send(
        new StartDBInstanceCommand({ DBInstanceIdentifier: rds.instanceId }),
        deps.signal ? { abortSignal: deps.signal } : {},
      );
    record.startRequestedAt = iso(now);
    addAction(record, {
      at: iso(now),
      kind: 'start_instance',
      ok: true,
      summary: `requested a start of ${rds.clusterId ?? rds.instanceId}`,
    });
  } catch (error) {
    addAction(record, {
      at: iso(now),
      kind: 'start_instance',
      ok: false,
      summary: `could not start ${rds.clusterId ?? rds.instanceId}: ${describeError(error)}`,
    });
  }
  const last = record.actions[record.actions.length - 1];
  if (last) addTimeline(record, last.at, last.summary);
  return schedule(ctx, record, input.settings.recheckSeconds);
}

const isRecoveryKind = (decision: Decision): decision is RecoveryKind =>
  decision === 'reboot_instance' || decision === 'failover_cluster';

/**
 * Records the reboot or failover the decision tree called for, and composes its announcement: it is
 * published before the action is sent (RecoverDatabase). Once per incident.
 */
function announceRecovery(
  ctx: Context,
  record: IncidentRecord,
  probe: ProbeResult | undefined,
): IncidentRecord {
  const { now, input, target } = ctx;
  const kind = record.decision;
  const id = kind === 'reboot_instance' ? target.rds?.instanceId : target.rds?.clusterId;
  if (!isRecoveryKind(kind) || record.recovery || !id)
    throw new ValidationError('runbook task', [
      {
        path: 'state.incident.decision',
        received: JSON.stringify(kind),
        problem: record.recovery
          ? 'asks for a second reboot or failover in one incident'
          : 'is not a reboot or failover of this target',
        fix: 'Announce only what the accepting_connections node decided, once per incident.',
      },
    ]);
  const down = (probe && notAccepting(probe, record.instance)) ?? 'PostgreSQL does not accept connections';
  const since = record.notAcceptingSince ? Date.parse(record.notAcceptingSince) : now;
  record.recovery = {
    kind,
    id,
    reason: `${down} for ${formatDuration(now - since)} while RDS reports it available`,
    announcedAt: iso(now),
  };
  addTimeline(record, iso(now), `announced: ${RECOVERY_WORDS[kind].verb} ${id}`);
  compose(ctx, record, 'announcement', recoveryNotice(input, record, record.recovery, ctx.executionArn));
  return record;
}

/**
 * Sends the announced reboot or failover, if the target still opts in and RDS still reports the
 * database available: a retry of this task finds it rebooting or failing over and sends nothing more.
 */
async function recover(ctx: Context, record: IncidentRecord): Promise<IncidentRecord> {
  const { now, deps, target, input } = ctx;
  const plan = record.recovery;
  if (!plan || plan.requestedAt)
    throw new ValidationError('runbook task', [
      {
        path: 'state.incident.recovery',
        received: plan ? 'a reboot or failover already requested' : 'nothing',
        problem: 'is not an announced reboot or failover waiting to be sent',
        fix: 'Run "announce" first, once per incident.',
      },
    ]);
  const words = RECOVERY_WORDS[plan.kind];
  const act = (ok: boolean, summary: string) => {
    addAction(record, { at: iso(now), kind: plan.kind, ok, summary });
    addTimeline(record, iso(now), summary);
    deps.logger.info('recovery action', {
      incidentId: record.incidentId,
      kind: plan.kind,
      id: plan.id,
      ok,
      summary,
    });
  };
  let status: InstanceStatus | undefined;
  try {
    status = await describeStatus(target, deps);
  } catch (error) {
    act(
      false,
      `did not ${words.verb} ${plan.id}: its RDS status could not be read (${describeError(error)})`,
    );
    return schedule(ctx, record, input.settings.recheckSeconds);
  }
  const underWay = plan.kind === 'reboot_instance' ? 'rebooting' : 'failing-over';
  if (!status || recoveryFor(target, status) !== plan.kind) {
    act(false, `did not ${words.verb} ${plan.id}: ${words.option} is not on for it`);
  } else if (target.remediation.dryRun) {
    addAction(record, {
      at: iso(now),
      kind: plan.kind,
      ok: true,
      dryRun: true,
      summary: `dry-run: would have ${words.done} RDS ${plan.kind === 'reboot_instance' ? 'instance' : 'cluster'} ${plan.id}: ${plan.reason}`,
    });
    addTimeline(record, iso(now), `dry-run: would have ${words.done} ${plan.id}`);
  } else if (status.status === underWay) {
    // Most likely this very step, retried after RDS took the request: it must not be sent twice.
    plan.requestedAt = iso(now);
    act(
      true,
      `RDS reports ${plan.id} ${underWay}: the ${words.verb} is under way (asked for by an earlier attempt of this step, or by someone else); not asking again`,
    );
  } else if (status.status !== 'available') {
    act(
      false,
      `did not ${words.verb} ${plan.id}: RDS reports it ${status.status} (pgwarden acts only while it is available)`,
    );
  } else {
    const options = deps.signal ? { abortSignal: deps.signal } : {};
    try {
      if (plan.kind === 'reboot_instance')
        await deps.rds.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: plan.id }), options);
      else await deps.rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: plan.id }), options);
      plan.requestedAt = iso(now);
      act(true, `${words.done} RDS ${status.kind} ${plan.id}: ${plan.reason}`);
    } catch (error) {
      act(false, `could not ${words.verb} ${plan.id}: ${describeError(error)}`);
    }
  }
  return schedule(ctx, record, input.settings.recheckSeconds);
}

/**
 * Composes the page and marks the incident paged. Composing has no side effect, so a retry of this task
 * cannot page twice; if the page is then not published, the workflow clears `paged` and the failure
 * notice goes to on-call instead.
 */
function page(ctx: Context, record: IncidentRecord): IncidentRecord {
  const { input, now } = ctx;
  if (!record.paged) {
    compose(ctx, record, 'page', pageNotice(input, record, now, ctx.executionArn));
    record.paged = true;
    record.pagedAt = iso(now);
    addTimeline(record, record.pagedAt, 'paged on-call');
  }
  record.decision = 'wait';
  record.waitSeconds = input.settings.recheckSeconds;
  record.wakeAt = iso(now + input.settings.recheckSeconds * 1_000);
  return record;
}

async function resolve(
  ctx: Context,
  record: IncidentRecord,
  integrity: IntegrityResult | TaskError | undefined,
): Promise<IncidentRecord> {
  const { input, now, target, deps } = ctx;
  record.status = 'resolved';
  record.resolvedAt = iso(now);
  record.decision = 'healthy';
  const warnings = record.steps.filter((s) => s.severity === 'warning').map((s) => s.node);
  addTimeline(
    record,
    record.resolvedAt,
    warnings.length > 0
      ? `resolved: nothing left that pgwarden would act on or page for; still worth a look: ${warnings.join(', ')}`
      : 'healthy again: every node of the runbook passed',
  );
  if (target.rds && !record.evidence) record.evidence = await gatherEvidence(target, deps, now);
  const summary = integrity && 'ok' in integrity ? integrity : undefined;
  const notice = resolvedNotice(input, record, now, summary, ctx.executionArn);
  compose(ctx, record, 'resolved', notice);
  if (record.paged) compose(ctx, record, 'resolvedOnCall', { ...notice, topic: 'pages' });
  return record;
}

function final(ctx: Context, record: IncidentRecord): IncidentRecord {
  const { input, now } = ctx;
  record.status = 'unresolved';
  record.endedAt = iso(now);
  record.decision = 'final';
  addTimeline(record, record.endedAt, 'maximum duration reached; verification stopped');
  compose(ctx, record, 'final', finalNotice(input, record, now, ctx.executionArn));
  return record;
}

function failed(
  ctx: Context,
  record: IncidentRecord | undefined,
  error: TaskError,
  pageNotSent = false,
): IncidentRecord {
  const { input, now } = ctx;
  if (record && pageNotSent) {
    // The page was composed but SNS did not take it: on-call has not been told, and must be now.
    record.paged = false;
    delete record.pagedAt;
    record.timeline = record.timeline.filter((t) => t.text !== 'paged on-call');
  }
  const out: IncidentRecord = record ?? {
    incidentId: input.incidentId,
    targetId: input.target.id,
    status: 'failed',
    openedAt: iso(now),
    escalateAt: iso(now),
    endAt: iso(now),
    cycle: 0,
    steps: [],
    found: [],
    actions: [],
    timeline: [],
    decision: 'final',
    pressure: { active: false },
    waitSeconds: 0,
    paged: false,
  };
  out.status = 'failed';
  out.endedAt = iso(now);
  addTimeline(out, out.endedAt, `runbook failed: ${error.Error ?? 'error'}`);
  compose(ctx, out, 'failed', failedNotice(input, record, error, ctx.executionArn, pageNotSent));
  return out;
}

/** Builds what it can from a possibly malformed state and reports the failure. */
async function failedLeniently(event: unknown, deps: RunbookDeps): Promise<IncidentRecord> {
  const raw = ((event as { state?: unknown }).state ?? {}) as Partial<WorkflowState> & {
    target?: Partial<Target>;
  };
  const parsedTarget = safeParse(targetSchema, raw.target);
  const target: Target = parsedTarget.ok
    ? toTargetFromPayload(parsedTarget.value)
    : {
        id: typeof raw.target?.id === 'string' ? raw.target.id : 'unknown-target',
        connection: {
          host: 'unknown',
          port: 0,
          database: 'unknown',
          auth: { kind: 'none' },
          tls: { mode: 'verify-full' },
        },
        thresholds: DEFAULT_THRESHOLDS,
        remediation: DEFAULT_REMEDIATION,
      };
  const input: RunbookInput = {
    incidentId: typeof raw.incidentId === 'string' ? raw.incidentId : 'unknown-incident',
    requestId: typeof raw.requestId === 'string' ? raw.requestId : '',
    target,
    trigger:
      raw.trigger && typeof raw.trigger.summary === 'string'
        ? raw.trigger
        : {
            kind: 'manual',
            summary: 'unknown trigger',
            observedAt: new Date(deps.clock.now()).toISOString(),
          },
    settings:
      raw.settings && typeof raw.settings.recheckSeconds === 'number'
        ? raw.settings
        : DEFAULT_RUNBOOK_SETTINGS,
  };
  const executionArn = (event as { executionArn?: unknown }).executionArn;
  const ctx: Context = {
    input,
    target,
    now: deps.clock.now(),
    deps,
    executionArn: typeof executionArn === 'string' ? executionArn : undefined,
  };
  const record =
    raw.incident && typeof raw.incident === 'object' && Array.isArray(raw.incident.steps)
      ? structuredClone(raw.incident)
      : undefined;
  if (record) delete record.outbox;
  const error = raw.error && typeof raw.error === 'object' ? raw.error : {};
  return failed(ctx, record, error, (event as { pageNotSent?: unknown }).pageNotSent === true);
}
