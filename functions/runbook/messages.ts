/**
 * What pgwarden tells people. Every message reads well in an email (a subject and a plain-text body)
 * and is structured for machines: a per-protocol JSON document for SQS, Lambda and HTTPS subscribers,
 * and message attributes to filter on.
 */
import type { PublishCommandInput } from '@aws-sdk/client-sns';
import { describeConnection } from '../../shared/connection.ts';
import { formatDuration } from '../../shared/duration.ts';
import { printable, printableDeep } from '../../shared/printable.ts';
import type { IntegrityResult } from '../../shared/probe/integrity.ts';
import { redact, redactDeep } from '../../shared/redact.ts';
import type {
  ActionRecord,
  Evidence,
  IncidentRecord,
  Recovery,
  Step,
  TimelineEntry,
} from '../../shared/runbook/record.ts';
import type { RunbookInput } from '../../shared/runbook/types.ts';
import { RECOVERY_WORDS } from './recovery.ts';

export type NoticeKind = 'opened' | 'recovery' | 'page' | 'resolved' | 'final' | 'runbook_failed' | 'test';
export type Topic = 'pages' | 'notifications';

export interface Notice {
  kind: NoticeKind;
  topic: Topic;
  severity: 'critical' | 'warning' | 'info';
  subject: string;
  text: string;
  data: Record<string, unknown>;
}

const MARK: Record<Step['result'], string> = {
  ok: 'ok   ',
  fault: 'FAULT',
  waiting: 'WAIT ',
  skipped: 'skip ',
};

function subject(text: string): string {
  // SNS subjects: ASCII, no line breaks, at most 100 characters.
  const clean = text
    .replace(/[^\x20-\x7E]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  return clean.length > 100 ? `${clean.slice(0, 97)}...` : clean;
}

function clockTime(iso: string): string {
  return iso.slice(11, 19);
}

function elapsed(record: IncidentRecord, now: number): string {
  return formatDuration(now - Date.parse(record.openedAt));
}

function links(input: RunbookInput, executionArn: string | undefined): string[] {
  const out: string[] = [];
  if (input.settings.dashboardUrl) out.push(`Dashboard: ${input.settings.dashboardUrl}`);
  if (executionArn && input.settings.consoleUrl)
    out.push(`Execution: ${input.settings.consoleUrl}#/v2/executions/details/${executionArn}`);
  else if (executionArn) out.push(`Execution: ${executionArn}`);
  return out;
}

function header(input: RunbookInput, record: IncidentRecord): string[] {
  return [
    `Incident ${record.incidentId}, opened ${record.openedAt}`,
    `Target: ${input.target.id} (${describeConnection(input.target.connection)})`,
    `Trigger: ${input.trigger.kind}: ${input.trigger.summary}`,
  ];
}

function mark(step: Step): string {
  return step.severity === 'warning' ? 'warn ' : MARK[step.result];
}

function stepsBlock(steps: readonly Step[]): string[] {
  return steps.map((s) => `  ${mark(s)} ${s.node}: ${s.detail}`);
}

/** One entry, a repeated one as "text ×14, 12:53:44–12:55:58". */
function repeated(entry: ActionRecord | TimelineEntry, text: string): string {
  const times = entry.times ?? 1;
  if (times < 2) return `${clockTime(entry.at)} ${text}`;
  return `${text} ×${times}, ${clockTime(entry.at)}–${clockTime(entry.lastAt ?? entry.at)}`;
}

/** One action as people read it; a repeated one as "summary ×14, 12:53:44–12:55:58". */
export function actionText(a: ActionRecord): string {
  return repeated(a, `${a.ok ? '' : '(failed) '}${a.summary}`);
}

function actionsBlock(record: IncidentRecord): string[] {
  if (record.actions.length === 0) return ['  nothing was changed'];
  return record.actions.map((a) => `  ${actionText(a)}`);
}

function timelineBlock(record: IncidentRecord): string[] {
  return record.timeline.map((t) => `  ${repeated(t, t.text)}`);
}

/** Crash-restarts this incident turned out to be, in words. */
function crashText(record: IncidentRecord): string | undefined {
  const crashes = record.crashRestarts ?? [];
  if (crashes.length === 0) return undefined;
  const times = crashes.map(clockTime).join(', ');
  return crashes.length === 1
    ? `crash-restart at ${times}: the background processes restarted and every session was reset`
    : `crash-restarts ×${crashes.length} (${times}): the server keeps crashing, every session reset each time`;
}

/** What happened: the crash-restart it turned out to be, else what is still critically wrong, else the trigger. */
export function causeOf(input: RunbookInput, record: IncidentRecord): string {
  const crash = crashText(record);
  if (crash) return crash;
  const critical = record.steps.find(
    (s) => (s.result === 'fault' || s.result === 'waiting') && s.severity !== 'warning',
  );
  if (critical) return `${critical.node}: ${critical.detail}`;
  return input.trigger.summary;
}

const TRIED_MAX = 400;

/** What was tried, on one line. */
function triedLine(record: IncidentRecord): string {
  if (record.actions.length === 0) return 'nothing: no remediation applies, or the policy allowed none';
  const line = record.actions.map(actionText).join('; ');
  return line.length > TRIED_MAX ? `${line.slice(0, TRIED_MAX - 1)}… (all below)` : line;
}

function evidenceBlock(evidence: Evidence | undefined): string[] {
  if (!evidence) return ['  (not gathered)'];
  const lines: string[] = [];
  if (evidence.instance)
    lines.push(`  RDS ${evidence.instance.kind} ${evidence.instance.id}: ${evidence.instance.status}`);
  for (const m of evidence.metrics) {
    const value =
      m.value === null
        ? 'no data'
        : m.unit === 'Bytes'
          ? `${(m.value / 1024 ** 3).toFixed(2)} GiB`
          : `${Math.round(m.value * 10) / 10}${m.unit === 'Percent' ? '%' : ''}`;
    lines.push(`  ${m.name} (${m.stat.toLowerCase()}, last hour): ${value}`);
  }
  if (evidence.events.length)
    lines.push('  Recent RDS events:', ...evidence.events.map((e) => `    ${e.at} ${e.message}`));
  if (evidence.logLines.length)
    lines.push(
      '  Database log, quoted as written (user and database names in it are chosen by clients):',
      ...evidence.logLines.map((l) => `    > ${l}`),
    );
  if (evidence.gaps.length) lines.push('  Not available:', ...evidence.gaps.map((g) => `    ${g}`));
  return lines.length ? lines : ['  nothing found'];
}

function integrityBlock(integrity: IntegrityResult | undefined): string[] {
  if (!integrity) return ['  (not checked)'];
  if (!integrity.ok)
    return [`  could not check: ${integrity.failure.category}: ${integrity.failure.message}`];
  const lines = integrity.databases
    .slice(0, 10)
    .map(
      (d) =>
        `  ${d.name}: xid age ${d.xidAge.toLocaleString('en-US')} (${d.wraparoundPct}% of wraparound), size ${
          d.sizeBytes === null ? 'unknown' : `${(d.sizeBytes / 1024 ** 2).toFixed(1)} MiB`
        }`,
    );
  lines.push(
    `  checksum failures: ${integrity.checksumFailures}, deadlocks: ${integrity.deadlocks} (since statistics reset)`,
  );
  return lines;
}

function stillWrong(record: IncidentRecord): string[] {
  const bad = record.steps.filter((s) => s.result === 'fault' || s.result === 'waiting');
  return bad.length ? stepsBlock(bad) : ['  (the last check found no fault)'];
}

function warningsOf(record: IncidentRecord): Step[] {
  return record.steps.filter((s) => s.severity === 'warning');
}

function data(
  kind: NoticeKind,
  input: RunbookInput,
  record: IncidentRecord,
  executionArn: string | undefined,
  extra: Record<string, unknown> = {},
) {
  return redactDeep({
    kind,
    incidentId: record.incidentId,
    target: input.target.id,
    status: record.status,
    openedAt: record.openedAt,
    trigger: input.trigger,
    steps: record.steps.map(({ node, result, detail }) => ({ node, result, detail })),
    found: record.found,
    actions: record.actions,
    paged: record.paged,
    cause: causeOf(input, record),
    executionArn,
    ...extra,
  });
}

export function openedNotice(input: RunbookInput, record: IncidentRecord, executionArn?: string): Notice {
  return {
    kind: 'opened',
    topic: 'notifications',
    severity: 'warning',
    subject: subject(`[pgwarden] incident opened: ${input.target.id}: ${input.trigger.summary}`),
    text: [
      ...header(input, record),
      '',
      `pgwarden is working through the runbook and will fix what is safe to fix.`,
      input.trigger.severity === 'warning'
        ? 'This is a warning: it never pages on-call. The incident resolves once pgwarden has nothing left to do about it.'
        : `On-call will be paged at ${record.escalateAt} if something critical is still wrong then.`,
      '',
      ...links(input, executionArn),
    ].join('\n'),
    data: data('opened', input, record, executionArn),
  };
}

/**
 * Announces a reboot or failover before it is sent: what, why, and what follows. On-call gets it
 * when already paged (they may be working on the database).
 */
export function recoveryNotice(
  input: RunbookInput,
  record: IncidentRecord,
  recovery: Recovery,
  executionArn?: string,
): Notice {
  const words = RECOVERY_WORDS[recovery.kind];
  const what = recovery.kind === 'reboot_instance' ? 'RDS instance' : 'RDS cluster';
  const dryRun = input.target.remediation.dryRun;
  return {
    kind: 'recovery',
    topic: record.paged ? 'pages' : 'notifications',
    severity: 'warning',
    subject: subject(
      `[pgwarden] ${dryRun ? 'dry-run: would be ' : ''}${words.doing} ${input.target.id}: PostgreSQL does not accept connections`,
    ),
    text: [
      dryRun
        ? `pgwarden would ${words.verb} ${what} ${recovery.id} now, but remediation for this target is in dry-run: nothing is sent.`
        : `pgwarden is about to ${words.verb} ${what} ${recovery.id}, because ${input.target.id} is available to RDS but not to its clients.`,
      `Why: ${recovery.reason}`,
      ...header(input, record),
      '',
      `${words.option} is on for this target. pgwarden does this once per incident, and only while RDS reports the database available.`,
      record.paged
        ? 'On-call was paged; pgwarden keeps verifying and sends the resolution.'
        : `If the incident is not resolved by ${record.escalateAt}, on-call is paged.`,
      '',
      ...links(input, executionArn),
    ].join('\n'),
    data: data('recovery', input, record, executionArn, { recovery }),
  };
}

export function pageNotice(
  input: RunbookInput,
  record: IncidentRecord,
  now: number,
  executionArn?: string,
): Notice {
  const wrong = record.steps
    .filter((s) => (s.result === 'fault' || s.result === 'waiting') && s.severity !== 'warning')
    .map((s) => s.node);
  return {
    kind: 'page',
    topic: 'pages',
    severity: 'critical',
    subject: subject(
      `[pgwarden] CRITICAL ${input.target.id} unresolved after ${elapsed(record, now)}: ${wrong.join(', ') || 'unhealthy'}`,
    ),
    text: [
      // The first three lines: the target, the cause, what was already tried.
      `Target: ${input.target.id} (${describeConnection(input.target.connection)}), critical: unhealthy for ${elapsed(record, now)} and pgwarden could not resolve it`,
      `Cause: ${causeOf(input, record)}`,
      `Tried: ${triedLine(record)}`,
      '',
      `Incident ${record.incidentId}, opened ${record.openedAt}`,
      `Trigger: ${input.trigger.kind}: ${input.trigger.summary}`,
      '',
      'What was found:',
      ...record.found.map((f) => `  - ${f}`),
      '',
      'What was tried:',
      ...actionsBlock(record),
      '',
      'What is still wrong:',
      ...stillWrong(record),
      '',
      'Evidence:',
      ...evidenceBlock(record.evidence),
      '',
      ...links(input, executionArn),
      '',
      `pgwarden keeps verifying every ${formatDuration(input.settings.recheckSeconds * 1_000)} and will send a resolution notice.`,
    ].join('\n'),
    data: data('page', input, record, executionArn, { evidence: record.evidence, stillWrong: wrong }),
  };
}

export function resolvedNotice(
  input: RunbookInput,
  record: IncidentRecord,
  now: number,
  integrity: IntegrityResult | undefined,
  executionArn?: string,
): Notice {
  const warnings = warningsOf(record);
  const crash = record.crashRestarts?.length ? clockTime(record.crashRestarts.at(-1) ?? '') : undefined;
  const took = elapsed(record, now);
  const headline =
    warnings.length > 0
      ? `[pgwarden] resolved: ${input.target.id}: nothing left to act on after ${took}; worth a look: ${warnings.map((w) => w.node).join(', ')}`
      : crash
        ? `[pgwarden] resolved: ${input.target.id}: crash-restart at ${crash}; healthy again after ${took}`
        : `[pgwarden] resolved: ${input.target.id} healthy again after ${took}`;
  return {
    kind: 'resolved',
    topic: 'notifications',
    severity: 'info',
    subject: subject(headline),
    text: [
      warnings.length > 0
        ? `${input.target.id}: nothing is left that pgwarden would act on or page for, after ${took}${record.paged ? ' (on-call was paged)' : ''}. Still worth a look:`
        : `${input.target.id} is healthy again after ${took}${record.paged ? ' (on-call was paged)' : ''}.`,
      ...warnings.map((w) => `  - ${w.node}: ${w.detail}`),
      `Cause: ${causeOf(input, record)}`,
      ...header(input, record),
      '',
      'Timeline:',
      ...timelineBlock(record),
      '',
      'What was found:',
      ...(record.found.length
        ? record.found.map((f) => `  - ${f}`)
        : ['  - nothing wrong by the time pgwarden looked']),
      '',
      'What was done:',
      ...actionsBlock(record),
      '',
      'Integrity after the incident:',
      ...integrityBlock(integrity),
      ...(record.evidence ? ['', 'Evidence:', ...evidenceBlock(record.evidence)] : []),
      '',
      ...links(input, executionArn),
    ].join('\n'),
    data: data('resolved', input, record, executionArn, {
      integrity,
      evidence: record.evidence,
      worthALook: warnings.map(({ node, detail }) => ({ node, detail })),
    }),
  };
}

export function finalNotice(
  input: RunbookInput,
  record: IncidentRecord,
  now: number,
  executionArn?: string,
): Notice {
  const critical = record.steps.some(
    (s) => (s.result === 'fault' || s.result === 'waiting') && s.severity !== 'warning',
  );
  return {
    kind: 'final',
    topic: record.paged ? 'pages' : 'notifications',
    severity: critical ? 'critical' : 'warning',
    subject: subject(
      `[pgwarden] still unresolved: ${input.target.id} after ${elapsed(record, now)}; pgwarden stops verifying`,
    ),
    text: [
      `${input.target.id} is still unhealthy after ${elapsed(record, now)}, the runbook's maximum. pgwarden stops verifying this incident; the monitor will open a new one if the problem persists.`,
      `Cause: ${causeOf(input, record)}`,
      ...header(input, record),
      '',
      'What is still wrong:',
      ...stillWrong(record),
      '',
      'What was tried:',
      ...actionsBlock(record),
      '',
      ...links(input, executionArn),
    ].join('\n'),
    data: data('final', input, record, executionArn),
  };
}

export function failedNotice(
  input: RunbookInput,
  record: IncidentRecord | undefined,
  error: { Error?: string; Cause?: string },
  executionArn?: string,
  /** The page was composed but SNS did not confirm taking it: this message stands in for it. */
  pageNotSent = false,
): Notice {
  const cause = redact(
    `${error.Error ?? 'Error'}: ${typeof error.Cause === 'string' ? error.Cause : JSON.stringify(error.Cause ?? '')}`,
  ).slice(0, 1_000);
  const paged = record?.paged ?? false;
  return {
    kind: 'runbook_failed',
    // One page per incident: if on-call already has it, this goes to the notifications topic.
    topic: paged ? 'notifications' : 'pages',
    severity: 'critical',
    subject: subject(`[pgwarden] CRITICAL runbook failed for ${input.target.id}: check the database by hand`),
    text: [
      `The pgwarden runbook failed while handling an incident on ${input.target.id}, so nobody is watching it automatically.`,
      `Incident ${input.incidentId}${record ? `, opened ${record.openedAt}` : ''}`,
      `Target: ${input.target.id} (${describeConnection(input.target.connection)})`,
      `Trigger: ${input.trigger.kind}: ${input.trigger.summary}`,
      ...(pageNotSent
        ? [`The page for this incident could not be confirmed as sent; this message goes to on-call instead.`]
        : []),
      `Failure: ${cause}`,
      ...(record
        ? ['', 'Last check:', ...stepsBlock(record.steps), '', 'What was tried:', ...actionsBlock(record)]
        : []),
      '',
      ...links(input, executionArn),
    ].join('\n'),
    data: redactDeep({
      kind: 'runbook_failed',
      incidentId: input.incidentId,
      target: input.target.id,
      error: cause,
      paged,
      executionArn,
    }),
  };
}

export interface TestNoticeInput {
  topic: Topic;
  /** The deployment it goes through: a stack name, or "local" for local mode. */
  deployment: string;
  /** When it was sent (ISO 8601). */
  at: string;
  dashboardUrl?: string;
}

/**
 * A test message for `pgwarden test-page`: composed and published like a real page (or notice) on the
 * same topic, with the same structure and attributes (`pgwarden.kind` is `test`; on the pages topic
 * the severity is `critical`, as a page's), and marked as a test in its subject, its first line and
 * its document, so nobody takes it for an incident.
 */
export function testNotice(input: TestNoticeInput): Notice {
  const page = input.topic === 'pages';
  const what = page ? 'page' : 'notification';
  const id = `test-${input.at.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
  return {
    kind: 'test',
    topic: input.topic,
    severity: page ? 'critical' : 'info',
    subject: subject(`[pgwarden] TEST ${what} from ${input.deployment}: nothing is wrong`),
    text: [
      `Target: none. This is a TEST ${what} from pgwarden (${input.deployment}); no database is affected.`,
      `Cause: someone ran pgwarden test-page at ${input.at} to check that ${page ? 'pages reach on-call' : 'notifications reach their subscribers'}.`,
      'Tried: nothing: there is nothing to fix.',
      '',
      page
        ? 'If you are on call and this reached you, paging works. Acknowledge and resolve it the way you would a real page.'
        : 'If this reached you, notifications work.',
      `Test ${id}`,
      ...(input.dashboardUrl ? ['', `Dashboard: ${input.dashboardUrl}`] : []),
    ].join('\n'),
    data: redactDeep({
      kind: 'test',
      test: true,
      incidentId: id,
      target: 'test',
      deployment: input.deployment,
      sentAt: input.at,
      topic: input.topic,
    }),
  };
}

/**
 * SNS Publish input: email gets the text, machine protocols get the JSON document. The state machine
 * sends it as it is (the `sns:publish` integration takes the same fields).
 */
export function publishInput(topicArn: string, notice: Notice): PublishCommandInput {
  // Messages quote what servers, databases, clients and payloads wrote: no escape sequence, forged
  // line or reordering reaches a mail client, a chat or a terminal.
  const json = JSON.stringify(
    printableDeep({ subject: notice.subject, severity: notice.severity, ...notice.data }),
  );
  const text = printable(redact(notice.text), { multiline: true });
  return {
    TopicArn: topicArn,
    Subject: notice.subject,
    MessageStructure: 'json',
    Message: JSON.stringify({
      default: text,
      email: text,
      'email-json': json,
      sqs: json,
      lambda: json,
      http: json,
      https: json,
    }),
    MessageAttributes: {
      'pgwarden.kind': { DataType: 'String', StringValue: notice.kind },
      'pgwarden.severity': { DataType: 'String', StringValue: notice.severity },
      'pgwarden.target': { DataType: 'String', StringValue: String(notice.data.target ?? '') },
      'pgwarden.incident': { DataType: 'String', StringValue: String(notice.data.incidentId ?? '') },
    },
  };
}
