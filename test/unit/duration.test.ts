import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../shared/duration.ts';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    [' 2m ', 120_000],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '30', 's', '5 m', '5x', '-5s', '5m3', 'm5'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [750, '750ms'],
    [42_000, '42s'],
    [300_000, '5m'],
    [330_000, '5m30s'],
    [4_800_000, '1h20m'],
    [7_200_000, '2h'],
  ])('renders %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
