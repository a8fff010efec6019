/**
 * The whole of pgwarden on one machine: a PostgreSQL (embedded, or DATABASE_URL), the monitor on its
 * cadence, the idle sweep, and the incident runbook run from the same definition CDK deploys, with
 * pages going to the terminal and an outbox and metrics to a file. Drills inject real faults into the
 * database and the running system detects, remediates or escalates.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type MonitorState, runMonitor } from '../../functions/monitor/monitor.ts';
import { DEFAULT_MONITOR_SETTINGS } from '../../functions/monitor/settings.ts';
import type { Status } from '../../functions/monitor/tracker.ts';
import { runProbe } from '../../functions/probe/probe.ts';
import { probeSettings } from '../../functions/probe/settings.ts';
import { runRemediate } from '../../functions/remediate/remediate.ts';
import { remediateSettings } from '../../functions/remediate/settings.ts';
import { RDS_LOG_LINE_PREFIX } from '../../functions/runbook/evidence.ts';
import { sweepRequest } from '../../functions/sweep/sweep.ts';
import type { TargetCatalog } from '../../shared/binding.ts';
import { type Clock, systemClock } from '../../shared/clock.ts';
import { type ConnectionSpec, describeConnection } from '../../shared/connection.ts';
import { describeError } from '../../shared/errors.ts';
import { incidentIdOf, type OpenOutcome, openIncident, partOf } from '../../shared/incidents.ts';
import type { Logger } from '../../shared/logger.ts';
import { MemorySink, type MetricSink } from '../../shared/metrics.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import type { RemediationResult } from '../../shared/remediation/remediator.ts';
import type { IncidentRecord } from '../../shared/runbook/record.ts';
import { RUNBOOK_CLOCK, runbookSettingsOf } from '../../shared/runbook/settings.ts';
import type { RunbookSettings } from '../../shared/runbook/types.ts';
import {
  DEFAULT_REMEDIATION,
  DEFAULT_THRESHOLDS,
  type RemediationPolicy,
  type Target,
  type Thresholds,
} from '../../shared/target.ts';
import { LocalCloudWatch, LocalRds, LocalSecretsManager, LocalSns, type PublishedMessage } from './aws.ts';
import {
  DEFAULT_DRILL_DURATION_MS,
  DRILL_LIMITS,
  type Drill,
  type InjectedFault,
  inject,
  NEEDS_EMBEDDED,
} from './drills.ts';
import { type EmbeddedServer, startEmbeddedPostgres } from './embedded.ts';
import type { FaultTarget } from './faults.ts';
import { preparePrivateDir } from './home.ts';
import { MetricsFileSink, TeeSink, writeOutbox } from './outputs.ts';
import type { LocalExecution, LocalStepFunctions } from './step-functions.ts';
import { createLocalWorkflow, currentPart, LOCAL_STATE_MACHINE, waitForIncident } from './workflow.ts';

export interface LocalSettings {
  /** Monitor this database instead of starting an embedded one. */
  databaseUrl?: ConnectionSpec;
  /** Where the outbox, the metrics file and the control socket live. */
  home: string;
  cadenceMs: number;
  confirmDelayMs: number;
  escalateAfterMs: number;
  recheckMs: number;
  maxDurationMs: number;
  sweepEveryMs: number;
  thresholds: Thresholds;
  remediation: RemediationPolicy;
  /** max_connections of the embedded server (small, so an idle flood fills it quickly). */
  maxConnections: number;
  logger: Logger;
  clock?: Clock;
}

/**
 * Local mode's defaults: the production policy with the clocks shortened so a drill plays out in a
 * minute (printed at start-up, and each one a flag).
 */
export const LOCAL_PROFILE: Omit<LocalSettings, 'home' | 'logger' | 'databaseUrl'> = {
  cadenceMs: 2_000,
  confirmDelayMs: 500,
  escalateAfterMs: RUNBOOK_CLOCK.escalateAfter.defaultMs,
  recheckMs: 5_000,
  maxDurationMs: 30 * 60_000,
  sweepEveryMs: 30_000,
  thresholds: {
    ...DEFAULT_THRESHOLDS,
    longQuerySeconds: 20,
    idleInTransactionSeconds: 15,
    lockWaitSeconds: 5,
  },
  remediation: {
    ...DEFAULT_REMEDIATION,
    idleInTransactionAfterSeconds: 20,
    blockerIdleSeconds: 5,
    pressure: { utilizationPct: 95, idleAfterSeconds: 10 },
  },
  maxConnections: 30,
};

export type SystemEvent =
  | { type: 'ready'; target: string; database: string; embedded: boolean }
  | { type: 'probe'; targetId: string; result: ProbeResult; status: Status }
  | { type: 'incident'; outcome: OpenOutcome }
  | { type: 'step'; incidentId: string; state: string }
  | { type: 'published'; message: PublishedMessage; file: string }
  | { type: 'incident-ended'; incidentId: string; status: LocalExecution['status']; record?: IncidentRecord }
  | { type: 'sweep'; terminated: number; skipped: number; ok: boolean; detail?: string }
  | { type: 'drill'; drill: Drill; phase: 'injected' | 'released'; detail: string }
  | { type: 'error'; message: string };

export interface LiveStatus {
  targetId: string;
  database: string;
  status: Status | 'starting';
  last?: ProbeResult;
  incident?: { incidentId: string; state?: string };
}

export type DrillOutcome = 'resolved' | 'escalated' | 'unresolved';

export interface DrillReport {
  drill: Drill;
  detail: string;
  incidentId?: string;
  outcome: DrillOutcome;
  status?: string;
  record?: IncidentRecord;
  published: PublishedMessage[];
}

const MONITOR_ROLE = 'pgwarden_monitor';
const APP_ROLE = 'pgwarden_drill_app';
const TARGET_ID = 'local';

function secret(): string {
  return `local-${Math.random().toString(36).slice(2, 12)}${Math.random().toString(36).slice(2, 12)}`;
}

/** A drill clock must be a whole number of milliseconds within DRILL_LIMITS, whoever sent it. */
function checkClock(name: string, ms: number | undefined, maxMs: number): void {
  if (ms === undefined) return;
  if (!Number.isInteger(ms) || ms < DRILL_LIMITS.minMs || ms > maxMs)
    throw new Error(
      `${name} must be a whole number of milliseconds between ${DRILL_LIMITS.minMs} and ${maxMs} (got ${String(ms)})`,
    );
}

/** The outcome of an incident, as the CLI reports it: a page makes it escalated. */
export function outcomeOf(record: IncidentRecord | undefined): DrillOutcome {
  if (record?.paged) return 'escalated';
  return record?.status === 'resolved' ? 'resolved' : 'unresolved';
}

export class LocalSystem {
  readonly settings: LocalSettings;
  readonly sns: LocalSns;
  readonly rds: LocalRds;
  readonly sfn: LocalStepFunctions;
  readonly target: Target;
  /** What the local functions know of the deployment: this one target. */
  readonly catalog: TargetCatalog;
  readonly metricsFile: string;
  readonly outbox: string;
  readonly live: LiveStatus;
  readonly memory = new MemorySink();
  private readonly listeners = new Set<(event: SystemEvent) => void>();
  private readonly controller = new AbortController();
  private readonly server: EmbeddedServer | undefined;
  private readonly secrets: LocalSecretsManager;
  private readonly drillContext: {
    app: FaultTarget;
    server?: EmbeddedServer;
    monitor: { user: string; password: string };
  };
  private readonly metrics: MetricSink;
  private readonly clock: Clock;
  private readonly faults = new Set<InjectedFault>();
  private readonly loops: Promise<void>[] = [];
  private readonly endings = new Map<string, Promise<void>>();
  private stopped = false;

  private constructor(init: {
    settings: LocalSettings;
    server: EmbeddedServer | undefined;
    target: Target;
    secrets: LocalSecretsManager;
    app: FaultTarget;
    monitor: { user: string; password: string };
  }) {
    this.settings = init.settings;
    this.clock = init.settings.clock ?? systemClock;
    this.server = init.server;
    this.secrets = init.secrets;
    this.target = init.target;
    this.catalog = { targets: [init.target], defaults: {} };
    this.metricsFile = join(init.settings.home, 'metrics.jsonl');
    this.outbox = join(init.settings.home, 'outbox');
    this.metrics = new TeeSink(new MetricsFileSink(this.metricsFile), this.memory);
    this.drillContext = {
      app: init.app,
      monitor: init.monitor,
      ...(init.server ? { server: init.server } : {}),
    };
    this.live = {
      targetId: init.target.id,
      database: describeConnection(init.target.connection),
      status: 'starting',
    };
    this.sns = new LocalSns(this.clock, async (message) => {
      const file = await writeOutbox(this.outbox, message);
      this.emit({ type: 'published', message, file });
    });
    this.rds = new LocalRds(this.clock);
    const server = init.server;
    if (server) {
      this.rds.add({
        id: TARGET_ID,
        status: () => (server.running ? 'available' : 'stopped'),
        logLines: () => server.logLines(),
        start: () => server.start(),
      });
    }
    this.sfn = createLocalWorkflow({
      clock: this.clock,
      logger: init.settings.logger,
      catalog: this.catalog,
      secrets: init.secrets,
      sns: this.sns,
      rds: this.rds,
      cloudwatch: new LocalCloudWatch(),
      waits: 'real',
      onStateEntered: (execution, state) => {
        const incidentId = incidentIdOf(execution.name);
        this.live.incident = { incidentId, state };
        this.emit({ type: 'step', incidentId, state });
      },
    });
  }

  /** Starts the database (unless given one), the monitor, the sweep and the runbook. */
  static async start(settings: LocalSettings, listener?: (event: SystemEvent) => void): Promise<LocalSystem> {
    await preparePrivateDir(settings.home);
    await preparePrivateDir(join(settings.home, 'outbox'));
    await rm(join(settings.home, 'metrics.jsonl'), { force: true });
    const secrets = new LocalSecretsManager();
    // A name of its own per system: resolved credentials are cached per secret name, process-wide.
    const secretId = `local/pgwarden-monitor-${Math.random().toString(36).slice(2, 10)}`;
    let server: EmbeddedServer | undefined;
    let connection: ConnectionSpec;
    let app: FaultTarget;
    let monitor: { user: string; password: string };
    if (settings.databaseUrl) {
      const spec = settings.databaseUrl;
      const password = spec.auth.kind === 'password' ? spec.auth.password : undefined;
      monitor = { user: spec.user ?? 'postgres', password: password ?? '' };
      secrets.put(secretId, { username: monitor.user, ...(password ? { password } : {}) });
      connection = { ...spec, auth: password ? { kind: 'secret', secretId } : { kind: 'none' } };
      app = { spec, credentials: { user: monitor.user, ...(password ? { password } : {}) } };
    } else {
      server = await startEmbeddedPostgres({
        maxConnections: settings.maxConnections,
        // RDS's log prefix, so the runbook reads the local log as it reads an RDS one.
        settings: { reserved_connections: 3, log_line_prefix: RDS_LOG_LINE_PREFIX },
      });
      try {
        monitor = { user: MONITOR_ROLE, password: secret() };
        const appPassword = secret();
        await server.admin(`CREATE ROLE ${MONITOR_ROLE} LOGIN PASSWORD '${monitor.password}'`);
        await server.admin(
          `GRANT pg_monitor, pg_signal_backend, pg_use_reserved_connections TO ${MONITOR_ROLE}`,
        );
        await server.admin(`CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${appPassword}'`);
        secrets.put(secretId, { username: monitor.user, password: monitor.password });
        connection = {
          host: server.host,
          port: server.port,
          database: 'postgres',
          user: MONITOR_ROLE,
          auth: { kind: 'secret', secretId },
          tls: { mode: 'disable' },
        };
        app = {
          spec: server.spec({ user: APP_ROLE, password: appPassword }),
          credentials: { user: APP_ROLE, password: appPassword },
        };
      } catch (error) {
        await server.destroy();
        throw error;
      }
    }
    const target: Target = {
      id: TARGET_ID,
      connection,
      ...(server ? { rds: { instanceId: TARGET_ID } } : {}),
      thresholds: settings.thresholds,
      remediation: settings.remediation,
    };
    const system = new LocalSystem({ settings, server, target, secrets, app, monitor });
    if (listener) system.on(listener);
    system.emit({
      type: 'ready',
      target: target.id,
      database: describeConnection(connection),
      embedded: Boolean(server),
    });
    system.loops.push(system.monitorLoop(), system.sweepLoop(), system.flushLoop());
    return system;
  }

  on(listener: (event: SystemEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: SystemEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A display that fails must not stop the system.
      }
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private runbookSettings(): RunbookSettings {
    return runbookSettingsOf({
      escalateAfterMs: this.settings.escalateAfterMs,
      recheckEveryMs: this.settings.recheckMs,
      maxDurationMs: this.settings.maxDurationMs,
    });
  }

  private async monitorLoop(): Promise<void> {
    const state: MonitorState = new Map();
    const signal = this.controller.signal;
    while (!signal.aborted) {
      try {
        await runMonitor(
          [this.target],
          {
            ...DEFAULT_MONITOR_SETTINGS,
            cadenceMs: this.settings.cadenceMs,
            confirmDelayMs: this.settings.confirmDelayMs,
            incidentRecheckMs: this.settings.recheckMs,
          },
          {
            probe: async (target) =>
              (await runProbe(
                {
                  targetId: target.id,
                  connection: target.connection,
                  longQueryThresholdSeconds: target.thresholds.longQuerySeconds,
                },
                { ...probeSettings.defaults, catalog: this.catalog },
                { logger: this.settings.logger, secrets: this.secretsClient(), clock: this.clock },
              )) as ProbeResult,
            openIncident: (target, trigger) => this.open(target, trigger),
            metrics: this.metrics,
            clock: this.clock,
            logger: this.settings.logger,
            onResult: (target, result, verdict) => {
              this.live.status = verdict.status;
              this.live.last = result;
              this.emit({ type: 'probe', targetId: target.id, result, status: verdict.status });
            },
          },
          state,
          this.clock.now() + 60_000,
          signal,
        );
      } catch (error) {
        this.emit({ type: 'error', message: `monitor: ${describeError(error)}` });
        await this.clock.sleep(1_000, signal).catch(() => undefined);
      }
    }
  }

  /** What connecting as the monitor needs (its local secret, logger and clock): for the doctor's checks. */
  probeDeps() {
    return { logger: this.settings.logger, secrets: this.secretsClient(), clock: this.clock };
  }

  /** The local Secrets Manager, typed as the SDK client the cores expect (it answers the same command). */
  private secretsClient(): Parameters<typeof runProbe>[2]['secrets'] {
    return this.secrets as unknown as Parameters<typeof runProbe>[2]['secrets'];
  }

  private async open(target: Target, trigger: Parameters<typeof openIncident>[2]): Promise<OpenOutcome> {
    const outcome = await openIncident(
      {
        sfn: this.sfn,
        stateMachineArn: LOCAL_STATE_MACHINE,
        clock: this.clock,
        logger: this.settings.logger,
      },
      target,
      trigger,
      this.runbookSettings(),
    );
    if (outcome.outcome === 'opened') {
      this.live.incident = { incidentId: outcome.incidentId };
      this.emit({ type: 'incident', outcome });
      const ending = waitForIncident(this.sfn, outcome.incidentId).then((parts) => {
        const execution = parts[parts.length - 1] as LocalExecution;
        const record = (execution.output ?? undefined) as IncidentRecord | undefined;
        if (this.live.incident?.incidentId === outcome.incidentId) delete this.live.incident;
        this.emit({
          type: 'incident-ended',
          incidentId: outcome.incidentId,
          status: execution.status,
          ...(record ? { record } : {}),
        });
      });
      this.endings.set(outcome.incidentId, ending);
    }
    return outcome;
  }

  private async sweepLoop(): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      await this.clock.sleep(this.settings.sweepEveryMs, signal).catch(() => undefined);
      if (signal.aborted) break;
      try {
        const result = (await runRemediate(
          sweepRequest(this.target),
          { ...remediateSettings.defaults, catalog: this.catalog },
          { logger: this.settings.logger, secrets: this.secretsClient(), clock: this.clock },
        )) as RemediationResult;
        const terminated = result.dryRun
          ? 0
          : result.terminated.filter((t) => t.outcome === 'terminated').length;
        const skipped = Object.values(result.skipCounts ?? {}).reduce((sum, n) => sum + n, 0);
        if (terminated > 0)
          this.metrics.add([
            {
              name: 'SessionsTerminated',
              value: terminated,
              target: this.target.id,
              timestamp: this.clock.now(),
            },
          ]);
        this.emit({
          type: 'sweep',
          terminated,
          skipped,
          ok: result.ok,
          ...(result.ok ? {} : { detail: `${result.failure.category}: ${result.failure.message}` }),
        });
      } catch (error) {
        this.emit({ type: 'error', message: `sweep: ${describeError(error)}` });
      }
    }
  }

  private async flushLoop(): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      await this.clock.sleep(5_000, signal).catch(() => undefined);
      await this.metrics
        .flush()
        .catch((error) => this.emit({ type: 'error', message: `metrics: ${describeError(error)}` }));
    }
  }

  /** Injects a fault; it is released after `forMs`, or by the caller, or when the system stops. */
  async inject(drill: Drill, forMs?: number): Promise<InjectedFault> {
    checkClock('forMs', forMs, DRILL_LIMITS.maxForMs);
    if (NEEDS_EMBEDDED.has(drill) && !this.server) {
      throw new Error(
        `the ${drill} drill needs the embedded server (it is not available with DATABASE_URL); try idle-flood, idle-in-transaction, lock-chain or long-query`,
      );
    }
    const fault = await inject(drill, this.drillContext);
    this.rds.recordEvent(TARGET_ID, `drill ${drill}: ${fault.detail}`);
    let released = false;
    const tracked: InjectedFault = {
      ...fault,
      release: async () => {
        if (released) return;
        released = true;
        this.faults.delete(tracked);
        await fault.release();
        this.emit({ type: 'drill', drill, phase: 'released', detail: `${drill} released` });
      },
    };
    this.faults.add(tracked);
    this.emit({ type: 'drill', drill, phase: 'injected', detail: fault.detail });
    const duration = forMs ?? DEFAULT_DRILL_DURATION_MS[drill];
    if (duration !== undefined) {
      void this.clock
        .sleep(duration, this.controller.signal)
        .then(() => tracked.release())
        .catch(() => undefined);
    }
    return tracked;
  }

  /**
   * Runs a drill to its end: inject, wait for the incident it causes, wait for that incident to end
   * (or `timeoutMs`), release, report.
   */
  async drill(drill: Drill, options: { forMs?: number; timeoutMs?: number } = {}): Promise<DrillReport> {
    checkClock('timeoutMs', options.timeoutMs, DRILL_LIMITS.maxTimeoutMs);
    const timeoutMs = options.timeoutMs ?? 5 * 60_000;
    const deadline = this.clock.now() + timeoutMs;
    const known = new Set(this.sfn.executions.keys());
    const fault = await this.inject(drill, options.forMs);
    const from = this.sns.published.length;
    try {
      let incidentId: string | undefined;
      while (!incidentId && this.clock.now() < deadline && !this.controller.signal.aborted) {
        incidentId = [...this.sfn.executions.keys()].find((name) => !known.has(name) && partOf(name) === 1);
        if (!incidentId) await this.clock.sleep(200, this.controller.signal).catch(() => undefined);
      }
      if (!incidentId) {
        return {
          drill,
          detail: fault.detail,
          outcome: 'unresolved',
          published: this.sns.published.slice(from),
        };
      }
      const remaining = Math.max(0, deadline - this.clock.now());
      await Promise.race([
        waitForIncident(this.sfn, incidentId),
        this.clock.sleep(remaining, this.controller.signal).catch(() => undefined),
      ]);
      await this.endings.get(incidentId);
      // The incident may have gone on in later executions: its latest part says how it stands.
      const execution = currentPart(this.sfn, incidentId) as LocalExecution;
      const record = execution.output as IncidentRecord | undefined;
      return {
        drill,
        detail: fault.detail,
        incidentId,
        outcome:
          execution.status === 'RUNNING' ? (record?.paged ? 'escalated' : 'unresolved') : outcomeOf(record),
        status:
          execution.status === 'RUNNING' ? 'running' : (record?.status ?? execution.status.toLowerCase()),
        ...(record ? { record } : {}),
        published: this.sns.published.slice(from),
      };
    } finally {
      await fault.release();
    }
  }

  /** Stops everything: loops, running incidents, injected faults, the embedded server. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.controller.abort();
    for (const execution of this.sfn.executions.values()) {
      if (execution.status === 'RUNNING') {
        const { StopExecutionCommand } = await import('@aws-sdk/client-sfn');
        await this.sfn
          .send(new StopExecutionCommand({ executionArn: execution.executionArn }))
          .catch(() => undefined);
      }
    }
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.faults].map((f) => f.release()));
    await this.metrics.flush().catch(() => undefined);
    await this.server?.destroy();
  }
}
