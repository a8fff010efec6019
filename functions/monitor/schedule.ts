/** The monitor's invocation event and its run summary. */
import { ValidationError } from '../../shared/errors.ts';
import { object, oneOf, optional, parse, string } from '../../shared/validate.ts';
import type { MonitorReport } from './monitor.ts';

/** An EventBridge scheduled event, or `{}` for a manual test invoke. */
const scheduleEvent = object(
  {
    source: optional(oneOf(['aws.events', 'aws.scheduler'] as const)),
    'detail-type': optional(oneOf(['Scheduled Event'] as const)),
    id: optional(string()),
  },
  { strict: false },
);

export function parseScheduleEvent(event: unknown): void {
  parse(scheduleEvent, event ?? {}, 'scheduled event', ValidationError);
}

export function summarize(report: MonitorReport, metrics: { sent: number; calls: number; failed: number }) {
  return {
    ticks: report.ticks,
    probes: report.probes,
    targets: report.targets.map((t) => ({
      targetId: t.targetId,
      status: t.status,
      probes: t.probes,
      ...(t.lastResult && !t.lastResult.ok ? { failure: t.lastResult.failure.category } : {}),
      ...(t.findings.length ? { findings: t.findings } : {}),
      ...(t.incident ? { incident: t.incident.incidentId, outcome: t.incident.outcome } : {}),
    })),
    metrics,
  };
}
