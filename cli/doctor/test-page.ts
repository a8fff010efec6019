/**
 * `pgwarden test-page --stack`: a clearly marked test message through a deployed topic, composed and
 * published as the runbook's messages are (the same subject line rules, body, JSON document and
 * attributes), so on-call can see their phone ring before a real incident does it.
 */
import { PublishCommand, type PublishCommandOutput } from '@aws-sdk/client-sns';
import { publishInput, type Topic, testNotice } from '../../functions/runbook/messages.ts';
import { PgWardenError } from '../../shared/errors.ts';
import { type AwsClients, awsErrorText, awsFix, call } from './aws.ts';
import { describeDeployment, OUTPUTS } from './deployment.ts';
import {
  describeSubscription,
  type FilterVerdict,
  filterVerdict,
  isConfirmed,
  listSubscriptions,
} from './subscriptions.ts';

export interface TestPageResult {
  /** True when the message was published and at least one confirmed subscription should receive it. */
  ok: boolean;
  topic: Topic;
  topicArn: string;
  messageId: string;
  subject: string;
  /** Confirmed subscriptions whose filter policy (if any) lets the test through. */
  receivers: string[];
  /** Subscriptions still waiting for confirmation: they receive nothing. */
  pending: string[];
  /** Confirmed subscriptions whose filter policy drops the test message. */
  filteredOut: string[];
  /** Confirmed subscriptions whose filter policy pgwarden cannot judge. */
  unknown: string[];
}

/** The test page could not be sent at all; the message says why and what to do. */
export class TestPageError extends PgWardenError {
  override name = 'TestPageError';
}

/** Who a published message reaches, by each confirmed subscription's filter policy. */
export async function receiversOf(
  clients: Pick<AwsClients, 'sns'>,
  topicArn: string,
  attributes: Readonly<Record<string, string>>,
) {
  const subscriptions = await listSubscriptions(clients.sns, topicArn);
  const verdicts: Record<FilterVerdict, string[]> = { receives: [], 'filtered-out': [], unknown: [] };
  for (const s of subscriptions.filter(isConfirmed))
    verdicts[await filterVerdict(clients.sns, s.arn, attributes)].push(describeSubscription(s));
  return {
    receivers: verdicts.receives,
    filteredOut: verdicts['filtered-out'],
    unknown: verdicts.unknown,
    pending: subscriptions.filter((s) => !isConfirmed(s)).map(describeSubscription),
  };
}

export async function sendTestPage(
  stackName: string,
  topic: Topic,
  clients: AwsClients,
  now: () => number = Date.now,
): Promise<TestPageResult> {
  let deployment: Awaited<ReturnType<typeof describeDeployment>>;
  try {
    deployment = await describeDeployment(stackName, clients);
  } catch (error) {
    throw new TestPageError(
      `could not read stack ${stackName} in ${clients.region}: ${awsErrorText(error)}. ${awsFix(error, 'cloudformation:DescribeStacks')}`,
    );
  }
  if (!deployment)
    throw new TestPageError(
      `no stack named ${stackName} in ${clients.region}. Name the stack and region pgwarden is deployed in: --stack <name> --region <region>.`,
    );
  const output = topic === 'pages' ? OUTPUTS.pagesTopic : OUTPUTS.notificationsTopic;
  const topicArn = deployment.outputs[output];
  if (!topicArn)
    throw new TestPageError(
      `stack ${stackName} has no ${output} output: it is not a pgwarden stack, or its deployment never finished.`,
    );
  const dashboardUrl = deployment.outputs[OUTPUTS.dashboard];
  const notice = testNotice({
    topic,
    deployment: `stack ${stackName} in ${clients.region}`,
    at: new Date(now()).toISOString(),
    ...(dashboardUrl ? { dashboardUrl } : {}),
  });
  const input = publishInput(topicArn, notice);
  const attributes = Object.fromEntries(
    Object.entries(input.MessageAttributes ?? {}).map(([key, value]) => [key, value.StringValue ?? '']),
  );
  let audience: Awaited<ReturnType<typeof receiversOf>>;
  try {
    audience = await receiversOf(clients, topicArn, attributes);
  } catch (error) {
    throw new TestPageError(
      `could not list the subscriptions of ${topicArn}: ${awsErrorText(error)}. ${awsFix(error, 'sns:ListSubscriptionsByTopic and sns:GetSubscriptionAttributes')}`,
    );
  }
  let published: PublishCommandOutput;
  try {
    published = await call(clients.sns, new PublishCommand(input));
  } catch (error) {
    throw new TestPageError(
      `could not publish to ${topicArn}: ${awsErrorText(error)}. ${awsFix(error, 'sns:Publish on the topic and kms:GenerateDataKey* and kms:Decrypt on its key')}`,
    );
  }
  return {
    ok: audience.receivers.length > 0 || audience.unknown.length > 0,
    topic,
    topicArn,
    messageId: published.MessageId ?? '',
    subject: notice.subject,
    ...audience,
  };
}
