import { DescribeDBClustersCommand, DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { discoverTargets, targetIdFor, targetSource } from '../../shared/discovery.ts';
import type { Logger } from '../../shared/logger.ts';

const rdsMock = mockClient(RDSClient);
const tag = (Key: string, Value: string) => ({ Key, Value });
const MONITOR = tag('pgwarden:monitor', 'true');

function recordingLogger() {
  const warnings: Array<{ message: string; extra?: Record<string, unknown> }> = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (message, extra) => warnings.push({ message, ...(extra ? { extra } : {}) }),
    error() {},
  };
  return { logger, warnings };
}

const defaults = { region: 'eu-west-1', user: 'pgwarden_monitor', auth: { iam: true } };
const discovery = { tagKey: 'pgwarden:monitor', tagValue: 'true' };

describe('tag discovery', () => {
  beforeEach(() => {
    rdsMock.reset();
    rdsMock.on(DescribeDBClustersCommand).resolves({
      DBClusters: [
        {
          DBClusterIdentifier: 'Billing-Aurora',
          Engine: 'aurora-postgresql',
          Endpoint: 'billing.cluster-x.eu-west-1.rds.amazonaws.com',
          Port: 5432,
          DatabaseName: 'billing',
          TagList: [MONITOR],
          DBClusterMembers: [{ DBInstanceIdentifier: 'billing-aurora-1', IsClusterWriter: true }],
        },
        { DBClusterIdentifier: 'mysql-cluster', Engine: 'aurora-mysql', Endpoint: 'm', TagList: [MONITOR] },
      ],
    });
    rdsMock.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'orders-prod',
          Engine: 'postgres',
          Endpoint: { Address: 'orders-prod.x.eu-west-1.rds.amazonaws.com', Port: 5433 },
          TagList: [
            MONITOR,
            tag('pgwarden:database', 'orders'),
            tag('pgwarden:secret-arn', 'pgwarden/orders'),
          ],
        },
        {
          DBInstanceIdentifier: 'billing-aurora-1',
          Engine: 'aurora-postgresql',
          Endpoint: { Address: 'b1', Port: 5432 },
          TagList: [MONITOR],
        },
        {
          DBInstanceIdentifier: 'untagged',
          Engine: 'postgres',
          Endpoint: { Address: 'u', Port: 5432 },
          TagList: [],
        },
        { DBInstanceIdentifier: 'creating', Engine: 'postgres', TagList: [MONITOR] },
        {
          DBInstanceIdentifier: 'badly-tagged',
          Engine: 'postgres',
          Endpoint: { Address: 'x', Port: 5432 },
          TagList: [MONITOR, tag('pgwarden:id', 'Not A Valid Id')],
        },
      ],
    });
  });

  it('turns tagged PostgreSQL instances and clusters into targets, refined by their tags', async () => {
    const { logger, warnings } = recordingLogger();
    const targets = await discoverTargets(discovery, defaults, { rds: new RDSClient({}), logger });
    expect(targets.map((t) => t.id).sort()).toEqual(['billing-aurora', 'orders-prod']);
    const orders = targets.find((t) => t.id === 'orders-prod');
    expect(orders?.connection).toEqual({
      host: 'orders-prod.x.eu-west-1.rds.amazonaws.com',
      port: 5433,
      database: 'orders',
      user: 'pgwarden_monitor',
      auth: { kind: 'secret', secretId: 'pgwarden/orders' },
      tls: { mode: 'verify-full' },
    });
    expect(orders?.rds).toEqual({ instanceId: 'orders-prod', region: 'eu-west-1' });
    const billing = targets.find((t) => t.id === 'billing-aurora');
    expect(billing?.connection).toMatchObject({
      host: 'billing.cluster-x.eu-west-1.rds.amazonaws.com',
      database: 'billing',
      auth: { kind: 'iam', region: 'eu-west-1' },
    });
    expect(billing?.rds).toMatchObject({ clusterId: 'Billing-Aurora' });
    expect(warnings.map((w) => w.extra?.identifier)).toEqual(['badly-tagged']);
  });

  it('skips the members of a monitored cluster, other engines, untagged and endpoint-less instances', async () => {
    const { logger } = recordingLogger();
    const targets = await discoverTargets(discovery, defaults, { rds: new RDSClient({}), logger });
    expect(targets.map((t) => t.connection.host)).not.toContain('b1');
    expect(targets.map((t) => t.connection.host)).not.toContain('u');
  });

  it('makes target ids from RDS identifiers', () => {
    expect(targetIdFor('Billing_Aurora.prod')).toBe('billing-aurora-prod');
    expect(targetIdFor('-x-')).toBe('x');
    expect(targetIdFor('a'.repeat(60))).toHaveLength(40);
  });

  it('refreshes on its schedule, merges with the static list and keeps the last good list when RDS fails', async () => {
    const { logger } = recordingLogger();
    let now = 0;
    const staticTarget = (await discoverTargets(discovery, defaults, { rds: new RDSClient({}), logger }))[0];
    if (!staticTarget) throw new Error('no target');
    const source = targetSource(
      { targets: [staticTarget], defaults, discovery },
      { rds: new RDSClient({}), logger, now: () => now },
      60_000,
    );
    expect((await source()).map((t) => t.id).sort()).toEqual(['billing-aurora', 'orders-prod']);
    rdsMock
      .on(DescribeDBInstancesCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    now = 30_000;
    expect(await source()).toHaveLength(2);
    now = 120_000;
    expect((await source()).map((t) => t.id).sort()).toEqual(['billing-aurora', 'orders-prod']);
    // One listing to build the static target, then the source's first fill and its one refresh (at
    // 120 s; the 30 s call was served from the cache).
    expect(rdsMock.commandCalls(DescribeDBClustersCommand).length).toBe(3);
  });
});
