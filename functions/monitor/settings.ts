/**
 * The monitor function's settings: its timings, the functions and tables it calls, the runbook clock
 * it puts in every incident it opens (and the fleet, which every function carries). Local mode and
 * the configuration file's `schedules.cadence` take their bounds and defaults from here.
 */
import { NAMESPACE } from '../../shared/namespace.ts';
import {
  RUNBOOK_SETTINGS,
  runbookSettingsFrom,
  STATE_MACHINE_SETTING,
} from '../../shared/runbook/settings.ts';
import {
  countSetting,
  defineSettings,
  durationSetting,
  referenceSetting,
  type SettingsOf,
  textSetting,
} from '../../shared/settings.ts';
import type { MonitorSettings } from './monitor.ts';

export const monitorSettings = defineSettings('monitor', {
  ...STATE_MACHINE_SETTING,
  ...RUNBOOK_SETTINGS,
  probeFunction: referenceSetting('PGWARDEN_PROBE_FUNCTION', {
    maxLength: 140,
    patternHint: 'the probe function name or ARN',
  }),
  leaseTable: referenceSetting('PGWARDEN_LEASE_TABLE', {
    maxLength: 255,
    patternHint: 'the monitor lease table name',
  }),
  /** Time between scheduled probes of one target. */
  cadenceMs: durationSetting('PGWARDEN_CADENCE', { minMs: 1_000, maxMs: 60_000, defaultMs: 10_000 }),
  /** Time between confirmation probes after a bad one. */
  confirmDelayMs: durationSetting('PGWARDEN_CONFIRM_DELAY', { minMs: 100, maxMs: 10_000, defaultMs: 1_000 }),
  /** Most probes in flight at once. */
  concurrency: countSetting('PGWARDEN_CONCURRENCY', { min: 1, max: 100, defaultValue: 10 }),
  /**
   * How long one run probes. With the one-minute schedule and the 59 s Lambda timeout: ticks at
   * 0-50 s at the default 10 s cadence, the last probes and the metrics flush before the timeout.
   */
  runForMs: durationSetting('PGWARDEN_RUN_FOR', { minMs: 1_000, maxMs: 14 * 60_000, defaultMs: 51_000 }),
  namespace: textSetting('PGWARDEN_NAMESPACE', { maxLength: 255, defaultValue: NAMESPACE }),
});

export type MonitorFunctionSettings = SettingsOf<typeof monitorSettings.settings>;

/** Don't ask Step Functions about an incident opened or joined less than this ago (not deployed as a variable). */
const INCIDENT_RECHECK_MS = 60_000;

/** The monitor core's settings as deployed by default (the benchmarks and tests start from these). */
export const DEFAULT_MONITOR_SETTINGS: MonitorSettings = {
  cadenceMs: monitorSettings.defaults.cadenceMs,
  confirmDelayMs: monitorSettings.defaults.confirmDelayMs,
  concurrency: monitorSettings.defaults.concurrency,
  incidentRecheckMs: INCIDENT_RECHECK_MS,
};

/**
 * What the handler reads at cold start: its settings, the fleet and the runbook clock, which must be
 * able to page (a `ConfigError` naming the variables otherwise).
 */
export function monitorEnvironment(env: Record<string, string | undefined>) {
  const { fleet, ...settings } = monitorSettings.parseWithFleet(env);
  return { ...settings, fleet, runbook: runbookSettingsFrom(settings, monitorSettings.functionName) };
}
