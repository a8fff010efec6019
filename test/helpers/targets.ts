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
