/**
 * The post-incident integrity summary: per database, transaction-id age (wraparound) and size, and the
 * server's checksum failures and deadlocks since the statistics were reset. One statement.
 */

import { classifyError } from '../classify.ts';
import { type Clock, systemClock } from '../clock.ts';
import type { ConnectionSpec } from '../connection.ts';
import { resolveCredentials } from '../credentials.ts';
import { SYSTEM_SEARCH_PATH, withSession } from '../db.ts';
import { describeError } from '../errors.ts';
import { redact } from '../redact.ts';
import { PROBE_READ_LIMITS, type ProbeDeps, type ProbeFailure, WRAPAROUND_LIMIT } from './snapshot.ts';

const INTEGRITY_SQL = `
SELECT d.datname AS name,
       age(d.datfrozenxid)::bigint AS xid_age,
       CASE WHEN has_database_privilege(d.oid, 'CONNECT') OR pg_catalog.pg_has_role('pg_read_all_stats', 'MEMBER')
            THEN pg_catalog.pg_database_size(d.oid) END AS size_bytes,
       coalesce(s.checksum_failures, 0)::bigint AS checksum_failures,
       coalesce(s.deadlocks, 0)::bigint AS deadlocks
FROM pg_catalog.pg_database d
LEFT JOIN pg_catalog.pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn
ORDER BY age(d.datfrozenxid) DESC
LIMIT 50
`;

export interface DatabaseIntegrity {
  name: string;
  xidAge: number;
  wraparoundPct: number;
  sizeBytes: number | null;
  checksumFailures: number;
  deadlocks: number;
}

export interface IntegritySummary {
  ok: true;
  target: string;
  checkedAt: string;
  databases: DatabaseIntegrity[];
  checksumFailures: number;
  deadlocks: number;
}

export type IntegrityResult = IntegritySummary | ProbeFailure;

export async function integritySummary(
  spec: ConnectionSpec,
  options: { label: string; connectTimeoutMs?: number; statementTimeoutMs?: number },
  deps: ProbeDeps,
): Promise<IntegrityResult> {
  const clock: Clock = deps.clock ?? systemClock;
  const checkedAt = new Date(clock.now()).toISOString();
  let phase: 'connect' | 'query' = 'connect';
  try {
    const credentials = await resolveCredentials(spec, { ...deps, clock });
    return await withSession(
      spec,
      credentials,
      {
        connectTimeoutMs: options.connectTimeoutMs ?? 3_000,
        statementTimeoutMs: options.statementTimeoutMs ?? 10_000,
        applicationName: 'pgwarden-probe',
        searchPath: SYSTEM_SEARCH_PATH,
        readLimits: PROBE_READ_LIMITS,
        logger: deps.logger,
      },
      async (session) => {
        phase = 'query';
        const { rows } = await session.query<{
          name: string;
          xid_age: number;
          size_bytes: number | null;
          checksum_failures: number;
          deadlocks: number;
        }>('integrity-summary', INTEGRITY_SQL);
        const databases = rows.map((r) => ({
          name: r.name,
          xidAge: r.xid_age,
          wraparoundPct: Math.round((r.xid_age / WRAPAROUND_LIMIT) * 10_000) / 100,
          sizeBytes: r.size_bytes,
          checksumFailures: r.checksum_failures,
          deadlocks: r.deadlocks,
        }));
        return {
          ok: true as const,
          target: options.label,
          checkedAt,
          databases,
          checksumFailures: databases.reduce((sum, d) => sum + d.checksumFailures, 0),
          deadlocks: databases.reduce((sum, d) => sum + d.deadlocks, 0),
        };
      },
    );
  } catch (error) {
    const failure = classifyError(error, phase);
    return {
      ok: false,
      target: options.label,
      checkedAt,
      latencyMs: { connect: 0, query: null },
      failure: { ...failure, message: redact(failure.message || describeError(error)) },
    };
  }
}
