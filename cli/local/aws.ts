/**
 * The AWS services pgwarden calls, answered on this machine for local mode (and the workflow tests):
 * Secrets Manager holds the local password so it never travels in payloads, SNS delivers pages to the
 * terminal and an outbox, RDS reports the embedded server as an instance (status, log lines, events),
 * CloudWatch keeps metrics in memory. Each answers `send(command)` like the SDK client it stands in for.
 */
import { GetMetricDataCommand, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBLogFilesCommand,
  DescribeEventsCommand,
  DownloadDBLogFilePortionCommand,
  StartDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { PublishCommand } from '@aws-sdk/client-sns';
import type { Clock } from '../../shared/clock.ts';

function awsError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

function unsupported(service: string, command: unknown): never {
  throw awsError(
    'UnsupportedOperation',
    `the local ${service} does not implement ${(command as object)?.constructor?.name}`,
  );
}

export class LocalSecretsManager {
  private readonly secrets = new Map<string, string>();

  put(secretId: string, value: Record<string, string> | string): void {
    this.secrets.set(secretId, typeof value === 'string' ? value : JSON.stringify(value));
  }

  async send(command: unknown): Promise<unknown> {
    if (command instanceof GetSecretValueCommand) {
      const value = this.secrets.get(command.input.SecretId ?? '');
      if (value === undefined)
        throw awsError('ResourceNotFoundException', `Secrets Manager can't find the specified secret.`);
      return { SecretString: value, $metadata: {} };
    }
    return unsupported('Secrets Manager', command);
  }
}

export interface PublishedMessage {
  topicArn: string;
  topic: string;
  subject: string;
  /** The plain-text body (what email subscribers read). */
  message: string;
  /** The structured document machine subscribers receive. */
  document: unknown;
  attributes: Record<string, string>;
  at: number;
}

export class LocalSns {
  readonly published: PublishedMessage[] = [];
  private readonly clock: Clock;
  private readonly onPublish: ((message: PublishedMessage) => void | Promise<void>) | undefined;

  constructor(clock: Clock, onPublish?: (message: PublishedMessage) => void | Promise<void>) {
    this.clock = clock;
    this.onPublish = onPublish;
  }

  async send(command: unknown): Promise<unknown> {
    if (command instanceof PublishCommand) {
      const input = command.input;
      const topicArn = input.TopicArn ?? '';
      let message = input.Message ?? '';
      let document: unknown = message;
      if (input.MessageStructure === 'json') {
        const perProtocol = JSON.parse(message) as Record<string, string>;
        message = perProtocol.email ?? perProtocol.default ?? '';
        document = perProtocol.sqs ? JSON.parse(perProtocol.sqs) : perProtocol.default;
      }
      const attributes = Object.fromEntries(
        Object.entries(input.MessageAttributes ?? {}).map(([key, value]) => [key, value.StringValue ?? '']),
      );
      const published: PublishedMessage = {
        topicArn,
        topic: topicArn.slice(topicArn.lastIndexOf(':') + 1),
        subject: input.Subject ?? '',
        message,
        document,
        attributes,
        at: this.clock.now(),
      };
      this.published.push(published);
      await this.onPublish?.(published);
      return { MessageId: `local-${this.published.length}`, $metadata: {} };
    }
    return unsupported('SNS', command);
  }
}

export interface LocalInstance {
  id: string;
  /** The RDS status to report ('available', 'stopped', 'rebooting', ...). */
  status(): string;
  /** Recent server log lines, newest last. */
  logLines(): readonly string[];
  /** What StartDBInstance does locally. */
  start?(): Promise<void>;
}

export class LocalRds {
  readonly events: Array<{ at: number; sourceId: string; message: string; eventId?: string }> = [];
  private readonly instances = new Map<string, LocalInstance>();
  private readonly clock: Clock;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  add(instance: LocalInstance): void {
    this.instances.set(instance.id, instance);
  }

  /** Records an RDS-style event (local drills use it: "the DB instance shut down"). */
  recordEvent(sourceId: string, message: string, eventId?: string): void {
    this.events.push({ at: this.clock.now(), sourceId, message, ...(eventId ? { eventId } : {}) });
  }

  private instance(id: string | undefined): LocalInstance {
    const instance = id ? this.instances.get(id) : undefined;
    if (!instance) throw awsError('DBInstanceNotFoundFault', `DBInstance ${id} not found.`);
    return instance;
  }

  async send(command: unknown): Promise<unknown> {
    if (command instanceof DescribeDBInstancesCommand) {
      const ids = command.input.DBInstanceIdentifier
        ? [command.input.DBInstanceIdentifier]
        : [...this.instances.keys()];
      return {
        DBInstances: ids.map((id) => {
          const i = this.instance(id);
          return {
            DBInstanceIdentifier: i.id,
            DBInstanceStatus: i.status(),
            Engine: 'postgres',
            TagList: [],
          };
        }),
        $metadata: {},
      };
    }
    if (command instanceof DescribeDBClustersCommand) {
      if (command.input.DBClusterIdentifier)
        throw awsError('DBClusterNotFoundFault', `DBCluster ${command.input.DBClusterIdentifier} not found.`);
      return { DBClusters: [], $metadata: {} };
    }
    if (command instanceof DescribeEventsCommand) {
      const start = command.input.StartTime?.getTime() ?? 0;
      return {
        Events: this.events
          .filter(
            (e) =>
              e.at >= start &&
              (!command.input.SourceIdentifier || e.sourceId === command.input.SourceIdentifier),
          )
          .map((e) => ({
            Date: new Date(e.at),
            SourceIdentifier: e.sourceId,
            Message: e.message,
            SourceType: 'db-instance',
          })),
        $metadata: {},
      };
    }
    if (command instanceof DescribeDBLogFilesCommand) {
      this.instance(command.input.DBInstanceIdentifier);
      return {
        DescribeDBLogFiles: [{ LogFileName: 'error/postgresql.log', LastWritten: this.clock.now(), Size: 0 }],
        $metadata: {},
      };
    }
    if (command instanceof DownloadDBLogFilePortionCommand) {
      const lines = this.instance(command.input.DBInstanceIdentifier).logLines();
      const n = command.input.NumberOfLines ?? lines.length;
      return { LogFileData: lines.slice(-n).join('\n'), AdditionalDataPending: false, $metadata: {} };
    }
    if (command instanceof StartDBInstanceCommand) {
      const instance = this.instance(command.input.DBInstanceIdentifier);
      if (!instance.start)
        throw awsError('InvalidDBInstanceState', 'this local instance cannot be started by pgwarden');
      await instance.start();
      return {
        DBInstance: { DBInstanceIdentifier: instance.id, DBInstanceStatus: 'starting' },
        $metadata: {},
      };
    }
    return unsupported('RDS', command);
  }
}

/** CloudWatch on this machine: PutMetricData lands in a callback, GetMetricData answers with no data. */
export class LocalCloudWatch {
  private readonly onPut: ((input: PutMetricDataCommand['input']) => void) | undefined;

  constructor(onPut?: (input: PutMetricDataCommand['input']) => void) {
    this.onPut = onPut;
  }

  async send(command: unknown): Promise<unknown> {
    if (command instanceof PutMetricDataCommand) {
      this.onPut?.(command.input);
      return { $metadata: {} };
    }
    if (command instanceof GetMetricDataCommand) {
      // The instance metrics (CPU, memory, storage) exist only on RDS.
      return {
        MetricDataResults: (command.input.MetricDataQueries ?? []).map((q) => ({
          Id: q.Id,
          Values: [],
          Timestamps: [],
          StatusCode: 'Complete',
        })),
        $metadata: {},
      };
    }
    return unsupported('CloudWatch', command);
  }
}
