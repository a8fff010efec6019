/**
 * Section 6: what pgwarden costs per monitored database per month at the default cadence, computed
 * from the synthesized stack (memory sizes, schedules, alarms, dashboard), from measured durations and
 * counts (probe, remediation pass, one incident, metric batching), and from list prices; beside DevOps
 * Guru for RDS and a per-host SaaS.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import type { MonitorReport } from '../functions/monitor/monitor.ts';
import { monitorSettings } from '../functions/monitor/settings.ts';
import { summarize } from '../functions/monitor/summary.ts';
import { parseConfig } from '../infra/config.ts';
import { PgWardenStack } from '../infra/pgwarden-stack.ts';
import { parseDuration } from '../shared/duration.ts';
import { createConsoleLogger, silentLogger } from '../shared/logger.ts';
import {
  emfRecord,
  MAX_DATUMS_PER_CALL,
  METRICS,
  type MetricName,
  type Sample,
  samplesFromProbe,
  toDatums,
} from '../shared/metrics.ts';
import { type HealthSnapshot, probe } from '../shared/probe/snapshot.ts';
import { remediate } from '../shared/remediation/remediator.ts';
import { DEFAULT_REMEDIATION } from '../shared/target.ts';
import { openIdleSessions } from '../test/helpers/faults.ts';
import { HOURS_PER_MONTH, PRICES, type Price, SECONDS_PER_MONTH } from './prices.ts';
import { measureIncident } from './remediation.ts';
import {
  type BenchOptions,
  count,
  createRoles,
  type Measured,
  median,
  ms,
  progress,
  ROOT,
  type SectionResult,
  type SummaryRow,
  seconds,
  startBenchServer,
  table,
  usd,
} from './support.ts';

const SECTION = 'cost';
const FLEETS = [1, 10, 100] as const;

/** Assumptions the model cannot measure here, each stated in the results. */
const ASSUMED = {
  /** The monitor's run past PGWARDEN_RUN_FOR: the last probes and the PutMetricData flush. */
  monitorTailMs: 500,
  /** Lambda's own START, END and REPORT lines (with the X-Ray trace id) per invocation. */
  platformLogBytes: 400,
  /** Keys Powertools Logger adds to every line (function name, ARN, request id, trace id, ...). */
  powertoolsLineBytes: 300,
  incidentsPerDatabaseMonth: 2,
  /** Two backup events a day reach rds-events for every monitored instance. */
  rdsEventsPerDatabaseMonth: 60,
  rdsEventMs: 150,
  runbookTaskMs: 300,
  /** The Lambda Invoke round trip the sweep waits for, beyond the remediate function's own duration. */
  invokeOverheadMs: 20,
  sweepBaseMs: 100,
  /** Idle sessions an application keeps (the remediation pass lists and skips each one). */
  sessions: 100,
};

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation template JSON.
type Json = any;

type FunctionName = 'monitor' | 'probe' | 'remediate' | 'sweep' | 'rds-events' | 'runbook';

interface StackFacts {
  memoryMb: Record<FunctionName, number>;
  /** Functions that start their own X-Ray traces (Active); PassThrough ones are traced only with their caller. */
  activeTracing: Record<FunctionName, boolean>;
  runForMs: number;
  cadenceMs: number;
  sweepEveryMinutes: number;
  alarms: { fixed: number; perTarget: number; fixedMetrics: number; perTargetMetrics: number };
  dashboards: number;
}

/** The stack with `targets` example databases, synthesized in process without bundling. */
function template(targets: number): Json {
  const raw = JSON.parse(readFileSync(join(ROOT, 'pgwarden.config.example.json'), 'utf8'));
  const example = raw.fleet.targets[0];
  raw.fleet.targets = Array.from({ length: targets }, (_, i) => ({
    ...example,
    id: `db-${i + 1}`,
    host: `db-${i + 1}.abcdefghijkl.us-east-1.rds.amazonaws.com`,
    rds: { instanceId: `db-${i + 1}` },
  }));
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PgWardenStack(app, 'PgWarden', { config: parseConfig(raw, { demo: false }) });
  return app.synth().getStackByName(stack.stackName).template;
}

function alarmCounts(t: Json): { alarms: number; metrics: number } {
  let alarms = 0;
  let metrics = 0;
  for (const resource of Object.values<Json>(t.Resources)) {
    if (resource.Type !== 'AWS::CloudWatch::Alarm') continue;
    alarms += 1;
    const queries: Json[] | undefined = resource.Properties.Metrics;
    metrics += queries ? Math.max(1, queries.filter((q) => q.MetricStat).length) : 1;
  }
  return { alarms, metrics };
}

function stackFacts(): StackFacts {
  const one = template(1);
  const two = template(2);
  const a1 = alarmCounts(one);
  const a2 = alarmCounts(two);
  const fns = Object.entries<Json>(one.Resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function');
  const memory = (fragment: string) => {
    const found = fns.find(([id]) => id.startsWith(`Functions${fragment}Function`));
    if (!found) throw new Error(`no ${fragment} function in the template`);
    return found[1].Properties.MemorySize as number;
  };
  const active = (fragment: string) => {
    const found = fns.find(([id]) => id.startsWith(`Functions${fragment}Function`));
    return found?.[1].Properties.TracingConfig?.Mode === 'Active';
  };
  const monitorEnv = fns.find(([id]) => id.startsWith('FunctionsMonitorFunction'))?.[1].Properties.Environment
    .Variables;
  /** A monitor timing as deployed: the template's variable, read the way the monitor reads it. */
  const monitorSetting = (env: Record<string, unknown> | undefined, key: 'runForMs' | 'cadenceMs') => {
    const { variable, defaultMs } = monitorSettings.settings[key];
    const text = env?.[variable];
    return (typeof text === 'string' ? parseDuration(text) : undefined) ?? defaultMs;
  };
  const rate = (target: string) => {
    const rule = Object.values<Json>(one.Resources).find(
      (r) =>
        r.Type === 'AWS::Events::Rule' &&
        r.Properties.ScheduleExpression &&
        JSON.stringify(r.Properties.Targets).includes(target),
    );
    const match = /rate\((\d+) minutes?\)/.exec(rule?.Properties.ScheduleExpression ?? '');
    if (!match) throw new Error(`no schedule for ${target}`);
    return Number(match[1]);
  };
  return {
    memoryMb: {
      monitor: memory('Monitor'),
      probe: memory('Probe'),
      remediate: memory('Remediate'),
      sweep: memory('Sweep'),
      'rds-events': memory('RdsEvents'),
      runbook: memory('Runbook'),
    },
    activeTracing: {
      monitor: active('Monitor'),
      probe: active('Probe'),
      remediate: active('Remediate'),
      sweep: active('Sweep'),
      'rds-events': active('RdsEvents'),
      runbook: active('Runbook'),
    },
    runForMs: monitorSetting(monitorEnv, 'runForMs'),
    cadenceMs: monitorSetting(monitorEnv, 'cadenceMs'),
    sweepEveryMinutes: rate('FunctionsSweepFunction'),
    alarms: {
      perTarget: a2.alarms - a1.alarms,
      fixed: a1.alarms - (a2.alarms - a1.alarms),
      perTargetMetrics: a2.metrics - a1.metrics,
      fixedMetrics: a1.metrics - (a2.metrics - a1.metrics),
    },
    dashboards: Object.values<Json>(one.Resources).filter((r) => r.Type === 'AWS::CloudWatch::Dashboard')
      .length,
  };
}

/** PutMetricData datums and calls of one monitor run over `targets`, from the real batching code. */
function batching(
  snapshot: HealthSnapshot,
  targets: number,
  facts: StackFacts,
): { datums: number; calls: number } {
  let datums = 0;
  let calls = 0;
  const offsets = [0, 10, 20, 30, 40, 50];
  for (const offset of offsets) {
    const start = Date.UTC(2026, 0, 1, 12, 0, offset);
    const samples: Sample[] = [];
    for (let tick = start; tick < start + facts.runForMs; tick += facts.cadenceMs) {
      samples.push({ name: 'MonitorHeartbeat', value: 1, timestamp: tick });
      for (let i = 0; i < targets; i++)
        samples.push(
          ...samplesFromProbe(
            { ...snapshot, checkedAt: new Date(tick + 15).toISOString() },
            `db-${i + 1}`,
            0,
          ),
        );
    }
    const d = toDatums(samples).length;
    datums += d;
    calls += Math.ceil(d / MAX_DATUMS_PER_CALL);
  }
  return { datums: datums / offsets.length, calls: calls / offsets.length };
}

/** Traces recorded per second under the default sampling rule: 1 request a second and 5 % of the rest. */
function traced(requestsPerSecond: number): number {
  return Math.min(requestsPerSecond, 1) + 0.05 * Math.max(0, requestsPerSecond - 1);
}

interface Inputs {
  facts: StackFacts;
  probeMs: number;
  probeSource: string;
  remediateMs: number;
  remediateLogBytes: number;
  emfBytes: number;
  summaryBytes: (targets: number) => number;
  incident: NonNullable<Measured['incident']>;
  incidentSource: string;
  batching: (targets: number) => { datums: number; calls: number };
  alwaysPerTarget: MetricName[];
  eventOnly: MetricName[];
}

interface LineItem {
  item: string;
  basis: string;
  usd: (targets: number) => number;
}

function lineItems(x: Inputs): LineItem[] {
  const f = x.facts;
  const gbs = PRICES.lambdaArmGbSecond.usd;
  const req = PRICES.lambdaRequest.usd;
  const gb = (fn: keyof StackFacts['memoryMb']) => f.memoryMb[fn] / 1_024;
  const monitorRuns = HOURS_PER_MONTH * 60;
  const monitorSeconds = (f.runForMs + ASSUMED.monitorTailMs) / 1_000;
  const probesPerTarget = SECONDS_PER_MONTH / (f.cadenceMs / 1_000);
  const sweeps = (HOURS_PER_MONTH * 60) / f.sweepEveryMinutes;
  const sweepSeconds = (n: number) =>
    (ASSUMED.sweepBaseMs + Math.ceil(n / 5) * (x.remediateMs + ASSUMED.invokeOverheadMs)) / 1_000;
  const incidents = (n: number) => n * ASSUMED.incidentsPerDatabaseMonth;
  const rdsEvents = (n: number) => n * ASSUMED.rdsEventsPerDatabaseMonth;
  const i = x.incident;
  const logBytes = (n: number) =>
    monitorRuns * (ASSUMED.platformLogBytes + x.summaryBytes(n) + ASSUMED.powertoolsLineBytes) +
    n * probesPerTarget * ASSUMED.platformLogBytes +
    n * sweeps * (ASSUMED.platformLogBytes + x.emfBytes + x.remediateLogBytes) +
    sweeps * (ASSUMED.platformLogBytes + 2 * ASSUMED.powertoolsLineBytes) +
    rdsEvents(n) * (ASSUMED.platformLogBytes + 2 * ASSUMED.powertoolsLineBytes) +
    incidents(n) * (i.runbookTasks + i.probeTasks + i.remediateTasks) * (ASSUMED.platformLogBytes + 600);
  // The monitor and the sweep invoke the probe and remediate functions without passing a trace
  // header, so a PassThrough function starts no traces of its own there; inside an incident the state
  // machine (traced) passes one.
  const t = f.activeTracing;
  const tracesPerMonth = (n: number) =>
    SECONDS_PER_MONTH *
    ((t.monitor ? traced(1 / 60) : 0) +
      (t.probe ? traced((n * 1_000) / f.cadenceMs) : 0) +
      (t.remediate ? traced(n / (f.sweepEveryMinutes * 60)) : 0) +
      (t.sweep ? traced(1 / (f.sweepEveryMinutes * 60)) : 0) +
      (t['rds-events'] ? traced(rdsEvents(n) / SECONDS_PER_MONTH) : 0) +
      traced((incidents(n) * (i.runbookTasks + i.probeTasks + i.remediateTasks)) / SECONDS_PER_MONTH));
  const metricUsd = PRICES.customMetric.usd;
  return [
    {
      item: 'Lambda: monitor',
      basis: `${count(monitorRuns)} runs × ${monitorSeconds.toFixed(1)} s × ${f.memoryMb.monitor} MB (runs for PGWARDEN_RUN_FOR whatever the fleet size)`,
      usd: () => monitorRuns * (monitorSeconds * gb('monitor') * gbs + req),
    },
    {
      item: 'DynamoDB: monitor lease',
      basis: `${count(monitorRuns)} runs × 2 writes (take and free the lease), one request unit each`,
      usd: () => monitorRuns * 2 * PRICES.dynamodbWriteRequest.usd,
    },
    {
      item: 'Lambda: probe',
      basis: `${count(Math.round(probesPerTarget))} invocations per database × ${ms(x.probeMs)} (${x.probeSource}) × ${f.memoryMb.probe} MB`,
      usd: (n) => n * probesPerTarget * ((x.probeMs / 1_000) * gb('probe') * gbs + req),
    },
    {
      item: 'Lambda: sweep + remediate',
      basis: `${count(Math.round(sweeps))} sweeps; remediate ${ms(x.remediateMs)} per database (measured, ${ASSUMED.sessions} idle sessions) × ${f.memoryMb.remediate} MB`,
      usd: (n) =>
        sweeps * (sweepSeconds(n) * gb('sweep') * gbs + req) +
        n * sweeps * ((x.remediateMs / 1_000) * gb('remediate') * gbs + req),
    },
    {
      item: 'Lambda: rds-events',
      basis: `${ASSUMED.rdsEventsPerDatabaseMonth} events per database (assumed: backups) × ${ASSUMED.rdsEventMs} ms (assumed)`,
      usd: (n) => rdsEvents(n) * ((ASSUMED.rdsEventMs / 1_000) * gb('rds-events') * gbs + req),
    },
    {
      item: 'Lambda: runbook tasks',
      basis: `${ASSUMED.incidentsPerDatabaseMonth} incidents per database (assumed) × ${i.runbookTasks} runbook (${ASSUMED.runbookTaskMs} ms assumed), ${i.probeTasks} probe, ${i.remediateTasks} remediate tasks (${x.incidentSource})`,
      usd: (n) =>
        incidents(n) *
        (i.runbookTasks * ((ASSUMED.runbookTaskMs / 1_000) * gb('runbook') * gbs + req) +
          i.probeTasks * ((x.probeMs / 1_000) * gb('probe') * gbs + req) +
          i.remediateTasks * ((x.remediateMs / 1_000) * gb('remediate') * gbs + req)),
    },
    {
      item: 'Step Functions',
      basis: `${i.transitions} state transitions per incident (${x.incidentSource})`,
      usd: (n) => incidents(n) * i.transitions * PRICES.stateTransition.usd,
    },
    {
      item: 'SNS',
      basis: `${i.published} messages per incident, each to one email subscriber`,
      usd: (n) => incidents(n) * i.published * (PRICES.snsPublish.usd + PRICES.snsEmail.usd),
    },
    {
      item: 'CloudWatch custom metrics',
      basis:
        `${x.alwaysPerTarget.length} per database always (${x.alwaysPerTarget.join(', ')}), 1 per deployment (MonitorHeartbeat); ` +
        `only in hours with events: ${x.eventOnly.join(', ')}`,
      usd: (n) =>
        (1 + n * x.alwaysPerTarget.length) * metricUsd + (incidents(n) * 2 * metricUsd) / HOURS_PER_MONTH,
    },
    {
      item: 'CloudWatch PutMetricData',
      basis: `one batched flush per monitor run: ${x.batching(1).datums.toFixed(0)} / ${x.batching(10).datums.toFixed(0)} / ${x.batching(100).datums.toFixed(0)} datums in ${x.batching(1).calls.toFixed(0)} / ${x.batching(10).calls.toFixed(0)} / ${x.batching(100).calls.toFixed(1)} call(s) for 1 / 10 / 100 databases; one per rds-events invocation`,
      usd: (n) => (monitorRuns * x.batching(n).calls + rdsEvents(n)) * PRICES.metricApiRequest.usd,
    },
    {
      item: 'CloudWatch alarms',
      basis: `${f.alarms.fixedMetrics} alarm metrics per deployment (${f.alarms.fixed} alarms) + ${f.alarms.perTargetMetrics} per database (${f.alarms.perTarget} alarms)`,
      usd: (n) => (f.alarms.fixedMetrics + n * f.alarms.perTargetMetrics) * PRICES.alarmMetric.usd,
    },
    {
      item: 'CloudWatch dashboard',
      basis: `${f.dashboards} dashboard (free if it is one of the account's first three)`,
      usd: () => f.dashboards * PRICES.dashboard.usd,
    },
    {
      item: 'CloudWatch Logs ingestion',
      basis: `platform lines ${ASSUMED.platformLogBytes} B per invocation (assumed), the monitor's run summary (measured), the remediate audit lines and EMF record (measured)`,
      usd: (n) => (logBytes(n) / 2 ** 30) * PRICES.logIngestGb.usd,
    },
    {
      item: 'X-Ray traces',
      basis: `default sampling (1 request a second + 5 % of the rest, per function); active tracing on ${
        (Object.entries(f.activeTracing) as Array<[string, boolean]>)
          .filter(([, on]) => on)
          .map(([name]) => name)
          .join(', ') || 'no function'
      }, pass-through on the others (traced only inside incidents)`,
      usd: (n) => tracesPerMonth(n) * PRICES.xrayTrace.usd,
    },
  ];
}

/** Measures the probe (unless section 1 did), a remediation pass, and a real snapshot for batching. */
async function measure(measured: Measured): Promise<{
  probeMs: number;
  probeSource: string;
  remediateMs: number;
  remediateLogBytes: number;
  snapshot: HealthSnapshot;
}> {
  progress(SECTION, `measuring a probe and a remediation pass with ${ASSUMED.sessions} idle sessions`);
  const server = await startBenchServer({
    maxConnections: ASSUMED.sessions + 50,
    settings: { reserved_connections: 3 },
  });
  try {
    const roles = await createRoles(server);
    const idle = await openIdleSessions(roles.app, ASSUMED.sessions, 'bench:idle');
    try {
      const spec = server.spec({ user: roles.monitor.user, password: roles.monitor.password });
      const walls: number[] = [];
      let snapshot: HealthSnapshot | undefined;
      for (let n = 0; n < 23; n++) {
        const started = performance.now();
        const result = await probe(spec, { label: 'db-1' }, { logger: silentLogger });
        if (n >= 3) walls.push(performance.now() - started);
        if (!result.ok) throw new Error(`probe failed: ${result.failure.message}`);
        snapshot = result;
      }
      const remediateWalls: number[] = [];
      const logBytes: number[] = [];
      for (let n = 0; n < 12; n++) {
        let bytes = 0;
        const logger = createConsoleLogger({
          level: 'info',
          write: (line) => {
            bytes += line.length + ASSUMED.powertoolsLineBytes;
          },
        });
        const started = performance.now();
        const result = await remediate(
          spec,
          {
            targetId: 'db-1',
            policy: DEFAULT_REMEDIATION,
            actions: ['idle', 'idle_in_transaction'],
            connectTimeoutMs: 3_000,
            statementTimeoutMs: 5_000,
          },
          { logger },
        );
        if (!result.ok) throw new Error(`remediation pass failed: ${result.failure.message}`);
        if (n >= 2) {
          remediateWalls.push(performance.now() - started);
          logBytes.push(bytes);
        }
      }
      const probeMs = measured.probe?.medianMs ?? median(walls);
      return {
        probeMs,
        probeSource: measured.probe
          ? `measured in section 1 at ${count(measured.probe.sessions)} sessions`
          : `measured here at ${ASSUMED.sessions} sessions`,
        remediateMs: median(remediateWalls),
        remediateLogBytes: median(logBytes),
        snapshot: snapshot as HealthSnapshot,
      };
    } finally {
      await idle.release();
    }
  } finally {
    await server.release();
  }
}

function summaryBytes(targets: number): number {
  const report: MonitorReport = {
    startedAt: new Date().toISOString(),
    endedAt: new Date().toISOString(),
    ticks: 6,
    probes: 6 * targets,
    targets: Array.from({ length: targets }, (_, i) => ({
      targetId: `db-${i + 1}`,
      probes: 6,
      status: 'healthy',
      findings: [],
    })),
    incidents: [],
  };
  return JSON.stringify({
    message: 'monitor run complete',
    ...summarize(report, { sent: 0, calls: 0, failed: 0 }),
  }).length;
}

export async function cost(options: BenchOptions, measured: Measured): Promise<SectionResult> {
  progress(SECTION, 'synthesizing the stack with 1 and 2 databases (alarms, memory, schedules)');
  const facts = stackFacts();
  const m = await measure(measured);
  let incident = measured.incident;
  let incidentSource = 'measured in section 3';
  if (!incident) {
    progress(SECTION, 'measuring one production-settings incident (about 90 s)');
    incident = await measureIncident(options.seed);
    incidentSource = 'measured here, one incident';
    if (!incident) throw new Error('the incident did not run to its end');
  }
  const always = new Set<MetricName>(samplesFromProbe(m.snapshot, 'db-1', 0).map((s) => s.name));
  // The remediate function publishes SessionsTerminated (0 or more) on every pass, through its EMF line.
  always.add('SessionsTerminated');
  const eventOnly = (Object.keys(METRICS) as MetricName[]).filter(
    (n) => !always.has(n) && n !== 'MonitorHeartbeat',
  );
  const cache = new Map<number, { datums: number; calls: number }>();
  const inputs: Inputs = {
    facts,
    probeMs: m.probeMs,
    probeSource: m.probeSource,
    remediateMs: m.remediateMs,
    remediateLogBytes: m.remediateLogBytes,
    emfBytes: emfRecord([{ name: 'SessionsTerminated', value: 0 }], 'db-1', Date.now()).length,
    summaryBytes,
    incident,
    incidentSource,
    batching: (n) => {
      let b = cache.get(n);
      if (!b) {
        b = batching(m.snapshot, n, facts);
        cache.set(n, b);
      }
      return b;
    },
    alwaysPerTarget: [...always],
    eventOnly,
  };
  const items = lineItems(inputs);
  return report(items, inputs, measured);
}

/** Where the money goes, and what would move it. */
function findings(items: LineItem[], x: Inputs, measured: Measured): string[] {
  const at = (name: string, n: number) => items.find((i) => i.item === name)?.usd(n) ?? 0;
  const total = (n: number) => items.reduce((sum, i) => sum + i.usd(n), 0);
  const monitor = at('Lambda: monitor', 1);
  const metrics = at('CloudWatch custom metrics', 10) / 10;
  const xray = at('X-Ray traces', 10);
  const probes = at('Lambda: probe', 10);
  const rss = measured.batching
    ? `section 5 measured a peak RSS of ${measured.batching.peakRssMb.toFixed(0)} MB for a monitor that probed ${measured.batching.targets} databases itself`
    : 'the deployed monitor holds no database connection, only SDK clients';
  const monitorNote =
    x.facts.memoryMb.monitor > 256
      ? `; ${rss}, so 256 MB would halve that line`
      : ` (${rss}, which ${x.facts.memoryMb.monitor} MB holds with room to spare)`;
  const xrayNote = x.facts.activeTracing.probe
    ? `X-Ray costs ${usd(xray)} a month at 10 databases, more than the ${usd(probes)} of the probe invocations it traces, because active tracing with the default sampling records every probe invocation up to one a second; tracing the probe only with its caller would remove most of it.`
    : `X-Ray costs ${usd(xray)} a month at 10 databases: the probe, six invocations a minute per database, is traced only with its caller (inside incidents), not on its own.`;
  return [
    `The monitor (${usd(monitor)} a month, ${Math.round((monitor / total(1)) * 100)} % of a one-database deployment) is billed ` +
      `for ${x.facts.memoryMb.monitor} MB during the ${seconds(x.facts.runForMs, 0)} it waits through every minute${monitorNote}. ` +
      `The custom metrics cost ${usd(metrics)} per database (${x.alwaysPerTarget.length} metrics, each published every minute, at $0.30). ${xrayNote}`,
  ];
}

function report(items: LineItem[], x: Inputs, measured: Measured): SectionResult {
  const totals = FLEETS.map((n) => items.reduce((sum, i) => sum + i.usd(n), 0));
  const perDb = FLEETS.map((n, k) => (totals[k] as number) / n);
  const guru = (vcpus: number) => vcpus * PRICES.devOpsGuruGroupB.usd * HOURS_PER_MONTH;
  const rows: SummaryRow[] = [
    {
      figure: `Cost per monitored database per month, default cadence (${FLEETS.join(' / ')} databases)`,
      target: '—',
      measured: perDb.map((v) => usd(v)).join(' / '),
    },
    {
      figure: 'Beside: DevOps Guru for RDS (2-vCPU instance) / Datadog Database Monitoring (per host)',
      target: '—',
      measured: `${usd(guru(2))} / ${usd(PRICES.datadogDbm.usd)} (list prices)`,
    },
  ];
  const fleetHeaders = FLEETS.map((n) => `${n} database${n > 1 ? 's' : ''}`);
  const detail: string[] = [
    'A monthly bill (730 hours) for one deployment at the default settings, in us-east-1 at list prices without free tiers. The stack is synthesized in process ' +
      '(bundling skipped) with 1 and 2 databases to read memory sizes, schedules, and the alarms per deployment and per database; durations and counts are measured ' +
      'where this machine can measure them, and stated as assumptions where it cannot.',
    '',
    '### Inputs',
    '',
    ...table(
      ['input', 'value', 'from'],
      [
        [
          'cadence / monitor run length',
          `${seconds(x.facts.cadenceMs, 0)} / ${seconds(x.facts.runForMs, 0)} + ${ASSUMED.monitorTailMs} ms tail`,
          'template (PGWARDEN_CADENCE, PGWARDEN_RUN_FOR); tail assumed',
        ],
        [
          'function memory',
          Object.entries(x.facts.memoryMb)
            .map(([k, v]) => `${k} ${v} MB`)
            .join(', '),
          'template',
        ],
        ['sweep interval', `${x.facts.sweepEveryMinutes} min`, 'template (schedule rule)'],
        ['probe duration', ms(x.probeMs), x.probeSource],
        [
          'remediation pass (sweep)',
          `${ms(x.remediateMs)}, ${(x.remediateLogBytes / 1_024).toFixed(1)} KB of log lines`,
          `measured, ${ASSUMED.sessions} idle sessions, median of 10`,
        ],
        [
          'incident',
          `${x.incident.transitions} transitions; ${x.incident.runbookTasks} runbook, ${x.incident.probeTasks} probe, ${x.incident.remediateTasks} remediate tasks; ${x.incident.published} SNS messages`,
          x.incidentSource,
        ],
        ...FLEETS.map((n) => {
          const b = x.batching(n);
          return [
            `PutMetricData per monitor run, ${n} database(s)`,
            `${b.datums.toFixed(0)} datums in ${b.calls.toFixed(1)} call(s)`,
            `\`samplesFromProbe\` + \`toDatums\` over a simulated ${x.facts.runForMs / 1_000} s run, averaged over its start second`,
          ];
        }),
        [
          'alarms',
          `${x.facts.alarms.fixed} per deployment (${x.facts.alarms.fixedMetrics} metrics) + ${x.facts.alarms.perTarget} per database (${x.facts.alarms.perTargetMetrics} metrics)`,
          'template',
        ],
        ['incidents per database', `${ASSUMED.incidentsPerDatabaseMonth} a month`, 'assumed'],
        [
          'RDS events per database',
          `${ASSUMED.rdsEventsPerDatabaseMonth} a month, ${ASSUMED.rdsEventMs} ms each`,
          'assumed',
        ],
        [
          'runbook task duration',
          `${ASSUMED.runbookTaskMs} ms`,
          'assumed (evidence tasks call RDS and CloudWatch)',
        ],
      ],
    ),
    '',
    '### Monthly bill',
    '',
    ...table(
      ['item', ...fleetHeaders, 'basis'],
      [
        ...items.map((i) => [i.item, ...FLEETS.map((n) => usd(i.usd(n))), i.basis]),
        ['**total**', ...totals.map((t) => `**${usd(t)}**`), ''],
        ['**per database**', ...perDb.map((t) => `**${usd(t)}**`), ''],
      ],
    ),
    '',
    ...findings(items, x, measured),
    '',
    `The monitor runs whatever the fleet's size, so its cost is shared by the databases; the probes themselves — one short invocation every ` +
      `${seconds(x.facts.cadenceMs, 0)} per database — are cents. A probe that takes 50 ms in a VPC with TLS instead of the ${ms(x.probeMs)} measured here adds ` +
      `${usd((SECONDS_PER_MONTH / (x.facts.cadenceMs / 1_000)) * ((50 - x.probeMs) / 1_000) * (x.facts.memoryMb.probe / 1_024) * PRICES.lambdaArmGbSecond.usd)} per database. ` +
      "Free tiers (1 M Lambda requests and 400,000 GB-s, 10 custom metrics and 10 alarms, 3 dashboards, 100,000 traces, 4,000 state transitions a month) would lower a small deployment's bill further. " +
      'Not included: a Secrets Manager secret per database when using secret authentication ($0.40 a month plus API calls; IAM authentication needs none) and ' +
      'a Secrets Manager interface endpoint if the VPC has neither one nor a NAT.',
    '',
    '### Beside what teams run today',
    '',
    ...table(
      ['', 'per database per month', 'what it does', 'price'],
      [
        [
          'pgwarden, 1 / 10 / 100 databases',
          perDb.map((v) => usd(v)).join(' / '),
          'probes every 10 s, metrics, alarms, runbook, guarded remediation, pages',
          'this table',
        ],
        [
          'DevOps Guru for RDS, 2-vCPU / 4-vCPU instance',
          `${usd(guru(2))} / ${usd(guru(4))}`,
          'anomaly detection and recommendations on Performance Insights data; does not act',
          `${PRICES.devOpsGuruGroupB.display} — ${PRICES.devOpsGuruGroupB.source}`,
        ],
        [
          'Datadog Database Monitoring',
          usd(PRICES.datadogDbm.usd),
          'query-level monitoring through an agent (the agent host is extra); does not act',
          `${PRICES.datadogDbm.display} — ${PRICES.datadogDbm.source}`,
        ],
      ],
    ),
    '',
    'All prices are list prices at the time of writing, us-east-1, without free tiers or discounts:',
    '',
    ...Object.values(PRICES).map((p: Price) => `- ${p.display}: ${p.source}`),
  ];
  if (measured.batching)
    detail.push(
      '',
      `Cross-check from section 5: a ${measured.batching.runMs / 1_000} s monitor run over ${measured.batching.targets} targets folded its samples into ` +
        `${measured.batching.datums} datums, sent in ${measured.batching.calls} PutMetricData call(s).`,
    );
  return { id: 'cost', title: '6. Cost per monitored database', rows, detail };
}
