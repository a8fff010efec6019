import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  FailoverDBClusterCommand,
  RebootDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { describe, expect, it } from 'vitest';
import { evaluateNode } from '../../../functions/runbook/nodes.ts';
import { RECOVER_AFTER_SECONDS } from '../../../functions/runbook/recovery.ts';
import { type RunbookDeps, runRunbook } from '../../../functions/runbook/runbook.ts';
import type { FailureCategory } from '../../../shared/classify.ts';
import { silentLogger } from '../../../shared/logger.ts';
import type { ProbeFailure } from '../../../shared/probe/snapshot.ts';
import type { IncidentRecord, InstanceStatus, Recovery } from '../../../shared/runbook/record.ts';
import { DEFAULT_REMEDIATION, type Target } from '../../../shared/target.ts';
import { ManualClock } from '../../helpers/clock.ts';
import { failure, snapshot, target } from './fixtures.ts';

const optIn = (options: Partial<Target['remediation']>, rds: Target['rds'] = { instanceId: 'orders' }) =>
  target({ rds, remediation: { ...DEFAULT_REMEDIATION, ...options } });
const rebootable = optIn({ allowReboot: true });
const failable = optIn({ allowFailover: true }, { clusterId: 'orders-cluster' });
const available: InstanceStatus = { id: 'orders', kind: 'instance', status: 'available' };
const cluster = (readers: number): InstanceStatus => ({
  id: 'orders-cluster',
  kind: 'cluster',
  status: 'available',
  readers,
});

function down(category: FailureCategory, errno?: string): ProbeFailure {
  const probe = failure(category);
  if (errno) probe.failure.errno = errno;
  return probe;
}
const refused = down('unreachable', 'ECONNREFUSED');

const accepting = (input: {
  target?: Target;
  probe?: ProbeFailure;
  instance?: InstanceStatus;
  seconds?: number;
  recovery?: Recovery;
}) =>
  evaluateNode('accepting_connections', {
    target: input.target ?? rebootable,
    probe: input.probe ?? refused,
    instance: input.instance ?? available,
    startRequested: false,
    notAcceptingSeconds: input.seconds ?? RECOVER_AFTER_SECONDS,
    ...(input.recovery ? { recovery: input.recovery } : {}),
  });

describe('reboot and failover in the decision tree', () => {
  it('reboots an opted-in instance RDS reports available once PostgreSQL has refused connections for 10 minutes', () => {
    const early = accepting({ seconds: RECOVER_AFTER_SECONDS - 1 });
    expect(early).toMatchObject({ result: 'waiting', decision: 'wait' });
    expect(early.detail).toContain('pgwarden will reboot it if that lasts 10m (remediation.allowReboot)');
    const due = accepting({});
    expect(due).toMatchObject({ result: 'fault', decision: 'reboot_instance' });
    expect(due.detail).toBe(
      'PostgreSQL refuses connections (nothing listens on its port) for 10m while RDS instance orders is available: rebooting it (remediation.allowReboot is on)',
    );
  });

  it.each([
    ['starting_up', undefined],
    ['shutting_down', undefined],
    ['connection_lost', undefined],
  ] as const)('counts PostgreSQL answering %s as not accepting connections', (category, errno) => {
    expect(accepting({ probe: down(category, errno) }).decision).toBe('reboot_instance');
  });

  it.each([
    ['a timeout, which may be the network between pgwarden and the database', down('timeout', 'ETIMEDOUT')],
    ['an unreachable host', down('unreachable', 'EHOSTUNREACH')],
    ['a DNS failure', down('dns', 'ENOTFOUND')],
    ['a TLS failure', down('tls')],
    ['a rejected password', down('auth_failed', undefined)],
    ['an exhausted pool (53300)', down('too_many_connections')],
  ])('never reboots for %s', (_, probe) => {
    expect(accepting({ probe }).decision).not.toBe('reboot_instance');
  });

  it.each(['rebooting', 'failing-over', 'modifying', 'backing-up', 'maintenance', 'upgrading', 'stopped'])(
    'never reboots while RDS reports the instance %s',
    (status) => {
      expect(accepting({ instance: { ...available, status } }).decision).not.toBe('reboot_instance');
    },
  );

  it('never reboots without the opt-in, and then judges as before', () => {
    const plain = accepting({ target: target() });
    expect(plain).toEqual(
      evaluateNode('accepting_connections', { target: target(), probe: refused, startRequested: false }),
    );
    expect(accepting({ target: optIn({ allowFailover: true }) }).decision).not.toBe('reboot_instance');
  });

  it('reboots at most once per incident: after that, it needs a human', () => {
    const after = accepting({
      recovery: {
        kind: 'reboot_instance',
        id: 'orders',
        reason: 'refused',
        announcedAt: '2026-11-26T10:10:00.000Z',
        requestedAt: '2026-11-26T10:10:01.000Z',
      },
    });
    expect(after).toMatchObject({ result: 'fault', decision: 'unresolved' });
    expect(after.detail).toContain('after pgwarden rebooted it at 10:10:01: it needs a human');
  });

  it('fails an opted-in cluster over to a reader, and not a cluster that has none', () => {
    expect(accepting({ target: failable, instance: cluster(1) }).decision).toBe('failover_cluster');
    const alone = accepting({ target: failable, instance: cluster(0) });
    expect(alone).toMatchObject({ result: 'fault', decision: 'unresolved' });
    expect(alone.detail).toContain('it has no reader to fail over to');
    // A reboot opt-in does not reboot a cluster's members.
    const rebootOnly = optIn({ allowReboot: true }, { clusterId: 'orders-cluster' });
    expect(accepting({ target: rebootOnly, instance: cluster(1) }).decision).not.toBe('failover_cluster');
  });
});

const REASON =
  'PostgreSQL refuses connections (nothing listens on its port) for 10m while RDS reports it available';

describe('runbook reboot and failover actions', () => {
  const sent: unknown[] = [];
  function fakeRds(status: () => string, refuse?: Error) {
    return {
      send: async (command: unknown) => {
        if (command instanceof DescribeDBInstancesCommand)
          return { DBInstances: [{ DBInstanceIdentifier: 'orders', DBInstanceStatus: status() }] };
        if (command instanceof DescribeDBClustersCommand)
          return {
            DBClusters: [
              {
                Status: status(),
                DBClusterMembers: [
                  { DBInstanceIdentifier: 'orders-1', IsClusterWriter: true },
                  { DBInstanceIdentifier: 'orders-2', IsClusterWriter: false },
                ],
              },
            ],
          };
        sent.push(command);
        if (refuse) throw refuse;
        return {};
      },
    };
  }
  const deps = (rds: RunbookDeps['rds'], configured: Target): RunbookDeps => {
    const refuse = { send: async () => Promise.reject(new Error('no call expected')) };
    return {
      // The target is deployed as the test describes it: the runbook takes its opt-ins from here.
      catalog: { targets: [configured], defaults: {} },
      sfn: refuse,
      rds,
      cloudwatch: refuse,
      topics: { pages: 'arn:pages', notifications: 'arn:notifications' },
      clock: new ManualClock('2026-11-26T10:10:00Z'),
      logger: silentLogger,
    };
  };
  const record = (extra: Partial<IncidentRecord> = {}): IncidentRecord => ({
    incidentId: 'pgw-orders-20261126-1',
    targetId: 'orders',
    status: 'open',
    openedAt: '2026-11-26T10:00:00.000Z',
    escalateAt: '2026-11-26T10:20:00.000Z',
    endAt: '2026-11-26T14:00:00.000Z',
    cycle: 11,
    steps: [],
    found: [],
    actions: [],
    timeline: [],
    decision: 'reboot_instance',
    pressure: { active: false },
    waitSeconds: 0,
    paged: false,
    instance: available,
    notAcceptingSince: '2026-11-26T10:00:00.000Z',
    ...extra,
  });
  const run = (action: string, incident: IncidentRecord, rds: RunbookDeps['rds'], t: Target = rebootable) =>
    runRunbook(
      {
        action,
        state: {
          incidentId: 'pgw-orders-20261126-1',
          target: t,
          trigger: { kind: 'probe', summary: 'refused', observedAt: '2026-11-26T10:00:00Z' },
          settings: { escalateAfterSeconds: 1_200, recheckSeconds: 60, maxDurationSeconds: 14_400 },
          incident,
          probe: refused,
        },
      },
      deps(rds, t),
    );

  it('announces the reboot first, to everyone, or to on-call once paged; and only once per incident', async () => {
    const announced = await run(
      'announce',
      record(),
      fakeRds(() => 'available'),
    );
    expect(announced.recovery).toEqual({
      kind: 'reboot_instance',
      id: 'orders',
      reason: REASON,
      announcedAt: '2026-11-26T10:10:00.000Z',
    });
    const message = announced.outbox?.announcement as { TopicArn: string; Subject: string; Message: string };
    expect(message.TopicArn).toBe('arn:notifications');
    expect(message.Subject).toBe('[pgwarden] rebooting orders: PostgreSQL does not accept connections');
    expect(JSON.parse(message.Message).email).toContain('pgwarden is about to reboot RDS instance orders');
    const paged = await run(
      'announce',
      record({ paged: true }),
      fakeRds(() => 'available'),
    );
    expect((paged.outbox?.announcement as { TopicArn: string } | undefined)?.TopicArn).toBe('arn:pages');
    await expect(
      run(
        'announce',
        announced,
        fakeRds(() => 'available'),
      ),
    ).rejects.toThrow('asks for a second reboot or failover in one incident');
  });

  it('reboots exactly the announced instance while RDS still reports it available, and audits it', async () => {
    sent.length = 0;
    const announced = await run(
      'announce',
      record(),
      fakeRds(() => 'available'),
    );
    const out = await run(
      'recover',
      announced,
      fakeRds(() => 'available'),
    );
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeInstanceOf(RebootDBInstanceCommand);
    expect((sent[0] as RebootDBInstanceCommand).input).toEqual({ DBInstanceIdentifier: 'orders' });
    expect(out.actions).toEqual([
      {
        at: '2026-11-26T10:10:00.000Z',
        kind: 'reboot_instance',
        ok: true,
        summary: `rebooted RDS instance orders: ${REASON}`,
      },
    ]);
    expect(out.recovery?.requestedAt).toBe('2026-11-26T10:10:00.000Z');
    expect(out.decision).toBe('wait');
  });

  it('sends nothing when RDS reports the instance in another state by the time it would act', async () => {
    sent.length = 0;
    const announced = await run(
      'announce',
      record(),
      fakeRds(() => 'available'),
    );
    const out = await run(
      'recover',
      announced,
      fakeRds(() => 'modifying'),
    );
    expect(sent).toEqual([]);
    expect(out.actions[0]).toMatchObject({
      ok: false,
      summary: expect.stringContaining('RDS reports it modifying'),
    });
  });

  it('sends nothing more when its retry finds the reboot under way', async () => {
    sent.length = 0;
    const announced = await run(
      'announce',
      record(),
      fakeRds(() => 'available'),
    );
    const out = await run(
      'recover',
      announced,
      fakeRds(() => 'rebooting'),
    );
    expect(sent).toEqual([]);
    expect(out.actions[0]).toMatchObject({ ok: true, summary: expect.stringContaining('under way') });
  });

  it('records a reboot RDS refused, without throwing', async () => {
    const announced = await run(
      'announce',
      record(),
      fakeRds(() => 'available'),
    );
    const refusedByRds = Object.assign(new Error('Instance orders is not in available state.'), {
      name: 'InvalidDBInstanceStateFault',
    });
    const out = await run(
      'recover',
      announced,
      fakeRds(() => 'available', refusedByRds),
    );
    expect(out.actions[0]).toMatchObject({
      ok: false,
      summary: expect.stringContaining('could not reboot orders'),
    });
    expect(out.recovery?.requestedAt).toBeUndefined();
  });

  it('fails over exactly the announced cluster', async () => {
    sent.length = 0;
    const incident = record({ decision: 'failover_cluster' });
    const announced = await run(
      'announce',
      incident,
      fakeRds(() => 'available'),
      failable,
    );
    await run(
      'recover',
      announced,
      fakeRds(() => 'available'),
      failable,
    );
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeInstanceOf(FailoverDBClusterCommand);
    expect((sent[0] as FailoverDBClusterCommand).input).toEqual({ DBClusterIdentifier: 'orders-cluster' });
  });

  it('in dry-run, announces and records what it would do, and sends nothing', async () => {
    sent.length = 0;
    const dry = optIn({ allowReboot: true, dryRun: true });
    const announced = await run(
      'announce',
      record(),
      fakeRds(() => 'available'),
      dry,
    );
    expect((announced.outbox?.announcement as { Subject: string } | undefined)?.Subject).toContain(
      'dry-run: would be rebooting',
    );
    const out = await run(
      'recover',
      announced,
      fakeRds(() => 'available'),
      dry,
    );
    expect(sent).toEqual([]);
    expect(out.actions[0]).toMatchObject({
      ok: true,
      dryRun: true,
      summary: `dry-run: would have rebooted RDS instance orders: ${REASON}`,
    });
    expect(out.recovery?.requestedAt).toBeUndefined();
  });

  it('sends nothing for a target that no longer opts in', async () => {
    sent.length = 0;
    const announced = await run(
      'announce',
      record(),
      fakeRds(() => 'available'),
    );
    const out = await run(
      'recover',
      announced,
      fakeRds(() => 'available'),
      target(),
    );
    expect(sent).toEqual([]);
    expect(out.actions[0]).toMatchObject({
      ok: false,
      summary: expect.stringContaining('remediation.allowReboot is not on'),
    });
  });

  it('judges a healthy probe as accepting, whatever the opt-ins', () => {
    expect(
      evaluateNode('accepting_connections', { target: rebootable, probe: snapshot(), startRequested: false }),
    ).toMatchObject({ result: 'ok' });
  });
});
