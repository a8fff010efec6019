import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

/** Who receives one topic's messages. */
export interface TopicSubscribers {
  /** @default none */
  readonly emails?: readonly string[];
  /** @default none */
  readonly httpsEndpoints?: readonly string[];
}

export interface NotificationsProps {
  /** On-call: escalations, dead-monitor and outage alarms. @default no subscribers */
  readonly pages?: TopicSubscribers;
  /** Everyone: incident opened and resolved, warnings. @default no subscribers */
  readonly notifications?: TopicSubscribers;
  /** What happens to the topics' KMS key when the stack is deleted. @default RemovalPolicy.RETAIN */
  readonly keyRemovalPolicy?: RemovalPolicy;
}

/**
 * The two SNS topics pgwarden publishes to — `pages` for on-call, `notifications` for everyone —
 * encrypted with a customer-managed key that CloudWatch alarms may use, reachable only over TLS.
 */
export class Notifications extends Construct {
  /** The topics' encryption key. */
  public readonly key: kms.Key;
  /** On-call: what must wake someone up. */
  public readonly pages: sns.Topic;
  /** Everyone: what happened, what was done, what is resolved. */
  public readonly notifications: sns.Topic;

  constructor(scope: Construct, id: string, props: NotificationsProps = {}) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'pgwarden SNS topics (pages and notifications)',
      enableKeyRotation: true,
      removalPolicy: props.keyRemovalPolicy ?? RemovalPolicy.RETAIN,
      pendingWindow: Duration.days(7),
    });
    // CloudWatch publishes alarm notifications to an encrypted topic as its own service principal and
    // needs the data key to do so. This is the statement the SNS documentation gives, deliberately
    // without extra conditions: a key policy CloudWatch cannot satisfy loses pages without an error.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );

    this.pages = this.topic('Pages', 'pgwarden pages (on-call)', props.pages);
    this.notifications = this.topic('Notifications', 'pgwarden notifications', props.notifications);
  }

  private topic(id: string, displayName: string, subscribers: TopicSubscribers = {}): sns.Topic {
    const topic = new sns.Topic(this, id, { displayName, masterKey: this.key, enforceSSL: true });
    for (const email of subscribers.emails ?? [])
      topic.addSubscription(new subscriptions.EmailSubscription(email));
    for (const url of subscribers.httpsEndpoints ?? [])
      topic.addSubscription(
        new subscriptions.UrlSubscription(url, { protocol: sns.SubscriptionProtocol.HTTPS }),
      );
    return topic;
  }
}
