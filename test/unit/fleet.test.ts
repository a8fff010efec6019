import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/errors.ts';
import {
  type FleetDocument,
  fleetEnvironment,
  fleetFromEnvironment,
  parseFleet,
} from '../../shared/fleet.ts';

const document: FleetDocument = {
  defaults: { user: 'pgwarden_monitor', remediation: { idleAfter: '45m', pressure: { idleAfter: '20s' } } },
  targets: [
    {
      id: 'orders',
      host: 'orders.db',
      database: 'orders',
      auth: { iam: true },
      rds: { instanceId: 'orders' },
      thresholds: { longQuery: '2m', lockWait: '90s' },
    },
    {
      id: 'billing',
      host: 'billing.db',
      database: 'billing',
      auth: { secretArn: 'pgwarden/billing' },
      remediation: { dryRun: true },
    },
  ],
};

describe('fleet', () => {
  it('reaches the functions exactly as configured: durations survive the environment', () => {
    const env = { ...fleetEnvironment(document), AWS_REGION: 'eu-west-1' };
    const fleet = fleetFromEnvironment(env, 'monitor');
    const [orders, billing] = fleet.targets;
    expect(orders?.thresholds.longQuerySeconds).toBe(120);
    expect(orders?.thresholds.lockWaitSeconds).toBe(90);
    expect(billing?.thresholds.lockWaitSeconds).toBe(60);
    expect(orders?.remediation.idleAfterSeconds).toBe(2_700);
    expect(orders?.remediation.pressure).toEqual({ utilizationPct: 95, idleAfterSeconds: 20 });
    expect(orders?.connection.auth).toEqual({ kind: 'iam', region: 'eu-west-1' });
    expect(orders?.connection.user).toBe('pgwarden_monitor');
    expect(billing?.connection.auth).toEqual({ kind: 'secret', secretId: 'pgwarden/billing' });
    expect(billing?.remediation.dryRun).toBe(true);
  });

  it('refuses IAM authentication when no region is known to sign the token for', () => {
    expect(() => parseFleet(document, 'config')).toThrowError(ConfigError);
    expect(() => parseFleet(document, 'config')).toThrowError(
      /targets\[0\]\.auth: uses IAM authentication but no region/,
    );
    expect(
      parseFleet(document, 'config', '', { defaultRegion: 'us-west-2' }).targets[0]?.connection.auth,
    ).toEqual({
      kind: 'iam',
      region: 'us-west-2',
    });
  });

  it('names repeated ids, missing auth and an empty fleet', () => {
    const bad = {
      targets: [
        { id: 'a', host: 'h', database: 'd' },
        { id: 'a', host: 'h', database: 'd', auth: { secretArn: 's' } },
      ],
    };
    const error = (() => {
      try {
        parseFleet(bad, 'config');
      } catch (e) {
        return e as ConfigError;
      }
      return undefined;
    })();
    expect(error?.issues.map((i) => i.path)).toEqual(['targets[0].auth', 'targets[1].id']);
    expect(() => parseFleet({}, 'config')).toThrowError(/targets: names no database and discovery is off/);
  });

  it('reports a variable that is not JSON by name', () => {
    expect(() => fleetFromEnvironment({ PGWARDEN_TARGETS: '[{oops' }, 'sweep')).toThrowError(
      /PGWARDEN_TARGETS: is not JSON/,
    );
  });
});
