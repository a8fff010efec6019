import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { meaningOf, RDS_EVENTS } from '../../../functions/rds-events/events.ts';
import { type RdsEventsDeps, runRdsEvents } from '../../../functions/rds-events/rds-events.ts';
import { ValidationError } from '../../../shared/errors.ts';
import type { OpenOutcome } from '../../../shared/incidents.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { MemorySink } from '../../../shared/metrics.ts';
import type { Trigger } from '../../../shared/runbook/types.ts';
import type { Target } from '../../../shared/target.ts';
import { ManualClock } from '../../helpers/clock.ts';
import { testTarget } from '../../helpers/targets.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures/rds-events');
const fixture = (name: string) => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));

const target = (id: string, rds: Target['rds']): Target => testTarget(id, { rds });

function deps(targets: Target[], rds?: RdsEventsDeps['rds']) {
  const opened: Array<{ target: string; trigger: Trigger }> = [];
  const metrics = new MemorySink();
  const d: RdsEventsDeps = {
    targets: async () => targets,
    openIncident: async (t, trigger): Promise<OpenOutcome> => {
      opened.push({ target: t.id, trigger });
      return { outcome: 'opened', incidentId: `pgw-${t.id}-20261120-1`, executionArn: 'arn' };
    },
    metrics,
    ...(rds ? { rds } : {}),
    clock: new ManualClock('2026-11-20T03:15:00Z'),
    logger: silentLogger,
  };
  return { d, opened, metrics };
}

const fleet = [
  target('orders-prod', { instanceId: 'orders-prod' }),
  target('orders-aurora', { clusterId: 'orders-aurora' }),
];

describe('RDS event intake', () => {
  it('opens an incident for an instance shutdown (RDS-EVENT-0004) dated by the event', async () => {
    const { d, opened, metrics } = deps(fleet);
    const result = await runRdsEvents(fixture('instance-0004.json'), d);
    expect(result).toMatchObject({ action: 'opened', targetId: 'orders-prod', kind: 'shutdown' });
    expect(opened[0]?.trigger).toMatchObject({
      kind: 'rds-event',
      eventId: 'RDS-EVENT-0004',
      observedAt: '2026-11-20T03:14:07.120Z',
    });
    expect(metrics.samples.map((s) => s.name)).toEqual(['RdsEvents', 'IncidentsOpened']);
  });

  it('opens for a cluster failover restart (0070) on the cluster target', async () => {
    const { d, opened } = deps(fleet);
    expect(await runRdsEvents(fixture('cluster-0070.json'), d)).toMatchObject({
      action: 'opened',
      targetId: 'orders-aurora',
      kind: 'failover',
    });
    expect(opened[0]?.trigger.summary).toContain('RDS-EVENT-0070 on orders-aurora');
  });

  it('records a completed failover (0071) as a metric without opening an incident', async () => {
    const { d, opened, metrics } = deps(fleet);
    expect(await runRdsEvents(fixture('cluster-0071.json'), d)).toEqual({
      action: 'recorded',
      targetId: 'orders-aurora',
      kind: 'failover',
    });
    expect(opened).toEqual([]);
    expect(metrics.samples.map((s) => s.name)).toEqual(['RdsEvents']);
  });

  it('accepts SourceIdentifier with the rds: prefix', async () => {
    const event = fixture('instance-0006.json');
    event.detail.SourceIdentifier = `rds:${event.detail.SourceIdentifier.replace(/^rds:/, '')}`;
    const { d } = deps(fleet);
    expect(await runRdsEvents(event, d)).toMatchObject({
      action: 'opened',
      targetId: 'orders-prod',
      kind: 'restart',
    });
  });

  it('handles every sample event without error', async () => {
    for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.json'))) {
      const { d } = deps(fleet);
      const result = await runRdsEvents(fixture(file), d);
      expect(['opened', 'recorded', 'ignored'], file).toContain(result.action);
    }
  });

  it('maps an event about a member instance to its monitored cluster', async () => {
    const rds = mockClient(RDSClient);
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'orders-aurora-1' }).resolves({
      DBInstances: [{ DBInstanceIdentifier: 'orders-aurora-1', DBClusterIdentifier: 'orders-aurora' }],
    });
    const event = fixture('instance-0006.json');
    event.detail.SourceIdentifier = 'orders-aurora-1';
    const { d } = deps(fleet, new RDSClient({}));
    expect(await runRdsEvents(event, d)).toMatchObject({ action: 'opened', targetId: 'orders-aurora' });
  });

  it('ignores unknown event ids and unmonitored databases, never as an error', async () => {
    const { d, opened } = deps(fleet);
    const unknown = fixture('instance-0004.json');
    unknown.detail.EventID = 'RDS-EVENT-0999';
    expect(await runRdsEvents(unknown, d)).toMatchObject({ action: 'ignored' });
    const other = fixture('instance-0004.json');
    other.detail.SourceIdentifier = 'someone-elses-db';
    expect(await runRdsEvents(other, d)).toMatchObject({
      action: 'ignored',
      reason: 'someone-elses-db is not a monitored database',
    });
    expect(opened).toEqual([]);
  });

  it('refuses a malformed event with a named error and does nothing', async () => {
    const { d, opened, metrics } = deps(fleet);
    const broken = fixture('instance-0004.json');
    delete broken.detail.EventID;
    broken.time = 'yesterday';
    const error = await runRdsEvents(broken, d).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain('detail.EventID: is required');
    expect((error as Error).message).toContain('time: has the wrong format');
    expect(opened).toEqual([]);
    expect(metrics.samples).toEqual([]);
    await expect(runRdsEvents({ source: 'aws.ec2' }, d)).rejects.toThrowError(
      /source: is not an accepted kind/,
    );
  });

  it('opens an incident for a pgwarden alarm going into ALARM, using its Target dimension', async () => {
    const { d, opened } = deps(fleet);
    const alarm = {
      source: 'aws.cloudwatch',
      'detail-type': 'CloudWatch Alarm State Change',
      time: '2026-11-20T03:20:00Z',
      detail: {
        alarmName: 'PgWarden/orders-prod/probe-failing',
        state: { value: 'ALARM', reason: 'Threshold Crossed', timestamp: '2026-11-20T03:19:58.000+0000' },
        configuration: {
          metrics: [
            { metricStat: { metric: { name: 'ProbeSuccess', dimensions: { Target: 'orders-prod' } } } },
          ],
        },
      },
    };
    expect(await runRdsEvents(alarm, d)).toMatchObject({
      action: 'opened',
      targetId: 'orders-prod',
      kind: 'alarm',
    });
    expect(opened[0]?.trigger).toMatchObject({
      kind: 'alarm',
      alarmName: 'PgWarden/orders-prod/probe-failing',
      observedAt: '2026-11-20T03:19:58.000Z',
    });
    const ok = { ...alarm, detail: { ...alarm.detail, state: { value: 'OK' } } };
    expect(await runRdsEvents(ok, d)).toMatchObject({ action: 'ignored' });
  });

  it('maps an alarm without a Target dimension to its target by the alarm name', async () => {
    const { d } = deps(fleet);
    const alarm = {
      source: 'aws.cloudwatch',
      'detail-type': 'CloudWatch Alarm State Change',
      time: '2026-11-20T03:20:00Z',
      detail: { alarmName: 'PgWardenStaging/orders-prod/utilization-high', state: { value: 'ALARM' } },
    };
    expect(await runRdsEvents(alarm, d)).toMatchObject({ action: 'opened', targetId: 'orders-prod' });
    const fleetWide = { ...alarm, detail: { ...alarm.detail, alarmName: 'PgWarden/fleet-probe-failing' } };
    expect(await runRdsEvents(fleetWide, d)).toMatchObject({ action: 'ignored' });
  });

  it('knows the event ids the runbook cares about', () => {
    expect(Object.keys(RDS_EVENTS)).toHaveLength(33);
    expect(meaningOf('RDS-EVENT-0221')).toMatchObject({ kind: 'storage', opensIncident: true });
    expect(meaningOf('RDS-EVENT-0088')).toMatchObject({ kind: 'started', opensIncident: false });
    expect(meaningOf('nonsense')).toBeUndefined();
  });
});
