/**
 * One outage, many triggers: concurrent monitor verdicts, RDS events and alarm state changes all try to
 * open the incident at once, against the local Step Functions running the real runbook definition. One
 * execution, one page.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloudWatch, LocalRds, LocalSecretsManager, LocalSns } from '../../cli/local/aws.ts';
import type { LocalStepFunctions } from '../../cli/local/step-functions.ts';
import { createLocalWorkflow, LOCAL_STATE_MACHINE } from '../../cli/local/workflow.ts';
import { runMonitor } from '../../functions/monitor/monitor.ts';
import { DEFAULT_MONITOR_SETTINGS } from '../../functions/monitor/settings.ts';
import {
  type RdsEventsDeps,
  type RdsEventsResult,
  runRdsEvents,
} from '../../functions/rds-events/rds-events.ts';
import { type OpenOutcome, openIncident } from '../../shared/incidents.ts';
import { silentLogger } from '../../shared/logger.ts';
import { MemorySink } from '../../shared/metrics.ts';
import { probe } from '../../shared/probe/snapshot.ts';
import type { RunbookSettings, Trigger } from '../../shared/runbook/types.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Target } from '../../shared/target.ts';
import { ManualClock } from '../helpers/clock.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';

const MINUTE = 60_000;
const SECRET_ID = 'arn:aws:secretsmanager:local-1:000000000000:secret:pgwarden-exactly-once';
const SETTINGS: RunbookSettings = {
  escalateAfterSeconds: 20 * 60,
  recheckSeconds: 60,
  maxDurationSeconds: 30 * 60,
};
const fixture = (name: string) =>
  JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/rds-events', name), 'utf8'));

/** A gate the runbook waits at before its first task, so every trigger lands while it is open. */
function gate() {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('exactly one incident per outage', () => {
  let server: TestServer;
  let clock: ManualClock;
  let sns: LocalSns;
  let sfn: LocalStepFunctions;
  let target: Target;
  let held = gate();
  /** Things to do before the runbook task that runs at or after the given time. */
  let schedule: Array<{ at: number; run: () => Promise<void> }> = [];

  beforeAll(async () => {
    server = await startTestServer();
    const monitor = await createMonitorRole(server);
    clock = new ManualClock(Date.now());
    const secrets = new LocalSecretsManager();
    secrets.put(SECRET_ID, { username: monitor.user, password: monitor.password });
    sns = new LocalSns(clock);
    const rds = new LocalRds(clock);
    rds.add({
      id: 'orders',
      status: () => (server.running ? 'available' : 'stopped'),
      logLines: () => server.logLines(),
    });
    target = {
      id: 'orders',
      connection: {
        host: '127.0.0.1',
        port: server.port,
        database: 'postgres',
        auth: { kind: 'secret', secretId: SECRET_ID },
        tls: { mode: 'disable' },
      },
      rds: { instanceId: 'orders' },
      thresholds: DEFAULT_THRESHOLDS,
      remediation: DEFAULT_REMEDIATION,
    };
    sfn = createLocalWorkflow({
      clock,
      logger: silentLogger,
      catalog: { targets: [target], defaults: {} },
      secrets,
      sns,
      rds,
      cloudwatch: new LocalCloudWatch(),
      waits: 'virtual',
      probeConfig: { connectTimeoutMs: 1_000, statementTimeoutMs: 2_000 },
      beforeRunbookTask: async (now, event) => {
        if (event.action === 'open') await held.opened;
        while (schedule[0] && now >= schedule[0].at) await schedule.shift()?.run();
      },
    });
    // The monitor probes through the same Secrets Manager.
    monitorProbe = (t) =>
      probe(
        t.connection,
        { label: t.id, connectTimeoutMs: 1_000 },
        { logger: silentLogger, secrets: secrets as never },
      );
  });
  afterAll(async () => {
    held.open();
    await server?.destroy();
  });

  let monitorProbe: (t: Target) => ReturnType<typeof probe>;
  const open = (trigger: Trigger): Promise<OpenOutcome> =>
    openIncident(
      { sfn, stateMachineArn: LOCAL_STATE_MACHINE, clock, logger: silentLogger },
      target,
      trigger,
      SETTINGS,
    );
  const rdsEventsDeps = (): RdsEventsDeps => ({
    targets: async () => [target],
    openIncident: (_, trigger) => open(trigger),
    metrics: new MemorySink(),
    clock,
    logger: silentLogger,
  });

  /** A warm monitor Lambda of its own: probes the real server, confirms, and opens on its verdict. */
  async function monitorVerdict(): Promise<OpenOutcome[]> {
    const own = new ManualClock(clock.now());
    const report = await runMonitor(
      [target],
      { ...DEFAULT_MONITOR_SETTINGS, cadenceMs: 1_000, confirmDelayMs: 100 },
      {
        probe: (t) => monitorProbe(t),
        openIncident: (_, trigger) => open(trigger),
        metrics: new MemorySink(),
        clock: own,
        logger: silentLogger,
      },
      new Map(),
      own.now() + 1_000,
      new AbortController().signal,
    );
    return report.incidents;
  }

  function rdsEvent(eventId: string, at: string) {
    const event = fixture('instance-0004.json');
    event.time = at;
    event.detail.Date = at;
    event.detail.EventID = eventId;
    event.detail.SourceIdentifier = 'orders';
    return event;
  }

  function alarmEvent(at: string, withDimension: boolean) {
    return {
      source: 'aws.cloudwatch',
      'detail-type': 'CloudWatch Alarm State Change',
      time: at,
      detail: {
        alarmName: 'PgWarden/orders/probe-failing',
        state: { value: 'ALARM', reason: 'Threshold Crossed', timestamp: at },
        ...(withDimension
          ? {
              configuration: {
                metrics: [
                  { metricStat: { metric: { name: 'ProbeSuccess', dimensions: { Target: 'orders' } } } },
                ],
              },
            }
          : {}),
      },
    };
  }

  let firstIncident: string;
  let outageAt: string;

  it('opens one execution for 25 simultaneous triggers and pages once, at 20 minutes, while the database stays down', async () => {
    await server.stop();
    outageAt = new Date(clock.now()).toISOString();
    held = gate();
    const outcomes = await Promise.all([
      ...Array.from({ length: 9 }, () => monitorVerdict()),
      ...Array.from({ length: 8 }, (_, i) =>
        runRdsEvents(rdsEvent(i % 2 ? 'RDS-EVENT-0004' : 'RDS-EVENT-0087', outageAt), rdsEventsDeps()),
      ),
      ...Array.from({ length: 8 }, (_, i) =>
        runRdsEvents(alarmEvent(outageAt, i % 2 === 0), rdsEventsDeps()),
      ),
    ]);
    const monitorOutcomes = outcomes.slice(0, 9).flat() as OpenOutcome[];
    const rdsEventsOutcomes = outcomes.slice(9) as RdsEventsResult[];
    // Every monitor reached its verdict and every event was about this target.
    expect(monitorOutcomes).toHaveLength(9);
    expect(rdsEventsOutcomes.every((r) => r.action === 'opened' || r.action === 'joined')).toBe(true);

    const actions = [...monitorOutcomes.map((o) => o.outcome), ...rdsEventsOutcomes.map((r) => r.action)];
    expect(actions.filter((a) => a === 'opened')).toHaveLength(1);
    expect(actions.filter((a) => a === 'joined')).toHaveLength(24);
    expect(sfn.executions.size).toBe(1);
    const [execution] = [...sfn.executions.values()];
    firstIncident = execution?.name ?? '';
    const ids = new Set([
      ...monitorOutcomes.map((o) => o.incidentId),
      ...rdsEventsOutcomes.map((r) => ('incidentId' in r ? r.incidentId : '')),
    ]);
    expect([...ids]).toEqual([firstIncident]);

    const openedAt = clock.now();
    held.open();
    const done = await sfn.wait(firstIncident);
    expect(server.running).toBe(false);
    expect(done.status).toBe('SUCCEEDED');
    expect((done.output as { status: string }).status).toBe('unresolved');
    const pages = sns.published.filter((m) => m.attributes['pgwarden.kind'] === 'page');
    expect(pages).toHaveLength(1);
    expect((pages[0]?.at ?? 0) - openedAt).toBe(20 * MINUTE);
    expect(sns.published.filter((m) => m.attributes['pgwarden.kind'] === 'opened')).toHaveLength(1);
  });

  it('opens nothing for a late RDS event about the outage that already ended', async () => {
    const late = await runRdsEvents(rdsEvent('RDS-EVENT-0004', outageAt), rdsEventsDeps());
    expect(late).toMatchObject({ action: 'stale', incidentId: firstIncident });
    const lateAlarm = await runRdsEvents(alarmEvent(outageAt, true), rdsEventsDeps());
    expect(lateAlarm).toMatchObject({ action: 'stale' });
    expect(sfn.executions.size).toBe(1);
  });

  it('opens a second incident for a second outage after the first ended, and it resolves on its own', async () => {
    const published = sns.published.length;
    held = gate();
    const secondAt = clock.now();
    schedule = [{ at: secondAt + 3 * MINUTE, run: () => server.start() }];
    const outcomes = await Promise.all([
      monitorVerdict(),
      runRdsEvents(rdsEvent('RDS-EVENT-0004', new Date(secondAt).toISOString()), rdsEventsDeps()),
      runRdsEvents(alarmEvent(new Date(secondAt).toISOString(), false), rdsEventsDeps()),
    ]);
    const [verdicts, event, alarm] = outcomes as [OpenOutcome[], RdsEventsResult, RdsEventsResult];
    const actions = [...verdicts.map((o) => o.outcome), event.action, alarm.action].sort();
    expect(actions).toEqual(['joined', 'joined', 'opened']);
    expect(sfn.executions.size).toBe(2);
    const second = [...sfn.executions.values()].find((e) => e.name !== firstIncident);
    expect(second?.name).toMatch(/^pgw-orders-\d{8}-\d+$/);
    held.open();
    const done = await sfn.wait(second?.name ?? '');
    expect((done.output as { status: string }).status).toBe('resolved');
    const kinds = sns.published.slice(published).map((m) => m.attributes['pgwarden.kind']);
    expect(kinds).toEqual(['opened', 'resolved']);
  });
});
