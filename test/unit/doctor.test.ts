/**
 * The judgements `pgwarden doctor` and `pgwarden test-page` make from what AWS answers, on the answers'
 * documented shapes: the parts the emulator cannot produce (a pending subscription, the account's Lambda
 * settings) are proved here, the calls themselves in test/aws/doctor.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, parsePolicyDocument } from '../../cli/doctor/iam-policy.ts';
import { doctorReport, exitCodeOf, fail, ok, renderReport, warn } from '../../cli/doctor/report.ts';
import { concurrencyCheck, concurrencyNeed } from '../../cli/doctor/stack.ts';
import {
  describeSubscription,
  judgeFilterPolicy,
  type Subscription,
  subscriptionsCheck,
} from '../../cli/doctor/subscriptions.ts';
import { plain } from '../../cli/format.ts';
import type { Io } from '../../cli/io.ts';
import { main } from '../../cli/main.ts';

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:PgWarden-TopicsPagesBBC00362-X';

/** A subscription as ListSubscriptionsByTopic returns it: a pending one has no ARN yet. */
const sub = (protocol: string, endpoint: string, confirmed = true): Subscription => ({
  arn: confirmed ? `${TOPIC}:${Math.random().toString(16).slice(2)}` : 'PendingConfirmation',
  protocol,
  endpoint,
});

describe('subscriptionsCheck', () => {
  it('fails the pages topic with no confirmed subscription and names the pending ones', () => {
    const check = subscriptionsCheck(
      'topic.pages',
      'pages',
      TOPIC,
      [sub('email', 'oncall@example.com', false)],
      true,
    );
    expect(check.status).toBe('fail');
    expect(check.summary).toContain('pages reach nobody');
    expect(check.summary).toContain(
      'waiting for confirmation (SNS delivers nothing to them yet): email oncall@example.com',
    );
    expect(check.fix).toContain(`aws sns subscribe --topic-arn ${TOPIC} --protocol email`);
  });

  it('only warns about the notifications topic, and about a pending subscription beside a confirmed one', () => {
    expect(subscriptionsCheck('topic.notifications', 'notifications', TOPIC, [], false).status).toBe('warn');
    const mixed = subscriptionsCheck(
      'topic.pages',
      'pages',
      TOPIC,
      [sub('email', 'a@example.com'), sub('email', 'b@example.com', false)],
      true,
    );
    expect(mixed.status).toBe('warn');
    expect(mixed.summary).toMatch(
      /^1 confirmed subscription\(s\) on the pages topic: email a@example.com; waiting/,
    );
  });

  it('passes with every subscription confirmed', () => {
    expect(subscriptionsCheck('topic.pages', 'pages', TOPIC, [sub('email', 'a@example.com')], true)).toEqual(
      ok('topic.pages', '1 confirmed subscription(s) on the pages topic: email a@example.com'),
    );
  });

  it('shows only the host of an HTTPS endpoint, whose path may hold an integration key', () => {
    const shown = describeSubscription(
      sub('https', 'https://events.pagerduty.com/integration/0123abcd/enqueue'),
    );
    expect(shown).toBe('https events.pagerduty.com');
  });
});

describe('judgeFilterPolicy', () => {
  const test = { 'pgwarden.kind': 'test', 'pgwarden.severity': 'critical' };

  it('lets a message through when every key lists its value', () => {
    expect(judgeFilterPolicy('{"pgwarden.severity":["critical"]}', test)).toBe('receives');
  });

  it('drops a message a key does not list', () => {
    expect(judgeFilterPolicy('{"pgwarden.kind":["page"]}', test)).toBe('filtered-out');
  });

  it('says unknown for what it cannot judge', () => {
    expect(judgeFilterPolicy('{"pgwarden.kind":[{"prefix":"te"}]}', test)).toBe('unknown');
    expect(judgeFilterPolicy('not json', test)).toBe('unknown');
  });
});

describe('IAM policy evaluation', () => {
  // The probe role's statements as the stack writes them: a secret named without its suffix is
  // matched with Secrets Manager's six random characters.
  const document = parsePolicyDocument(
    encodeURIComponent(
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Effect: 'Allow', Resource: '*' },
          {
            Sid: 'ReadTargetSecrets',
            Action: 'secretsmanager:GetSecretValue',
            Effect: 'Allow',
            Resource: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/billing-??????',
          },
        ],
      }),
    ),
  );
  const secret = (suffix: string) =>
    `arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/billing${suffix}`;

  it('allows the action on a secret the pattern matches, whatever the case of the action', () => {
    expect(evaluate([document], 'secretsmanager:GetSecretValue', secret('-AbCdEf'))).toBe('allowed');
    expect(evaluate([document], 'SecretsManager:getSecretValue', secret('-AbCdEf'))).toBe('allowed');
  });

  it('does not allow another secret, or the same name with another suffix length', () => {
    expect(evaluate([document], 'secretsmanager:GetSecretValue', secret('-old-AbCdEf'))).toBe('not-allowed');
    expect(evaluate([document], 'secretsmanager:GetSecretValue', secret('-AbCdE'))).toBe('not-allowed');
    expect(evaluate([document], 'kms:Decrypt', secret('-AbCdEf'))).toBe('not-allowed');
  });

  it('lets an explicit deny win over an allow', () => {
    const deny = { Statement: [{ Effect: 'Deny', Action: 'secretsmanager:*', Resource: '*' }] };
    expect(evaluate([document, deny], 'secretsmanager:GetSecretValue', secret('-AbCdEf'))).toBe('denied');
  });
});

describe('lambda.concurrency', () => {
  it('sizes the need from the fleet and the monitor’s and sweep’s concurrency', () => {
    expect(concurrencyNeed(2, 10, 5)).toEqual({ monitor: 3, total: 3 + 1 + 2 + 1 + 2 });
    expect(concurrencyNeed(40, 10, 5)).toEqual({ monitor: 11, total: 11 + 1 + 5 + 1 + 2 });
  });

  it('fails a new account’s quota of 10 for a fleet the monitor probes 10 at a time', () => {
    const check = concurrencyCheck({ limit: 10, unreserved: 10 }, concurrencyNeed(40, 10, 5));
    expect(check.status).toBe('fail');
    expect(check.summary).toContain('throttled probes count as failed probes');
    expect(check.fix).toContain('Service Quotas');
  });

  it('warns when the monitor fits but a busy moment does not, and passes a usual account', () => {
    expect(concurrencyCheck({ limit: 15, unreserved: 15 }, concurrencyNeed(40, 10, 5)).status).toBe('warn');
    expect(concurrencyCheck({ limit: 1000, unreserved: 900 }, concurrencyNeed(40, 10, 5)).status).toBe('ok');
  });
});

describe('the doctor report', () => {
  it('is ok and exits 0 with warnings only; exits 1 when a check fails', () => {
    const warned = doctorReport([ok('a', 'fine'), warn('b', 'meh', 'do x')]);
    expect(warned.ok).toBe(true);
    expect(exitCodeOf(warned)).toBe(0);
    const failed = doctorReport([ok('a', 'fine'), fail('c', 'broken', 'do y')]);
    expect(failed).toEqual({
      ok: false,
      checks: [
        { id: 'a', status: 'ok', summary: 'fine', fix: null },
        { id: 'c', status: 'fail', summary: 'broken', fix: 'do y' },
      ],
    });
    expect(exitCodeOf(failed)).toBe(1);
  });

  it('shows outside text with its control characters escaped, and the fix under the check', () => {
    const report = doctorReport([fail('probe.x', 'server said \u001b[31mred\u001b[0m', 'GRANT x TO y;')]);
    const text = renderReport('pgwarden doctor', report, plain);
    expect(text).toContain('FAIL  probe.x');
    expect(text).toContain('server said \\x1b[31mred\\x1b[0m');
    expect(text).toContain('fix: GRANT x TO y;');
    expect(text).not.toContain('\u001b');
  });
});

function capture(): Io & { stdout(): string; stderr(): string } {
  let out = '';
  let err = '';
  return {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env: {},
    isTty: false,
    stdout: () => out,
    stderr: () => err,
  };
}

describe('doctor and test-page usage', () => {
  it.each([
    [['doctor', '--url', 'postgres://u@db/x', '--stack', 'PgWarden'], '--url --stack: are alternatives'],
    [['doctor', '--region', 'eu-west-1'], '--region: applies only to --stack'],
    [['doctor', '--stack', 'Pg Warden'], '--stack: is not a CloudFormation stack name'],
    [['doctor', '--stack', 'PgWarden', '--region', 'Ireland'], '--region: is not an AWS region'],
    [['test-page', '--stack', 'PgWarden', '--topic', 'oncall'], '--topic: is not a pgwarden topic'],
    [['test-page', '--stack', 'PgWarden', '--local'], '--stack --local: are alternatives'],
  ])('exits 2 for %j, naming the flag and the fix', async (argv, message) => {
    const io = capture();
    expect(await main(argv, io)).toBe(2);
    expect(io.stderr()).toContain(message);
  });
});
