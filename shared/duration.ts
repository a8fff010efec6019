/** Durations as people write them: `500ms`, `30s`, `5m`, `1h`, and sums such as `1h30m`. */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/**
 * Parses a duration into milliseconds; returns `undefined` when the text is not a duration, so callers
 * can raise an error that names their own field.
 */
export function parseDuration(text: string): number | undefined {
  const input = text.trim();
  if (input === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < input.length) {
    const start = PART.lastIndex;
    const match = PART.exec(input);
    if (!match || match.index !== start) return undefined;
    total += Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** Renders milliseconds compactly for people: `750ms`, `42s`, `5m`, `1h20m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 60) return `${seconds}s`;
  const hours = Math.floor(seconds / 3_600);
  const minutes = Math.floor((seconds % 3_600) / 60);
  const rest = seconds % 60;
  if (hours > 0) return minutes > 0 ? `${hours}h${minutes}m` : `${hours}h`;
  return rest > 0 ? `${minutes}m${rest}s` : `${minutes}m`;
}

/**
 * Renders a duration for an environment variable: compact when that is exact ("20m", "10s"), in
 * milliseconds otherwise, so the reader parses back exactly the value written.
 */
export function durationText(ms: number): string {
  const compact = formatDuration(ms);
  return parseDuration(compact) === ms ? compact : `${ms}ms`;
}
