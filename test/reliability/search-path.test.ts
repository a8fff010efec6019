/**
 * The monitor role can signal other sessions and read every query: nothing a database user creates
 * may run with those privileges. A database owner who shadows built-in functions and operators (a
 * schema of their own first in the database's search_path, or a more specific overload in a writable
 * `public`) must not get them called by the probe, the integrity summary or the remediator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionSpec } from '../../shared/connection.ts';
import { withSession } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';
import { integritySummary } from '../../shared/probe/integrity.ts';
import { probe } from '../../shared/probe/snapshot.ts';
import { remediate } from '../../shared/remediation/remediator.ts';
import { DEFAULT_REMEDIATION } from '../../shared/target.ts';
import { createMonitorRole, startTestServer, type TestServer } from '../helpers/postgres.ts';

describe('objects a database user creates never run as the monitor', () => {
  let server: TestServer;
  let monitor: ConnectionSpec;

  beforeAll(async () => {
    server = await startTestServer();
    const role = await createMonitorRole(server);
    await server.admin(`CREATE ROLE owner LOGIN PASSWORD 'owner-pw-12'`);
    await server.admin('CREATE DATABASE owned OWNER owner');
    await server.admin('CREATE TABLE public.calls (who text, what text)', [], 'owned');
    await server.admin('GRANT INSERT ON public.calls TO PUBLIC', [], 'owned');
    // As PostgreSQL 14 and older allowed everyone by default.
    await server.admin('GRANT CREATE ON SCHEMA public TO PUBLIC', [], 'owned');
    const owner = server.spec({ user: 'owner', password: 'owner-pw-12', database: 'owned' });
    await withSession(
      owner,
      { user: 'owner', password: 'owner-pw-12' },
      {
        connectTimeoutMs: 5_000,
        statementTimeoutMs: 5_000,
        applicationName: 'test:owner',
        logger: silentLogger,
      },
      async (session) => {
        const trap = (what: string) =>
          `BEGIN INSERT INTO public.calls VALUES (current_user, '${what}'); RETURN pg_catalog.${what}; END`;
        await session.query('schema', 'CREATE SCHEMA trap');
        await session.query('usage', 'GRANT USAGE ON SCHEMA trap TO PUBLIC');
        await session.query(
          'now',
          `CREATE FUNCTION trap.now() RETURNS timestamptz LANGUAGE plpgsql AS $$ ${trap('now()')} $$`,
        );
        await session.query(
          'age',
          `CREATE FUNCTION trap.age(xid) RETURNS int LANGUAGE plpgsql AS $$ ${trap('age($1)')} $$`,
        );
        // More specific than pg_catalog's polymorphic cardinality(anyarray): chosen even with
        // pg_catalog searched first, if public is on the path at all.
        await session.query(
          'cardinality',
          `CREATE FUNCTION public.cardinality(int[]) RETURNS int LANGUAGE plpgsql AS $$ ${trap('cardinality($1)')} $$`,
        );
        await session.query('path', 'ALTER DATABASE owned SET search_path = trap, public, pg_catalog');
      },
    );
    monitor = server.spec({ user: role.user, password: role.password, database: 'owned' });
  });
  afterAll(async () => {
    await server?.destroy();
  });

  const calls = async () =>
    server.admin<{ who: string; what: string }>('SELECT * FROM public.calls', [], 'owned');

  it('catches a session that uses the database defaults, so the check below means something', async () => {
    const password = monitor.auth.kind === 'password' ? monitor.auth.password : '';
    await withSession(
      monitor,
      { user: monitor.user ?? '', password },
      {
        connectTimeoutMs: 5_000,
        statementTimeoutMs: 5_000,
        applicationName: 'test:naive',
        logger: silentLogger,
      },
      (session) => session.query('naive', 'SELECT now()'),
    );
    expect(await calls()).toEqual([{ who: 'pgwarden_monitor', what: 'now()' }]);
    await server.admin('TRUNCATE public.calls', [], 'owned');
  });

  it('runs the probe, the integrity summary and the remediator with built-ins only', async () => {
    const deps = { logger: silentLogger };
    const snapshot = await probe(monitor, { label: 'owned' }, deps);
    expect(snapshot.ok, JSON.stringify(snapshot)).toBe(true);
    const integrity = await integritySummary(monitor, { label: 'owned' }, deps);
    expect(integrity.ok, JSON.stringify(integrity)).toBe(true);
    const remediation = await remediate(
      monitor,
      {
        targetId: 'owned',
        policy: DEFAULT_REMEDIATION,
        actions: ['idle', 'idle_in_transaction', 'blockers'],
      },
      deps,
    );
    expect(remediation.ok, JSON.stringify(remediation)).toBe(true);
    expect(await calls()).toEqual([]);
  });
});
