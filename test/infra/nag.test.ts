import { describe, expect, it } from 'vitest';
import { exampleConfig, synth, unacknowledgedFindings } from './synth.ts';

describe('cdk-nag AWS Solutions checks', () => {
  it('report nothing unacknowledged for the example configuration', () => {
    expect(unacknowledgedFindings(synth(exampleConfig()).app)).toEqual([]);
  });

  it('report nothing unacknowledged in demo mode', () => {
    expect(unacknowledgedFindings(synth({}, { demo: true }).app)).toEqual([]);
  });

  it('report nothing unacknowledged with tag discovery, secrets, customer keys and every opt-in', () => {
    const config = exampleConfig();
    config.fleet.discovery = {};
    config.fleet.defaults.auth = { secretArn: 'pgwarden/discovered' };
    config.fleet.defaults.remediation = { allowStartInstance: true, allowReboot: true, allowFailover: true };
    config.fleet.targets[0].remediation = { allowStartInstance: true, allowReboot: true };
    config.access = {
      secretArns: ['arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/tagged'],
      kmsKeyArns: ['arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'],
      iamDbUsers: ['reporting_monitor'],
    };
    expect(unacknowledgedFindings(synth(config).app)).toEqual([]);
  });
});
