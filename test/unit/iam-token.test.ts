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

/**
 * Tokens recorded for the credentials, host and date above, signed by an independent SigV4
 * implementation that agreed with the AWS RDS signer byte for byte: a change of signer, of its
 * canonical form or of what pgwarden passes it shows up here.
 */
const RECORDED = {
  withSessionToken:
    'orders.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=pgwarden_monitor&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261126%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20261126T100000Z&X-Amz-Expires=900&X-Amz-Security-Token=session%2Ftoken%2B1&X-Amz-Signature=e90e465495ebbea9e1d98c95f8985561f4ed2536253d7edf081c00a79e3299b5&X-Amz-SignedHeaders=host',
  withoutSessionToken:
    'orders.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=pgwarden_monitor&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261126%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20261126T100000Z&X-Amz-Expires=900&X-Amz-Signature=b96e1e7bc51f260890ccc3c2430816baf64e77f4bde46777ed7a9705f01ebf27&X-Amz-SignedHeaders=host',
};

describe('RDS IAM token', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is byte for byte the token recorded for a known credential, host and date', async () => {
    vi.useFakeTimers({ now: new Date('2026-11-26T10:00:00Z'), toFake: ['Date'] });
    expect(await signRdsToken(request, async () => credentials)).toBe(RECORDED.withSessionToken);
    const { sessionToken: _, ...longTerm } = credentials;
    expect(await signRdsToken(request, async () => longTerm)).toBe(RECORDED.withoutSessionToken);
  });

  it('is the token the AWS RDS signer produces for the same request', async () => {
    vi.useFakeTimers({ now: new Date('2026-11-26T10:00:00Z'), toFake: ['Date'] });
    const theirs = await new Signer({ ...request, credentials }).getAuthToken();
    expect(await signRdsToken(request, async () => credentials)).toBe(theirs);
  });

  it('presigns connect for the user, valid for 15 minutes, without a scheme', async () => {
    const token = await signRdsToken(request, async () => credentials);
    expect(token.startsWith(`${request.hostname}:5432/?`)).toBe(true);
    const params = new URLSearchParams(token.slice(token.indexOf('?') + 1));
    expect(params.get('Action')).toBe('connect');
    expect(params.get('DBUser')).toBe('pgwarden_monitor');
    expect(params.get('X-Amz-Expires')).toBe('900');
    expect(params.get('X-Amz-Credential')).toMatch(/^AKIDEXAMPLE\/\d{8}\/eu-west-1\/rds-db\/aws4_request$/);
    expect(params.get('X-Amz-Security-Token')).toBe('session/token+1');
    expect(params.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });
});
