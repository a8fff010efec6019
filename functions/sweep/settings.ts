/**
 * The sweep function's settings: the function it calls, how many targets at once, and how often the
 * schedule runs it (the configuration file's `schedules.sweepEvery`, which also bounds its timeout).
 */
import { countSetting, defineSettings, referenceSetting, type SettingsOf } from '../../shared/settings.ts';

export const sweepSettings = defineSettings('sweep', {
  remediateFunction: referenceSetting('PGWARDEN_REMEDIATE_FUNCTION', {
    maxLength: 140,
    patternHint: 'the remediate function name or ARN',
  }),
  /** Targets swept at once. */
  concurrency: countSetting('PGWARDEN_CONCURRENCY', { min: 1, max: 50, defaultValue: 5 }),
});

export type SweepSettings = SettingsOf<typeof sweepSettings.settings>;

/** How often the schedule runs the sweep: whole minutes, at most daily. Not a variable: the schedule's rate. */
export const SWEEP_EVERY = { minMs: 60_000, maxMs: 86_400_000, defaultMs: 300_000 } as const;

/** What the handler reads at cold start: its settings and the fleet. */
export function sweepEnvironment(env: Record<string, string | undefined>) {
  return sweepSettings.parseWithFleet(env);
}
