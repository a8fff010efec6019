/** The incident workflow's input: a contract between the triggers (monitor, RDS events, alarms) and the runbook. */
import type { FailureCategory } from '../classify.ts';
import type { FindingCode, Severity } from '../health.ts';
import type { LockWaitMemory } from '../lock-waits.ts';
import type { Target } from '../target.ts';

export const TRIGGER_KINDS = ['probe', 'rds-event', 'alarm', 'manual'] as const;
export type TriggerKind = (typeof TRIGGER_KINDS)[number];

/** When a server and its background processes started (a probe snapshot's two fields). */
export interface ProcessStarts {
  serverStartedAt: string;
  backgroundStartedAt: string | null;
}

/** What made somebody open the incident. */
export interface Trigger {
  kind: TriggerKind;
  /** One line, for the opening notification. */
  summary: string;
  /** When the condition was observed (ISO), not when the trigger arrived. */
  observedAt: string;
  /** Probe verdicts: the failure category, if the probe could not connect. */
  category?: FailureCategory;
  /** Probe verdicts: the findings that crossed their thresholds. */
  findings?: FindingCode[];
  /**
   * Probe verdicts: the highest severity among them. A warning's incident never pages. Other triggers
   * (RDS events, alarms) leave it out: the runbook judges what it finds.
   */
  severity?: Severity;
  /**
   * Probe verdicts on an outage: when the server and its background processes had started, as the last
   * good probe before it saw them. Background processes that started again under the same server mean
   * the outage was a crash-restart, however soon after the server's own start it came.
   */
  startedBefore?: ProcessStarts;
  /** Probe verdicts: crash-restarts seen within the last 15 minutes (ISO, oldest first). */
  crashRestarts?: string[];
  /**
   * Probe verdicts on servers before PostgreSQL 14: when the monitor first saw each current lock wait,
   * so the runbook dates them as the monitor did.
   */
  lockWaitsSeen?: LockWaitMemory;
  /** RDS events: the event id, e.g. RDS-EVENT-0004, and its incident kind. */
  eventId?: string;
  eventKind?: string;
  /** Alarms: the alarm name. */
  alarmName?: string;
}

/** The runbook's clock and links. */
export interface RunbookSettings {
  /** Page if still unresolved this long after the incident opened. @default 1200 (20 min) */
  escalateAfterSeconds: number;
  /** Verify every... @default 60 */
  recheckSeconds: number;
  /** End the execution (with a final notice) after... @default 14400 (4 h) */
  maxDurationSeconds: number;
  /** CloudWatch dashboard link for pages. */
  dashboardUrl?: string;
  /** Console base for execution links, e.g. https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1 */
  consoleUrl?: string;
}

export const DEFAULT_RUNBOOK_SETTINGS: RunbookSettings = {
  escalateAfterSeconds: 1_200,
  recheckSeconds: 60,
  maxDurationSeconds: 14_400,
};

export interface RunbookInput {
  /** Also the execution name: exactly one per outage. */
  incidentId: string;
  /**
   * Unique per start attempt. Step Functions treats a repeated start with identical input as the same
   * request; making every attempt distinct lets a concurrent trigger learn it joined, not opened.
   */
  requestId: string;
  target: Target;
  trigger: Trigger;
  settings: RunbookSettings;
}
