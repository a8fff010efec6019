/**
 * The runbook function's settings: the topics it composes messages for, the runbook clock it goes by
 * (an execution's input is written by whoever may start one), its metric namespace (and the fleet,
 * which every function carries).
 */
import { NAMESPACE } from '../../shared/namespace.ts';
import { RUNBOOK_SETTINGS, runbookSettingsFrom } from '../../shared/runbook/settings.ts';
import { defineSettings, referenceSetting, type SettingsOf, textSetting } from '../../shared/settings.ts';

const TOPIC = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$/;

export const runbookFunctionSettings = defineSettings('runbook', {
  pagesTopicArn: referenceSetting('PGWARDEN_PAGES_TOPIC_ARN', {
    pattern: TOPIC,
    patternHint: 'the pages SNS topic ARN',
  }),
  notificationsTopicArn: referenceSetting('PGWARDEN_NOTIFICATIONS_TOPIC_ARN', {
    pattern: TOPIC,
    patternHint: 'the notifications SNS topic ARN',
  }),
  ...RUNBOOK_SETTINGS,
  namespace: textSetting('PGWARDEN_NAMESPACE', { maxLength: 255, defaultValue: NAMESPACE }),
});

export type RunbookFunctionSettings = SettingsOf<typeof runbookFunctionSettings.settings>;

/**
 * What the handler reads at cold start: its settings, the fleet and the runbook clock, which must be
 * able to page (a `ConfigError` naming the variables otherwise).
 */
export function runbookEnvironment(env: Record<string, string | undefined>) {
  const { fleet, ...settings } = runbookFunctionSettings.parseWithFleet(env);
  return { ...settings, fleet, runbook: runbookSettingsFrom(settings, runbookFunctionSettings.functionName) };
}
