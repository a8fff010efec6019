import { describe, expect, it } from 'vitest';
import { everyOptInConfig, exampleConfig, synth, unacknowledgedFindings } from './synth.ts';

describe('cdk-nag AWS Solutions checks', () => {
  it('report nothing unacknowledged for the example configuration', () => {
    expect(unacknowledgedFindings(synth(exampleConfig()).app)).toEqual([]);
  });

  it('report nothing unacknowledged in demo mode', () => {
    expect(unacknowledgedFindings(synth({}, { demo: true }).app)).toEqual([]);
  });

  it('report nothing unacknowledged with tag discovery, secrets, customer keys and every opt-in', () => {
    expect(unacknowledgedFindings(synth(everyOptInConfig()).app)).toEqual([]);
  });
});
