/** The monitor's run summary: what its invocation returns. */
import type { MonitorReport } from './monitor.ts';

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
