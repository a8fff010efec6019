/**
 * The incident record the workflow carries from state to state. Every list is bounded: Step Functions
 * payloads stop at 256 KB, and an incident may run for hours.
 */
import type { PublishCommandInput } from '@aws-sdk/client-sns';
import type { Severity } from '../health.ts';
import type { LockWaitMemory } from '../lock-waits.ts';
import type { OutboxSlot, RunbookNode } from './definition.ts';
import type { ProcessStarts } from './types.ts';

export type StepResult = 'ok' | 'fault' | 'waiting' | 'skipped';

export interface Step {
  node: RunbookNode;
  result: StepResult;
  detail: string;
  at: string;
  /** For a fault or a wait: a warning never pages, and alone does not keep the incident open. */
  severity?: Severity;
}

/** What the workflow does after a node; the Choice states branch on it. */
export type Decision =
  | 'continue'
  | 'healthy'
  | 'wait'
  | 'unresolved'
  | 'remediate_pool'
  | 'remediate_blockers'
  | 'remediate_idle_in_transaction'
  | 'cancel_queries'
  | 'start_instance'
  | 'reboot_instance'
  | 'failover_cluster'
  | 'page'
  | 'final'
  /** A new execution took the incident over: wait, then verify as the last one would have. */
  | 'resume'
  /** This execution has walked its share of cycles: hand the incident to a new execution. */
  | 'continue_as_new';

export interface ActionRecord {
  at: string;
  /** e.g. terminate_idle, terminate_blockers, cancel_queries, start_instance. */
  kind: string;
  ok: boolean;
  summary: string;
  count?: number;
  dryRun?: boolean;
  /** The same action repeated this many times in a row (absent: once), the last at `lastAt`; `count` is their sum. */
  times?: number;
  lastAt?: string;
}

export interface TimelineEntry {
  at: string;
  text: string;
  /** The same entry repeated this many times in a row (absent: once), the last at `lastAt`. */
  times?: number;
  lastAt?: string;
}

export interface Evidence {
  gatheredAt: string;
  instance?: { id: string; kind: 'instance' | 'cluster'; status: string; detail?: string };
  events: Array<{ at: string; source: string; message: string; id?: string }>;
  logLines: string[];
  metrics: Array<{ name: string; stat: string; value: number | null; unit: string }>;
  /** What could not be gathered and why. */
  gaps: string[];
}

/** What one node of the decision tree concluded; the record keeps it as a `Step`. */
export interface NodeOutcome {
  result: StepResult;
  detail: string;
  decision: Decision;
  /** For a fault or a wait (critical unless it says otherwise): only critical ones keep an incident open to its page. */
  severity?: Severity;
  /** Pool pressure, for the remediation the pool node asks for. */
  pressure?: { active: boolean; reason?: string };
}

/** What RDS says about the instance or cluster (undefined when the target is not on RDS). */
export interface InstanceStatus {
  id: string;
  kind: 'instance' | 'cluster';
  status: string;
  /** A cluster's readers: the instances a failover can promote. */
  readers?: number;
}

export type RecoveryKind = 'reboot_instance' | 'failover_cluster';

/** The reboot or failover of an incident, as the incident record keeps it. */
export interface Recovery {
  kind: RecoveryKind;
  /** RDS's identifier of the instance or cluster. */
  id: string;
  /** What was wrong, as the announcement said. */
  reason: string;
  announcedAt: string;
  /** When RDS accepted the request; absent when it was not sent or RDS refused it. */
  requestedAt?: string;
}

export interface IncidentRecord {
  incidentId: string;
  targetId: string;
  status: 'open' | 'resolved' | 'unresolved' | 'failed';
  openedAt: string;
  /** Page on-call if still open at this time. */
  escalateAt: string;
  /** Stop verifying at this time. */
  endAt: string;
  /** Verification cycles so far (walks of the tree), over every execution of the incident. */
  cycle: number;
  /**
   * Which execution carries the incident: 1 for the one that opened it, n for its (n-1)th
   * continuation. @default 1
   */
  part?: number;
  /** `cycle` when this execution took the incident over. @default 0 */
  partStartCycle?: number;
  /** Set by the execution that handed the incident over: the name of the one that continues it. */
  continuedAs?: string;
  /** The current walk of the decision tree. */
  steps: Step[];
  /** Faults seen over the incident, deduplicated: "what was found". */
  found: string[];
  actions: ActionRecord[];
  timeline: TimelineEntry[];
  decision: Decision;
  pressure: { active: boolean; reason?: string };
  /** When the escalated (pool-pressure) policy first applied; cleared once the pool is healthy. */
  pressureEngagedAt?: string;
  /** How long the next Wait lasts, and when it ends (the runbook's clock, not the execution's). */
  waitSeconds: number;
  wakeAt?: string;
  paged: boolean;
  pagedAt?: string;
  resolvedAt?: string;
  endedAt?: string;
  evidence?: Evidence;
  /** Instance start requested (once per incident). */
  startRequestedAt?: string;
  /** What RDS reported in this cycle's running node (absent when it could not be read). */
  instance?: InstanceStatus;
  /** Since when PostgreSQL has not accepted connections while RDS reported the instance available. */
  notAcceptingSince?: string;
  /** The incident's reboot or failover (at most one): announced, then requested. */
  recovery?: Recovery;
  /**
   * Messages this task composed for the state machine to publish, by slot; once published, a slot holds
   * the receipt instead. Never carried past the next task: each task starts with an empty outbox.
   */
  outbox?: Partial<Record<OutboxSlot, PublishCommandInput | { MessageId?: string }>>;
  /** Crash-restarts that belong to this incident (ISO, oldest first): what it turned out to be. */
  crashRestarts?: string[];
  /** The server's and its background processes' start times at the latest good probe. */
  started?: ProcessStarts;
  /** Servers before PostgreSQL 14: when each current lock wait was first seen. */
  lockWaits?: LockWaitMemory;
  /** The longest lock wait as judged at the start of the current cycle, in seconds. */
  lockWaitSeconds?: number;
  /** Remedies whose latest pass acted on nothing: for a warning, the runbook does not try again. */
  fruitless?: Decision[];
}

export const LIMITS = { found: 20, actions: 30, timeline: 60, crashRestarts: 10 } as const;

/** Appends and keeps the newest `limit` entries, the first one always kept (it says how it began). */
export function bounded<T>(list: readonly T[], item: T, limit: number): T[] {
  const next = [...list, item];
  if (next.length <= limit) return next;
  return [next[0] as T, ...next.slice(next.length - limit + 1)];
}

export function addFound(record: IncidentRecord, text: string): void {
  if (!record.found.includes(text)) record.found = bounded(record.found, text, LIMITS.found);
}

export function addTimeline(record: IncidentRecord, at: string, text: string): void {
  const last = record.timeline[record.timeline.length - 1];
  if (last && last.text === text) {
    last.times = (last.times ?? 1) + 1;
    last.lastAt = at;
    return;
  }
  record.timeline = bounded(record.timeline, { at, text }, LIMITS.timeline);
}

/** Appends an action; the same action repeated in a row becomes one entry with a count and a span. */
export function addAction(record: IncidentRecord, action: ActionRecord): void {
  const last = record.actions[record.actions.length - 1];
  if (
    last &&
    last.kind === action.kind &&
    last.ok === action.ok &&
    last.summary === action.summary &&
    last.dryRun === action.dryRun
  ) {
    last.times = (last.times ?? 1) + 1;
    last.lastAt = action.at;
    if (action.count !== undefined) last.count = (last.count ?? 0) + action.count;
    return;
  }
  record.actions = bounded(record.actions, action, LIMITS.actions);
}
