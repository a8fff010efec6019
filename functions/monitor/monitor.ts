/**
 * The monitor's core: every target on its own sub-minute cadence, probes bounded in flight, a fast
 * confirmation when a probe looks bad, metrics buffered for one batched send, and an incident opened
 * (idempotently) on an unhealthy verdict. One slow or dead target never delays the others.
 */
import type { Clock } from '../../shared/clock.ts';
import { describeError } from '../../shared/errors.ts';
import type { OpenOutcome } from '../../shared/incidents.ts';
import { limiter } from '../../shared/limit.ts';
import type { Logger } from '../../shared/logger.ts';
import { type MetricSink, samplesFromProbe } from '../../shared/metrics.ts';
import type { ProbeResult } from '../../shared/probe/snapshot.ts';
import type { Trigger } from '../../shared/runbook/types.ts';
import type { Target } from '../../shared/target.ts';
import { newTrackerState, observe, type Status, type TrackerState, type Verdict } from './tracker.ts';

/** The core's timings; their bounds and defaults are the monitor function's settings (settings.ts). */
export interface MonitorSettings {
  /** Time between scheduled probes of one target. */
  cadenceMs: number;
  /** Time between confirmation probes after a bad one. */
  confirmDelayMs: number;
  /** Most probes in flight at once. */
  concurrency: number;
  /** Don't ask Step Functions about an incident we opened or joined less than this ago. */
  incidentRecheckMs: number;
}

export interface MonitorDeps {
  probe(target: Target, signal: AbortSignal): Promise<ProbeResult>;
  openIncident(target: Target, trigger: Trigger): Promise<OpenOutcome>;
  metrics: MetricSink;
  clock: Clock;
  logger: Logger;
  /** Sees every probe result and its verdict (local mode's live view). */
  onResult?(target: Target, result: ProbeResult, verdict: Verdict): void;
}

/** Survives between runs (module scope in a warm Lambda, the loop in local mode). */
export type MonitorState = Map<string, TrackerState>;

export interface TargetReport {
  targetId: string;
  probes: number;
  status: Status;
  lastResult?: ProbeResult;
  findings: string[];
  incident?: OpenOutcome;
}

export interface MonitorReport {
  startedAt: string;
  endedAt: string;
  ticks: number;
  probes: number;
  targets: TargetReport[];
  incidents: OpenOutcome[];
}

/** Runs scheduled ticks until `until` (epoch ms) or the signal aborts. */
export async function runMonitor(
  targets: readonly Target[],
  settings: MonitorSettings,
  deps: MonitorDeps,
  state: MonitorState,
  until: number,
  signal: AbortSignal,
): Promise<MonitorReport> {
  const { clock, logger } = deps;
  const startedAt = clock.now();
  const limit = limiter(settings.concurrency);
  const reports = new Map<string, TargetReport>();
  const incidents: OpenOutcome[] = [];
  let ticks = 0;
  let probes = 0;

  const probeOnce = async (target: Target): Promise<ProbeResult> => {
    probes += 1;
    return limit(() => deps.probe(target, signal));
  };

  const watch = async (target: Target) => {
    const tracker = state.get(target.id) ?? newTrackerState();
    state.set(target.id, tracker);
    const report: TargetReport = { targetId: target.id, probes: 0, status: 'healthy', findings: [] };
    reports.set(target.id, report);
    for (let tick = startedAt; tick < until && !signal.aborted; tick += settings.cadenceMs) {
      const wait = tick - clock.now();
      if (wait > 0) await clock.sleep(wait, signal).catch(() => undefined);
      if (signal.aborted) break;
      if (clock.now() > tick + settings.cadenceMs) continue; // this tick was missed while confirming; skip it
      const nextTick = tick + settings.cadenceMs;
      const first = await unlessAborted(probeOnce(target), signal);
      // A probe cut short by the end of the run says nothing about its target: not recorded.
      if (first === undefined) break;
      let verdict = await record(target, tracker, report, first);
      while (
        verdict.status === 'suspect' &&
        !signal.aborted &&
        clock.now() + settings.confirmDelayMs < Math.min(nextTick, until)
      ) {
        await clock.sleep(settings.confirmDelayMs, signal).catch(() => undefined);
        if (signal.aborted) break;
        const confirmation = await unlessAborted(probeOnce(target), signal);
        if (confirmation === undefined) break;
        verdict = await record(target, tracker, report, confirmation);
      }
      if (verdict.status === 'unhealthy' && verdict.trigger) {
        const outcome = await open(target, tracker, verdict.trigger);
        if (outcome) {
          report.incident = outcome;
          incidents.push(outcome);
        }
      }
    }
  };

  const record = async (
    target: Target,
    tracker: TrackerState,
    report: TargetReport,
    result: ProbeResult,
  ): Promise<Verdict> => {
    const verdict = observe(tracker, result, target.thresholds);
    report.probes += 1;
    report.status = verdict.status;
    report.lastResult = result;
    report.findings = verdict.findings.map((f) => f.code);
    deps.metrics.add(samplesFromProbe(result, target.id, verdict.restarts));
    deps.onResult?.(target, result, verdict);
    if (verdict.status !== 'healthy') {
      logger.info('probe verdict', {
        targetId: target.id,
        status: verdict.status,
        ...(result.ok ? {} : { category: result.failure.category }),
        findings: report.findings,
      });
    }
    return verdict;
  };

  const open = async (
    target: Target,
    tracker: TrackerState,
    trigger: Trigger,
  ): Promise<OpenOutcome | undefined> => {
    const now = clock.now();
    if (
      tracker.incidentId &&
      tracker.incidentCheckedAt !== undefined &&
      now - tracker.incidentCheckedAt < settings.incidentRecheckMs
    ) {
      return undefined;
    }
    try {
      const outcome = await deps.openIncident(target, trigger);
      tracker.incidentId = outcome.incidentId;
      tracker.incidentCheckedAt = now;
      if (outcome.outcome === 'opened') {
        deps.metrics.add([{ name: 'IncidentsOpened', value: 1, target: target.id, timestamp: now }]);
      }
      return outcome;
    } catch (error) {
      // Counted: the incident-start-failures alarm pages, since no runbook follows this outage.
      logger.error('could not open the incident', { targetId: target.id, error: describeError(error) });
      deps.metrics.add([{ name: 'IncidentStartFailures', value: 1, target: target.id, timestamp: now }]);
      return undefined;
    }
  };

  const heartbeat = async () => {
    for (let tick = startedAt; tick < until && !signal.aborted; tick += settings.cadenceMs) {
      const wait = tick - clock.now();
      if (wait > 0) await clock.sleep(wait, signal).catch(() => undefined);
      if (signal.aborted) break;
      ticks += 1;
      deps.metrics.add([{ name: 'MonitorHeartbeat', value: 1, timestamp: clock.now() }]);
    }
  };

  await Promise.all([heartbeat(), ...targets.map((t) => watch(t))]);
  return {
    startedAt: new Date(startedAt).toISOString(),
    endedAt: new Date(clock.now()).toISOString(),
    ticks,
    probes,
    targets: [...reports.values()],
    incidents,
  };
}

/**
 * The probe's result, or undefined once the run is over: a probe still out then is not waited for,
 * whether or not its client honours the abort, so the run always ends in time to send its metrics.
 */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      promise.catch(() => undefined);
      resolve(undefined);
      return;
    }
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(signal.aborted ? undefined : value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) resolve(undefined);
        else reject(error);
      },
    );
  });
}
