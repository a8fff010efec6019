import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { alarmArnPattern } from '../names.ts';

/** Who receives one topic's messages. */
export interface TopicSubscribers {
  /** Email addresses subscribed to the topic (each confirms by mail). @default none */
  readonly emails?: readonly string[];
  /** HTTPS endpoints subscribed to the topic (each confirms the subscription). @default none */
  readonly httpsEndpoints?: readonly string[];
}

/** Who hears from each topic, and how long its key outlives the stack. */
export interface NotificationsProps {
  /** On-call: escalations, dead-monitor and outage alarms. @default no subscribers */
  readonly pages?: TopicSubscribers;
  /** Everyone: incident opened and resolved, warnings. @default no subscribers */
  readonly notifications?: TopicSubscribers;
  /** What happens to the topics' KMS key when the stack is deleted. @default RemovalPolicy.RETAIN */
  readonly keyRemovalPolicy?: RemovalPolicy;
  /**
   * The alarms CloudWatch may publish for (`aws:SourceArn`), as an ARN pattern.
   * @default alarmArnPattern(): every alarm this stack names
   */
  readonly alarmArnPattern?: string;
}

/**
 * The two SNS topics pgwarden publishes to — `pages` for on-call, `notifications` for everyone —
 * encrypted with a customer-managed key, reachable only over TLS, and open to this stack's CloudWatch
 * alarms (the topic policy and the key policy both allow them).
 */
export class Notifications extends Construct {
  /** The topics' encryption key. */
  public readonly key: kms.Key;
  /** On-call: what must wake someone up. */
  public readonly pages: sns.Topic;
  /** Everyone: what happened, what was done, what is resolved. */
  public readonly notifications: sns.Topic;
  private readonly alarmConditions: Record<string, Record<string, string>>;

  constructor(scope: Construct, id: string, props: NotificationsProps = {}) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'pgwarden SNS topics (pages and notifications)',
      enableKeyRotation: true,
      removalPolicy: props.keyRemovalPolicy ?? RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(7),
    });
    // A topic policy replaces SNS's default policy, so CloudWatch may publish only what it allows
    // here; an encrypted topic also needs CloudWatch to use the key. Both grants are confined to this
    // stack's alarms in this account (the confused-deputy conditions CloudWatch sends with its calls:
    // aws:SourceArn is the alarm's ARN, aws:SourceAccount its account).
    this.alarmConditions = {
      StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
      ArnLike: { 'aws:SourceArn': props.alarmArnPattern ?? alarmArnPattern(this) },
    };
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowThisStacksAlarmsToEncrypt',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: this.alarmConditions,
      }),
    );

    this.pages = this.topic('Pages', 'pgwarden pages (on-call)', props.pages);
    this.notifications = this.topic('Notifications', 'pgwarden notifications', props.notifications);
  }

  private topic(id: string, displayName: string, subscribers: TopicSubscribers = {}): sns.Topic {
    const topic = new sns.Topic(this, id, { displayName, masterKey: this.key, enforceSSL: true });
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowThisStacksAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: this.alarmConditions,
      }),
    );
    for (const email of subscribers.emails ?? [])
      topic.addSubscription(new subscriptions.EmailSubscription(email));
    for (const url of subscribers.httpsEndpoints ?? [])
      topic.addSubscription(
        new subscriptions.UrlSubscription(url, { protocol: sns.SubscriptionProtocol.HTTPS }),
      );
    return topic;
  }
}
