import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectionSpec } from '../../shared/connection.ts';
import { resolveCredentials, secretRegion, secretsClientsByRegion } from '../../shared/credentials.ts';
import { ManualClock } from '../helpers/clock.ts';

const secretsMock = mockClient(SecretsManagerClient);
afterAll(() => secretsMock.restore());

/** A connection whose password is in `secretId`; each test uses its own id (credentials are cached). */
function spec(secretId: string): ConnectionSpec {
  return {
    host: 'orders.abcdefghijkl.eu-west-1.rds.amazonaws.com',
    port: 5432,
    database: 'orders',
    user: 'pgwarden_monitor',
    auth: { kind: 'secret', secretId },
    tls: { mode: 'verify-full' },
  };
}

describe('secrets in another region', () => {
  let asked: string[];
  beforeEach(() => {
    secretsMock.reset();
    asked = [];
    secretsMock.on(GetSecretValueCommand).callsFake(async (input, getClient) => {
      asked.push(`${await getClient().config.region()} ${input.SecretId}`);
      return { SecretString: JSON.stringify({ password: 'from-the-right-region' }) };
    });
  });

  it('reads the region from the ARN, and none from a bare name', () => {
    expect(secretRegion('arn:aws:secretsmanager:us-east-1:123456789012:secret:pgwarden/orders-AbCdEf')).toBe(
      'us-east-1',
    );
    expect(secretRegion('arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x')).toBe(
      'us-gov-west-1',
    );
    expect(secretRegion('pgwarden/orders')).toBeUndefined();
  });

  it('asks Secrets Manager in the region the secret ARN names, not the function’s own', async () => {
    const home = new SecretsManagerClient({ region: 'eu-west-1' });
    const secretsIn = secretsClientsByRegion(
      home,
      'eu-west-1',
      (region) => new SecretsManagerClient({ region }),
    );
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:pgwarden/orders-AbCdEf';
    const resolved = await resolveCredentials(spec(arn), {
      secrets: home,
      secretsIn,
      clock: new ManualClock(0),
    });
    expect(resolved.password).toBe('from-the-right-region');
    expect(asked).toEqual([`us-east-1 ${arn}`]);
  });

  it('keeps the function’s own region for a bare secret name and for an ARN in that region', async () => {
    const home = new SecretsManagerClient({ region: 'eu-west-1' });
    const secretsIn = secretsClientsByRegion(
      home,
      'eu-west-1',
      (region) => new SecretsManagerClient({ region }),
    );
    const deps = { secrets: home, secretsIn, clock: new ManualClock(0) };
    await resolveCredentials(spec('pgwarden/by-name'), deps);
    await resolveCredentials(
      spec('arn:aws:secretsmanager:eu-west-1:123456789012:secret:pgwarden/home-AbCdEf'),
      deps,
    );
    expect(asked.map((a) => a.split(' ')[0])).toEqual(['eu-west-1', 'eu-west-1']);
  });

  it('builds one client per region, on first use, and keeps it', () => {
    const home = new SecretsManagerClient({ region: 'eu-west-1' });
    const created: string[] = [];
    const secretsIn = secretsClientsByRegion(home, 'eu-west-1', (region) => {
      created.push(region);
      return new SecretsManagerClient({ region });
    });
    expect(created).toEqual([]);
    expect(secretsIn('eu-west-1')).toBe(home);
    const east = secretsIn('us-east-1');
    expect(secretsIn('us-east-1')).toBe(east);
    secretsIn('ap-southeast-2');
    expect(created).toEqual(['us-east-1', 'ap-southeast-2']);
  });
});
