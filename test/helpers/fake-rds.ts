/**
 * RDS at the SDK boundary for workflow tests: one instance or cluster whose status the test scripts,
 * the calls pgwarden makes, and what a reboot or failover does to the database behind it.
 */
import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBLogFilesCommand,
  DescribeEventsCommand,
  FailoverDBClusterCommand,
  RebootDBInstanceCommand,
} from '@aws-sdk/client-rds';

export interface FakeRdsOptions {
  kind: 'instance' | 'cluster';
  id: string;
  /** A cluster's readers. @default 1 */
  readers?: number;
  /** What the status is while nothing happens. @default 'available' */
  status?: string;
  /** Describe calls that report the transitional status after a reboot or failover. @default 1 */
  transitionalFor?: number;
  /** What a reboot or failover does to the database (start it again, or nothing). */
  onAction?: () => Promise<void>;
}

export class FakeRds {
  /** Every command sent, by name, with its input, in order. */
  readonly calls: Array<{ command: string; input: Record<string, unknown> }> = [];
  private readonly options: FakeRdsOptions;
  private transitional: { status: string; left: number } | undefined;

  constructor(options: FakeRdsOptions) {
    this.options = options;
  }

  /** The destructive calls: RebootDBInstance and FailoverDBCluster. */
  get actions() {
    return this.calls.filter((c) => c.command === 'RebootDBInstance' || c.command === 'FailoverDBCluster');
  }

  private status(): string {
    if (this.transitional && this.transitional.left > 0) {
      this.transitional.left -= 1;
      return this.transitional.status;
    }
    return this.options.status ?? 'available';
  }

  async send(command: unknown): Promise<unknown> {
    const name = (command as object).constructor.name;
    const input = (command as { input: Record<string, unknown> }).input;
    this.calls.push({ command: name.replace(/Command$/, ''), input });
    const { kind, id } = this.options;
    if (command instanceof DescribeDBInstancesCommand && kind === 'instance')
      return { DBInstances: [{ DBInstanceIdentifier: id, DBInstanceStatus: this.status() }] };
    if (command instanceof DescribeDBClustersCommand && kind === 'cluster') {
      const readers = this.options.readers ?? 1;
      return {
        DBClusters: [
          {
            DBClusterIdentifier: id,
            Status: this.status(),
            DBClusterMembers: [
              { DBInstanceIdentifier: `${id}-1`, IsClusterWriter: true },
              ...Array.from({ length: readers }, (_, i) => ({
                DBInstanceIdentifier: `${id}-${i + 2}`,
                IsClusterWriter: false,
              })),
            ],
          },
        ],
      };
    }
    if (command instanceof DescribeEventsCommand) return { Events: [] };
    if (command instanceof DescribeDBLogFilesCommand) return { DescribeDBLogFiles: [] };
    if (
      (command instanceof RebootDBInstanceCommand && kind === 'instance') ||
      (command instanceof FailoverDBClusterCommand && kind === 'cluster')
    ) {
      this.transitional = {
        status: kind === 'instance' ? 'rebooting' : 'failing-over',
        left: this.options.transitionalFor ?? 1,
      };
      await this.options.onAction?.();
      return {};
    }
    throw Object.assign(new Error(`the fake RDS has no ${name} for a ${kind} ${id}`), {
      name: kind === 'instance' ? 'DBInstanceNotFoundFault' : 'DBClusterNotFoundFault',
    });
  }
}
