/**
 * Who a topic's messages reach: its subscriptions, confirmed or still waiting for someone to click the
 * link AWS emailed them (until then SNS delivers nothing to them), and whether a subscription's filter
 * policy lets a given message through.
 */
import {
  GetSubscriptionAttributesCommand,
  type GetSubscriptionAttributesCommandOutput,
  ListSubscriptionsByTopicCommand,
  type ListSubscriptionsByTopicCommandOutput,
} from '@aws-sdk/client-sns';
import { call, type Sender } from './aws.ts';
import { type Check, fail, ok, warn } from './report.ts';

export interface Subscription {
  /** An ARN once confirmed; `PendingConfirmation` until then (SNS's own marker). */
  arn: string;
  protocol: string;
  endpoint: string;
}

export async function listSubscriptions(sns: Sender, topicArn: string): Promise<Subscription[]> {
  const out: Subscription[] = [];
  let token: string | undefined;
  do {
    const page: ListSubscriptionsByTopicCommandOutput = await call(
      sns,
      new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, ...(token ? { NextToken: token } : {}) }),
    );
    for (const s of page.Subscriptions ?? [])
      out.push({ arn: s.SubscriptionArn ?? '', protocol: s.Protocol ?? '', endpoint: s.Endpoint ?? '' });
    token = page.NextToken;
  } while (token);
  return out;
}

export const isConfirmed = (s: Subscription) => s.arn.startsWith('arn:');

/**
 * A subscription as people can be shown it. An HTTPS endpoint's path and query often carry an
 * integration key (PagerDuty, Opsgenie): only its host is shown.
 */
export function describeSubscription(s: Subscription): string {
  if (s.protocol === 'http' || s.protocol === 'https') {
    try {
      return `${s.protocol} ${new URL(s.endpoint).host}`;
    } catch {
      return `${s.protocol} endpoint`;
    }
  }
  return `${s.protocol} ${s.endpoint}`;
}

/** Judges a topic's subscriptions: at least one confirmed; pending ones named. */
export function subscriptionsCheck(
  id: string,
  topic: 'pages' | 'notifications',
  topicArn: string,
  subscriptions: readonly Subscription[],
  required: boolean,
): Check {
  const confirmed = subscriptions.filter(isConfirmed);
  const pending = subscriptions.filter((s) => !isConfirmed(s));
  const who = topic === 'pages' ? 'on-call' : 'anyone';
  const pendingText = pending.length
    ? `; waiting for confirmation (SNS delivers nothing to them yet): ${pending.map(describeSubscription).join(', ')}`
    : '';
  const confirmFix = `Each pending address must open the "AWS Notification - Subscription Confirmation" email and click its link; to send it again: aws sns subscribe --topic-arn ${topicArn} --protocol email --notification-endpoint ADDRESS.`;
  if (confirmed.length === 0) {
    const summary = `no confirmed subscription on the ${topic} topic: ${topic === 'pages' ? 'pages' : 'notifications'} reach nobody${pendingText}`;
    const fix = pending.length
      ? confirmFix
      : `Add ${who === 'on-call' ? 'on-call' : 'the team'} to notifications.${topic}.emails (or .httpsEndpoints) in the configuration, deploy again, and confirm the subscription.`;
    return required ? fail(id, summary, fix) : warn(id, summary, fix);
  }
  const summary = `${confirmed.length} confirmed subscription(s) on the ${topic} topic: ${confirmed.map(describeSubscription).join(', ')}${pendingText}`;
  return pending.length ? warn(id, summary, confirmFix) : ok(id, summary);
}

/** Whether a subscription's filter policy lets a message with these attributes through. */
export type FilterVerdict = 'receives' | 'filtered-out' | 'unknown';

/**
 * Reads a subscription's filter policy and judges it against `attributes`. Only the exact-string form
 * (`{ "pgwarden.kind": ["page", "test"] }`) is judged; anything else (prefixes, numeric ranges, a
 * policy on the message body) is `unknown`.
 */
export async function filterVerdict(
  sns: Sender,
  subscriptionArn: string,
  attributes: Readonly<Record<string, string>>,
): Promise<FilterVerdict> {
  let out: GetSubscriptionAttributesCommandOutput;
  try {
    out = await call(sns, new GetSubscriptionAttributesCommand({ SubscriptionArn: subscriptionArn }));
  } catch {
    return 'unknown';
  }
  const policy = out.Attributes?.FilterPolicy;
  if (!policy) return 'receives';
  if ((out.Attributes?.FilterPolicyScope ?? 'MessageAttributes') !== 'MessageAttributes') return 'unknown';
  return judgeFilterPolicy(policy, attributes);
}

/** The exact-string subset of SNS filter policies: every key's list must hold the attribute's value. */
export function judgeFilterPolicy(
  policy: string,
  attributes: Readonly<Record<string, string>>,
): FilterVerdict {
  let parsed: unknown;
  try {
    parsed = JSON.parse(policy);
  } catch {
    return 'unknown';
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return 'unknown';
  let verdict: FilterVerdict = 'receives';
  for (const [key, rule] of Object.entries(parsed as Record<string, unknown>)) {
    if (key === '$or' || !Array.isArray(rule) || !rule.every((v) => typeof v === 'string')) return 'unknown';
    const value = attributes[key];
    if (value === undefined || !rule.includes(value)) verdict = 'filtered-out';
  }
  return verdict;
}
