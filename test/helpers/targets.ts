/** A target as the functions receive it, for tests that need one without a database behind it. */
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Target } from '../../shared/target.ts';

export function testTarget(id: string, overrides: Partial<Target> = {}): Target {
  return {
    id,
    connection: {
      host: `${id}.db`,
      port: 5432,
      database: 'app',
      user: 'mon',
      auth: { kind: 'iam', region: 'eu-west-1' },
      tls: { mode: 'verify-full' },
    },
    thresholds: DEFAULT_THRESHOLDS,
    remediation: DEFAULT_REMEDIATION,
    ...overrides,
  };
}

/** A target as the function events describe one, for `fleetEnvironmentFor`. */
export interface EventTarget {
  id: string;
  connection: {
    host: string;
    port: number;
    database: string;
    user?: string;
    auth: { kind: string; secretId?: string; region?: string };
    tls: { mode: string };
  };
  rds?: { instanceId?: string; clusterId?: string; region?: string };
  /** Extra settings in the configuration's own form (durations as text). */
  remediation?: Record<string, unknown>;
}

/**
 * The fleet environment (PGWARDEN_TARGETS) a deployment of these targets gives its functions: the
 * configuration's form, which the functions look targets up in.
 */
export function fleetEnvironmentFor(targets: readonly EventTarget[]): Record<string, string> {
  return {
    PGWARDEN_TARGETS: JSON.stringify(
      targets.map(({ id, connection: c, rds, remediation }) => ({
        id,
        host: c.host,
        port: c.port,
        database: c.database,
        ...(c.user ? { user: c.user } : {}),
        auth: c.auth.kind === 'iam' ? { iam: true, region: c.auth.region } : { secretArn: c.auth.secretId },
        tls: c.tls.mode,
        ...(rds ? { rds } : {}),
        ...(remediation ? { remediation } : {}),
      })),
    ),
  };
}
