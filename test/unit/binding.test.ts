import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bindTarget, isRdsEndpoint, narrowPolicy, type TargetCatalog } from '../../shared/binding.ts';
import type { ConnectionSpec } from '../../shared/connection.ts';
import { ValidationError } from '../../shared/errors.ts';
import { DEFAULT_REMEDIATION, type RemediationPolicy } from '../../shared/target.ts';
import { testTarget } from '../helpers/targets.ts';

const seconds = fc.integer({ min: 1, max: 100_000 });
const policyArb: fc.Arbitrary<RemediationPolicy> = fc.record({
  dryRun: fc.boolean(),
  idleAfterSeconds: seconds,
  idleInTransactionAfterSeconds: seconds,
  cancelQueriesAfterSeconds: fc.option(seconds, { nil: null }),
  terminateBlockers: fc.boolean(),
  blockerIdleSeconds: seconds,
  maxPerRun: fc.integer({ min: 1, max: 1_000 }),
  protectUsers: fc.subarray(['a', 'b', 'c']),
  protectApplications: fc.subarray(['x', 'y']),
  pressure: fc.record({ utilizationPct: fc.integer({ min: 1, max: 100 }), idleAfterSeconds: seconds }),
  includeQueryText: fc.boolean(),
  allowStartInstance: fc.boolean(),
  allowReboot: fc.boolean(),
  allowFailover: fc.boolean(),
});

describe('narrowPolicy', () => {
  it('never lets a payload do more than the configured policy, and lets it do less', () => {
    fc.assert(
      fc.property(policyArb, policyArb, (configured, requested) => {
        const p = narrowPolicy(configured, requested);
        if (configured.dryRun || requested.dryRun) expect(p.dryRun).toBe(true);
        expect(p.idleAfterSeconds).toBeGreaterThanOrEqual(configured.idleAfterSeconds);
        expect(p.idleInTransactionAfterSeconds).toBeGreaterThanOrEqual(
          configured.idleInTransactionAfterSeconds,
        );
        expect(p.blockerIdleSeconds).toBeGreaterThanOrEqual(configured.blockerIdleSeconds);
        expect(p.maxPerRun).toBeLessThanOrEqual(configured.maxPerRun);
        expect(p.pressure.idleAfterSeconds).toBeGreaterThanOrEqual(configured.pressure.idleAfterSeconds);
        expect(p.pressure.utilizationPct).toBeGreaterThanOrEqual(configured.pressure.utilizationPct);
        if (configured.cancelQueriesAfterSeconds === null) expect(p.cancelQueriesAfterSeconds).toBeNull();
        else if (p.cancelQueriesAfterSeconds !== null)
          expect(p.cancelQueriesAfterSeconds).toBeGreaterThanOrEqual(configured.cancelQueriesAfterSeconds);
        for (const flag of [
          'terminateBlockers',
          'includeQueryText',
          'allowStartInstance',
          'allowReboot',
          'allowFailover',
        ] as const)
          if (!configured[flag]) expect(p[flag]).toBe(false);
        expect(p.protectUsers).toEqual(
          expect.arrayContaining([...configured.protectUsers, ...requested.protectUsers]),
        );
        expect(p.protectApplications).toEqual(
          expect.arrayContaining([...configured.protectApplications, ...requested.protectApplications]),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('is the configured policy when the payload sends none', () => {
    const configured = { ...DEFAULT_REMEDIATION, dryRun: true };
    expect(narrowPolicy(configured)).toBe(configured);
  });
});

describe('isRdsEndpoint', () => {
  it.each([
    'orders.abcdefghijkl.eu-west-1.rds.amazonaws.com',
    'billing.cluster-abcdefghijkl.eu-west-1.rds.amazonaws.com',
    'billing.cluster-ro-abcdefghijkl.eu-west-1.rds.amazonaws.com',
    'reports.cluster-custom-abcdefghijkl.eu-west-1.rds.amazonaws.com',
    'Orders.ABCDEFGHIJKL.EU-WEST-1.RDS.AMAZONAWS.COM',
  ])('accepts %s in eu-west-1', (host) => {
    expect(isRdsEndpoint(host, 'eu-west-1')).toBe(true);
  });

  it('accepts an endpoint in China', () => {
    expect(isRdsEndpoint('orders.abcdefghijkl.cn-north-1.rds.amazonaws.com.cn', 'cn-north-1')).toBe(true);
  });

  it.each([
    'orders.abcdefghijkl.us-east-1.rds.amazonaws.com',
    'orders.abcdefghijkl.eu-west-1.rds.amazonaws.com.evil.example',
    'orders.abcdefghijkl.eu-west-1xrds.amazonaws.com',
    'abcdefghijkl.eu-west-1.rds.amazonaws.com',
    'a.b.orders.abcdefghijkl.eu-west-1.rds.amazonaws.com',
    '10.0.0.5',
    'db.example.com',
  ])('refuses %s for eu-west-1', (host) => {
    expect(isRdsEndpoint(host, 'eu-west-1')).toBe(false);
  });
});

describe('bindTarget', () => {
  const orders = testTarget('orders');
  const discovered: ConnectionSpec = {
    host: 'shadow.abcdefghijkl.eu-west-1.rds.amazonaws.com',
    port: 5432,
    database: 'app',
    user: 'pgwarden_monitor',
    auth: { kind: 'iam', region: 'us-east-1' },
    tls: { mode: 'disable' },
  };
  const catalog: TargetCatalog = {
    targets: [orders],
    defaults: {
      user: 'pgwarden_monitor',
      auth: { iam: true },
      region: 'eu-west-1',
      remediation: { dryRun: true },
    },
    discovery: { tagKey: 'pgwarden:monitor', tagValue: 'true' },
    region: 'eu-west-1',
  };

  it('returns the configured target whole, whatever connection the payload carries', () => {
    const bound = bindTarget(catalog, { targetId: 'orders', connection: discovered }, 'event');
    expect(bound).toEqual({ target: orders, source: 'configured' });
  });

  it("builds a discovered target from the defaults: their TLS, region and policy, not the payload's", () => {
    const { target, source } = bindTarget(catalog, { targetId: 'shadow', connection: discovered }, 'event');
    expect(source).toBe('discovered');
    expect(target.connection).toMatchObject({
      host: discovered.host,
      auth: { kind: 'iam', region: 'eu-west-1' },
      tls: { mode: 'verify-full' },
    });
    expect(target.remediation.dryRun).toBe(true);
  });

  it('refuses a target that is not configured when discovery is off, naming the field', () => {
    const { discovery: _, ...withoutDiscovery } = catalog;
    expect(() =>
      bindTarget(withoutDiscovery, { targetId: 'shadow', connection: discovered }, 'event'),
    ).toThrow(ValidationError);
  });

  it('refuses a discovered target without a connection', () => {
    expect(() => bindTarget(catalog, { targetId: 'shadow' }, 'event')).toThrow(/connection/);
  });
});
