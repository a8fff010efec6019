/**
 * The reboot and failover grants against what the runbook sends: for every target of a fleet, the
 * runbook's RebootDBInstance and FailoverDBCluster calls, and the runbook role's permissions for them,
 * name exactly the same resources.
 */
import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  FailoverDBClusterCommand,
  RebootDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { describe, expect, it } from 'vitest';
import { recoveryFor } from '../../functions/runbook/recovery.ts';
import { runRunbook } from '../../functions/runbook/runbook.ts';
import { silentLogger } from '../../shared/logger.ts';
import type { IncidentRecord } from '../../shared/runbook/record.ts';
import type { Target } from '../../shared/target.ts';
import { ManualClock } from '../helpers/clock.ts';
import { exampleConfig, grantsOf, type Json, synth } from './synth.ts';

const ACTIONS = ['rds:RebootDBInstance', 'rds:FailoverDBCluster'];

/** An ARN as the template writes it, pseudo parameters left as `{AWS::...}`. */
function arnText(value: Json): string {
  if (typeof value === 'string') return value;
  if (value?.['Fn::Join']) return (value['Fn::Join'][1] as Json[]).map(arnText).join(value['Fn::Join'][0]);
  if (value?.Ref) return `{${value.Ref}}`;
  throw new Error(`unexpected ARN ${JSON.stringify(value)}`);
}

/** "rds:Action db:id" for every reboot or failover the runbook role may do. */
function granted(template: Parameters<typeof grantsOf>[0]): string[] {
  return ACTIONS.flatMap((action) =>
    grantsOf(template, 'FunctionsRunbookRole', action).map((arn) => {
      const match = /:(db|cluster):([^:]+)$/.exec(arnText(arn));
      if (!match) throw new Error(`not an instance or cluster ARN: ${arnText(arn)}`);
      return `${action} ${match[1]}:${match[2]}`;
    }),
  ).sort();
}

/** "rds:Action db:id" for every reboot or failover the runbook sends when a target needs one. */
async function sent(targets: readonly Target[]): Promise<string[]> {
  const out: string[] = [];
  for (const target of targets) {
    const kind = target.rds?.clusterId ? 'cluster' : 'instance';
    const id = (target.rds?.clusterId ?? target.rds?.instanceId) as string;
    const decision = recoveryFor(target, { id, kind, status: 'available', readers: 1 });
    if (!decision) continue;
    const rds = {
      send: async (command: unknown) => {
        if (command instanceof DescribeDBInstancesCommand)
          return { DBInstances: [{ DBInstanceIdentifier: id, DBInstanceStatus: 'available' }] };
        if (command instanceof DescribeDBClustersCommand)
          return { DBClusters: [{ Status: 'available', DBClusterMembers: [{ IsClusterWriter: false }] }] };
        if (command instanceof RebootDBInstanceCommand)
          out.push(`rds:RebootDBInstance db:${command.input.DBInstanceIdentifier}`);
        else if (command instanceof FailoverDBClusterCommand)
          out.push(`rds:FailoverDBCluster cluster:${command.input.DBClusterIdentifier}`);
        else throw new Error(`unexpected ${(command as object).constructor.name}`);
        return {};
      },
    };
    const deps = {
      catalog: { targets: [target], defaults: {} },
      sfn: rds,
      rds,
      cloudwatch: rds,
      topics: { pages: 'arn:pages', notifications: 'arn:notifications' },
      clock: new ManualClock('2026-11-26T10:10:00Z'),
      logger: silentLogger,
    };
    const state = (incident: IncidentRecord) => ({
      incidentId: 'pgw-x-20261126-1',
      target,
      trigger: { kind: 'probe', summary: 'refused', observedAt: '2026-11-26T10:00:00Z' },
      settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
      incident,
    });
    const incident: IncidentRecord = {
      incidentId: 'pgw-x-20261126-1',
      targetId: target.id,
      status: 'open',
      openedAt: '2026-11-26T10:00:00.000Z',
      escalateAt: '2026-11-26T10:20:00.000Z',
      endAt: '2026-11-26T14:00:00.000Z',
      cycle: 11,
      steps: [],
      found: [],
      actions: [],
      timeline: [],
      decision,
      pressure: { active: false },
      waitSeconds: 0,
      paged: false,
    };
    const announced = await runRunbook({ action: 'announce', state: state(incident) }, deps);
    await runRunbook({ action: 'recover', state: state(announced) }, deps);
  }
  return out.sort();
}

describe('reboot and failover permissions', () => {
  it('match what the runbook sends, target by target, when every target opts into both', async () => {
    const config = exampleConfig();
    // The targets' region, which a stack without an environment leaves as a token.
    config.fleet.defaults.region = 'eu-west-1';
    config.fleet.defaults.remediation = { dryRun: false, allowReboot: true, allowFailover: true };
    const { template, stack } = synth(config);
    const sends = await sent(stack.targets);
    expect(sends).toEqual([
      'rds:FailoverDBCluster cluster:billing-prod',
      'rds:RebootDBInstance db:orders-prod',
    ]);
    expect(granted(template)).toEqual(sends);
  });

  it('are absent, and nothing is sent, when no target opts in', async () => {
    const config = exampleConfig();
    // The targets' region, which a stack without an environment leaves as a token.
    config.fleet.defaults.region = 'eu-west-1';
    config.fleet.defaults.remediation = { dryRun: false };
    const { template, stack } = synth(config);
    expect(await sent(stack.targets)).toEqual([]);
    expect(granted(template)).toEqual([]);
  });

  it('match when a target opts into the action of the other kind only: none granted, none sent', async () => {
    const config = exampleConfig();
    // The targets' region, which a stack without an environment leaves as a token.
    config.fleet.defaults.region = 'eu-west-1';
    config.fleet.defaults.remediation = { dryRun: false };
    config.fleet.targets[0].remediation = { allowFailover: true };
    config.fleet.targets[1].remediation = { allowReboot: true };
    const { template, stack } = synth(config);
    expect(await sent(stack.targets)).toEqual([]);
    expect(granted(template)).toEqual([]);
  });
});
