/**
 * The rds-events function's settings: the state machine it starts, the runbook clock it puts in every
 * incident it opens, its metric namespace (and the fleet, which every function carries).
 */
import { NAMESPACE } from '../../shared/namespace.ts';
import {
  RUNBOOK_SETTINGS,
  runbookSettingsFrom,
  STATE_MACHINE_SETTING,
} from '../../shared/runbook/settings.ts';
import { defineSettings, type SettingsOf, textSetting } from '../../shared/settings.ts';

export const rdsEventsSettings = defineSettings('rds-events', {
  ...STATE_MACHINE_SETTING,
  ...RUNBOOK_SETTINGS,
  namespace: textSetting('PGWARDEN_NAMESPACE', { maxLength: 255, defaultValue: NAMESPACE }),
});

export type RdsEventsSettings = SettingsOf<typeof rdsEventsSettings.settings>;

/**
 * What the handler reads at cold start: its settings, the fleet and the runbook clock, which must be
 * able to page (a `ConfigError` naming the variables otherwise).
 */
export function rdsEventsEnvironment(env: Record<string, string | undefined>) {
  const { fleet, ...settings } = rdsEventsSettings.parseWithFleet(env);
  return { ...settings, fleet, runbook: runbookSettingsFrom(settings, rdsEventsSettings.functionName) };
}
