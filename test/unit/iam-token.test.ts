import { Signer } from '@aws-sdk/rds-signer';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { signRdsToken } from '../../shared/iam-token.ts';

const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'session/token+1',
};
const request = {
  hostname: 'orders.abcdefghijkl.eu-west-1.rds.amazonaws.com',
  port: 5432,
  username: 'pgwarden_monitor',
  region: 'eu-west-1',
};

describe('RDS IAM token', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is the same token the AWS RDS signer produces', async () => {
    vi.useFakeTimers({ now: new Date('2026-11-26T10:00:00Z'), toFake: ['Date'] });
    const ours = await signRdsToken(request, async () => credentials);
    const theirs = await new Signer({ ...request, credentials }).getAuthToken();
    expect(ours).toBe(theirs);
  });

  it('presigns connect for the user, valid for 15 minutes, without a scheme', async () => {
    const token = await signRdsToken(request, async () => credentials, new Date('2026-11-26T10:00:00Z'));
    expect(token.startsWith(`${request.hostname}:5432/?`)).toBe(true);
    const params = new URLSearchParams(token.slice(token.indexOf('?') + 1));
    expect(params.get('Action')).toBe('connect');
    expect(params.get('DBUser')).toBe('pgwarden_monitor');
    expect(params.get('X-Amz-Expires')).toBe('900');
    expect(params.get('X-Amz-Credential')).toBe('AKIDEXAMPLE/20261126/eu-west-1/rds-db/aws4_request');
    expect(params.get('X-Amz-Security-Token')).toBe('session/token+1');
    expect(params.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });
});
