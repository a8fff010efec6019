import { describe, expect, it } from 'vitest';
import {
  failedNotice,
  pageNotice,
  publishInput,
  resolvedNotice,
  testNotice,
} from '../../../functions/runbook/messages.ts';
import { registerSecret } from '../../../shared/redact.ts';
import { addAction, type IncidentRecord } from '../../../shared/runbook/record.ts';
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
  it('pages with the target, the cause and what was tried on its first three lines, then the details', () => {
    const notice = pageNotice(
      input,
      record,
      Date.parse('2026-11-26T10:20:00Z'),
      'arn:aws:states:eu-west-1:123456789012:execution:pgwarden-runbook:pgw-orders-20261126-1',
    );
    expect(notice.topic).toBe('pages');
    expect(notice.subject).toBe('[pgwarden] CRITICAL orders unresolved after 20m: auth');
    const [target, cause, tried] = notice.text.split('\n');
    expect(target).toBe(
      'Target: orders (mon@orders.abc.eu-west-1.rds.amazonaws.com:5432/orders), critical: unhealthy for 20m and pgwarden could not resolve it',
    );
    expect(cause).toBe('Cause: auth: auth_failed (28P01): password authentication failed for user "mon"');
    expect(tried).toBe('Tried: nothing: no remediation applies, or the policy allowed none');
    for (const heading of [
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

  it('collapses a repeated action into one line with a count and the time span', () => {
    const stuck: IncidentRecord = structuredClone({ ...record, actions: [] });
    for (let i = 0; i < 14; i++) {
      addAction(stuck, {
        at: new Date(Date.parse('2026-11-26T10:05:44Z') + i * 10_000).toISOString(),
        kind: 'terminate_blockers',
        ok: true,
        summary: 'found no session the policy allows terminating',
        count: 0,
      });
    }
    expect(stuck.actions).toHaveLength(1);
    const notice = pageNotice(input, stuck, Date.parse('2026-11-26T10:20:00Z'));
    const line = 'found no session the policy allows terminating ×14, 10:05:44–10:07:54';
    expect(notice.text.split('\n')[2]).toBe(`Tried: ${line}`);
    expect(notice.text).toContain(`\n  ${line}\n`);
  });

  it('names a crash-restart as the cause, whichever trigger opened the incident', () => {
    const outage = {
      ...input,
      trigger: {
        kind: 'probe' as const,
        summary: '3 consecutive probes failed: starting_up',
        observedAt: '2026-11-26T10:00:01Z',
        category: 'starting_up' as const,
      },
    };
    const crashed: IncidentRecord = {
      ...record,
      crashRestarts: ['2026-11-26T10:00:02.000Z'],
      steps: [record.steps[0] as IncidentRecord['steps'][number]],
      found: ['crash-restart: the server crash-restarted at 2026-11-26T10:00:02.000Z'],
    };
    const resolved = resolvedNotice(outage, crashed, Date.parse('2026-11-26T10:00:30Z'), undefined);
    expect(resolved.subject).toBe(
      '[pgwarden] resolved: orders: crash-restart at 10:00:02; healthy again after 30s',
    );
    expect(resolved.text).toContain(
      'Cause: crash-restart at 10:00:02: the background processes restarted and every session was reset',
    );
    const recurring = { ...crashed, crashRestarts: ['2026-11-26T10:00:02.000Z', '2026-11-26T10:04:00.000Z'] };
    expect(pageNotice(outage, recurring, Date.parse('2026-11-26T10:20:00Z')).text.split('\n')[1]).toBe(
      'Cause: crash-restarts ×2 (10:00:02, 10:04:00): the server keeps crashing, every session reset each time',
    );
  });

  it('resolves with what is still worth a look when only warnings remain', () => {
    const warned: IncidentRecord = {
      ...record,
      steps: [
        {
          node: 'queries',
          result: 'fault',
          severity: 'warning',
          detail: 'a session has been idle in transaction for 12m; the policy allows terminating none',
          at: '2026-11-26T10:12:00.000Z',
        },
      ],
    };
    const notice = resolvedNotice(input, warned, Date.parse('2026-11-26T10:12:00Z'), undefined);
    expect(notice.subject).toBe(
      '[pgwarden] resolved: orders: nothing left to act on after 12m; worth a look: queries',
    );
    expect(notice.text.split('\n').slice(0, 2)).toEqual([
      'orders: nothing is left that pgwarden would act on or page for, after 12m. Still worth a look:',
      '  - queries: a session has been idle in transaction for 12m; the policy allows terminating none',
    ]);
    expect(notice.data).toMatchObject({ worthALook: [{ node: 'queries' }] });
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

  it('composes a test page like a real page: same structure and attributes, marked TEST everywhere it shows', () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:pgwarden-pages';
    const test = testNotice({
      topic: 'pages',
      deployment: 'stack PgWarden in eu-west-1',
      at: '2026-11-26T10:20:00.123Z',
      dashboardUrl: 'https://console.aws.amazon.com/cloudwatch/home#dashboards:name=pgwarden',
    });
    const real = publishInput(arn, pageNotice(input, record, Date.parse('2026-11-26T10:20:00Z')));
    const published = publishInput(arn, test);
    expect(Object.keys(published).sort()).toEqual(Object.keys(real).sort());
    expect(Object.keys(published.MessageAttributes ?? {}).sort()).toEqual(
      Object.keys(real.MessageAttributes ?? {}).sort(),
    );
    expect(Object.keys(JSON.parse(published.Message ?? '{}')).sort()).toEqual(
      Object.keys(JSON.parse(real.Message ?? '{}')).sort(),
    );
    expect(published.Subject).toBe('[pgwarden] TEST page from stack PgWarden in eu-west-1: nothing is wrong');
    // A page's severity, so a subscription that filters on it lets the test through as it would a page.
    expect(published.MessageAttributes?.['pgwarden.severity']?.StringValue).toBe('critical');
    expect(published.MessageAttributes?.['pgwarden.kind']?.StringValue).toBe('test');
    const text = JSON.parse(published.Message ?? '{}').email as string;
    expect(text.split('\n')[0]).toBe(
      'Target: none. This is a TEST page from pgwarden (stack PgWarden in eu-west-1); no database is affected.',
    );
    expect(text).toContain(
      'Dashboard: https://console.aws.amazon.com/cloudwatch/home#dashboards:name=pgwarden',
    );
    expect(JSON.parse(JSON.parse(published.Message ?? '{}').sqs)).toMatchObject({
      kind: 'test',
      test: true,
      severity: 'critical',
      incidentId: 'test-20261126T102000Z',
    });
  });

  it('sends a test notification with the notifications topic’s severity', () => {
    const notice = testNotice({
      topic: 'notifications',
      deployment: 'local system',
      at: '2026-11-26T10:20:00Z',
    });
    expect(notice.subject).toBe('[pgwarden] TEST notification from local system: nothing is wrong');
    expect(notice.severity).toBe('info');
  });
});
