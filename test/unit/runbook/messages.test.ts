import { describe, expect, it } from 'vitest';
import type { IncidentRecord } from '../../../functions/runbook/incident.ts';
import { failedNotice, pageNotice, publishInput } from '../../../functions/runbook/messages.ts';
import { registerSecret } from '../../../shared/redact.ts';
import type { RunbookInput } from '../../../shared/runbook/types.ts';
import { target } from './fixtures.ts';

const input: RunbookInput = {
  incidentId: 'pgw-orders-20261126-1',
  requestId: 'r',
  target: target(),
  trigger: {
    kind: 'probe',
    summary: '3 consecutive probes failed: auth_failed',
    observedAt: '2026-11-26T10:00:00Z',
    category: 'auth_failed',
  },
  settings: {
    escalateAfterSeconds: 1_200,
    recheckSeconds: 60,
    maxDurationSeconds: 14_400,
    dashboardUrl: 'https://console.aws.amazon.com/cloudwatch/home#dashboards:name=pgwarden',
    consoleUrl: 'https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1',
  },
};

const record: IncidentRecord = {
  incidentId: input.incidentId,
  targetId: 'orders',
  status: 'open',
  openedAt: '2026-11-26T10:00:00.000Z',
  escalateAt: '2026-11-26T10:20:00.000Z',
  endAt: '2026-11-26T14:00:00.000Z',
  cycle: 21,
  steps: [
    {
      node: 'running',
      result: 'ok',
      detail: 'RDS instance orders is available',
      at: '2026-11-26T10:20:00.000Z',
    },
    {
      node: 'auth',
      result: 'fault',
      detail: 'auth_failed (28P01): password authentication failed for user "mon"',
      at: '2026-11-26T10:20:00.000Z',
    },
  ],
  found: ['auth: auth_failed (28P01): password authentication failed for user "mon"'],
  actions: [],
  timeline: [{ at: '2026-11-26T10:00:00.000Z', text: 'opened by probe' }],
  decision: 'page',
  pressure: { active: false },
  waitSeconds: 60,
  paged: false,
};

describe('runbook messages', () => {
  it('pages with severity, target, what was found, tried and still wrong, and the links', () => {
    const notice = pageNotice(
      input,
      record,
      Date.parse('2026-11-26T10:20:00Z'),
      'arn:aws:states:eu-west-1:123456789012:execution:pgwarden-runbook:pgw-orders-20261126-1',
    );
    expect(notice.topic).toBe('pages');
    expect(notice.subject).toBe('[pgwarden] CRITICAL orders unresolved after 20m: auth');
    for (const heading of [
      'SEVERITY: critical',
      'What was found:',
      'What was tried:',
      'nothing was changed',
      'What is still wrong:',
      'FAULT auth',
      'Evidence:',
      'Dashboard: https://',
      'Execution: https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states',
    ]) {
      expect(notice.text).toContain(heading);
    }
  });

  it('publishes text to email and a JSON document to machines, with filterable attributes', () => {
    const notice = pageNotice(input, record, Date.parse('2026-11-26T10:20:00Z'));
    const published = publishInput('arn:aws:sns:eu-west-1:123456789012:pgwarden-pages', notice);
    expect(published.MessageStructure).toBe('json');
    const perProtocol = JSON.parse(published.Message ?? '{}');
    expect(perProtocol.email).toBe(notice.text);
    expect(perProtocol.default).toBe(notice.text);
    expect(JSON.parse(perProtocol.sqs)).toMatchObject({
      kind: 'page',
      severity: 'critical',
      incidentId: input.incidentId,
      target: 'orders',
      stillWrong: ['auth'],
    });
    expect(published.MessageAttributes?.['pgwarden.kind']?.StringValue).toBe('page');
    expect(published.MessageAttributes?.['pgwarden.severity']?.StringValue).toBe('critical');
  });

  it('keeps subjects within the SNS limits', () => {
    const long = { ...input, target: target({ id: 'a'.repeat(40) }) };
    const notice = pageNotice(
      long,
      {
        ...record,
        steps: Array.from({ length: 6 }, () => record.steps[1] as IncidentRecord['steps'][number]),
      },
      Date.now(),
    );
    expect(notice.subject.length).toBeLessThanOrEqual(100);
    expect(notice.subject).toMatch(/^[\x20-\x7E]+$/);
  });

  it('never carries a registered secret', () => {
    registerSecret('hunter2-secret-value');
    const leaky = { ...record, found: ['auth: failed with password hunter2-secret-value'] };
    const published = publishInput(
      'arn:aws:sns:eu-west-1:123456789012:pgwarden-pages',
      pageNotice(input, leaky, Date.now()),
    );
    expect(JSON.stringify(published)).not.toContain('hunter2-secret-value');
  });

  it('sends a runbook failure to the pages topic unless on-call already has the incident', () => {
    expect(failedNotice(input, record, { Error: 'TypeError', Cause: 'boom' }).topic).toBe('pages');
    expect(failedNotice(input, { ...record, paged: true }, { Error: 'TypeError', Cause: 'boom' }).topic).toBe(
      'notifications',
    );
  });
});
