/** The probe function's settings: its session timeouts (and the fleet, which every function carries). */
import { PROBE_TIMEOUTS } from '../../shared/probe/snapshot.ts';
import { defineSettings, type SettingsOf, sessionTimeoutSettings } from '../../shared/settings.ts';

export const probeSettings = defineSettings('probe', sessionTimeoutSettings(PROBE_TIMEOUTS));

export type ProbeSettings = SettingsOf<typeof probeSettings.settings>;

/** What the handler reads at cold start: its settings and the fleet. */
export function probeEnvironment(env: Record<string, string | undefined>) {
  return probeSettings.parseWithFleet(env);
}
