/** The remediate function's settings: its session timeouts (and the fleet, which every function carries). */
import { REMEDIATION_TIMEOUTS } from '../../shared/remediation/remediator.ts';
import { defineSettings, type SettingsOf, sessionTimeoutSettings } from '../../shared/settings.ts';

export const remediateSettings = defineSettings('remediate', sessionTimeoutSettings(REMEDIATION_TIMEOUTS));

export type RemediateSettings = SettingsOf<typeof remediateSettings.settings>;

/** What the handler reads at cold start: its settings and the fleet. */
export function remediateEnvironment(env: Record<string, string | undefined>) {
  return remediateSettings.parseWithFleet(env);
}
