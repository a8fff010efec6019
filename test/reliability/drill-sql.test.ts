/**
 * A drill runs SQL with the rights of the role in the URL. A database user who owns the database or may
 * create in `public` must not be able to get their own code run by it: a function shadowing a
 * built-in (`pg_sleep`, `pg_cancel_backend`), or a trigger on a table the drill writes. Drills pin
 * `search_path`, call built-ins schema-qualified with typed arguments, touch no table at all, and
 * refuse to run as a superuser.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DrillContext, inject } from '../../cli/local/drills.ts';
import type { FaultTarget } from '../../cli/local/faults.ts';
import { withSession } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestServer, type TestServer } from '../helpers/postgres.ts';

const DATABASE = 'shop';

describe('drill SQL against a database a hostile user prepared', () => {
  let server: TestServer;
  let app: FaultTarget;
  let superuser: FaultTarget;

  beforeAll(async () => {
    server = await startTestServer();
    await server.admin(`CREATE ROLE mallory LOGIN PASSWORD 'mallory-pw-1'`);
    await server.admin(`CREATE ROLE drill_app LOGIN PASSWORD 'drill-app-pw-1'`);
    await server.admin(`GRANT pg_signal_backend TO drill_app`);
    await server.admin(`CREATE DATABASE ${DATABASE} OWNER mallory`);
    // As on PostgreSQL 14 and older, or wherever an administrator opened it up.
    await server.admin('GRANT CREATE ON SCHEMA public TO PUBLIC', [], DATABASE);
    const mallory = server.spec({ user: 'mallory', password: 'mallory-pw-1', database: DATABASE });
    await withSession(
      mallory,
      { user: 'mallory', password: 'mallory-pw-1' },
      {
        connectTimeoutMs: 5_000,
        statementTimeoutMs: 5_000,
        applicationName: 'mallory',
        logger: silentLogger,
      },
      async (s) => {
        // Sequence increments survive a rollback: the count shows a trap ran even if the drill's
        // transaction was canceled afterwards.
        await s.query('counter', 'CREATE SEQUENCE public.trap_calls');
        await s.query('counter-grant', 'GRANT USAGE ON SEQUENCE public.trap_calls TO PUBLIC');
        const escalate = `BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;`;
        // With an untyped argument these win over pg_catalog's: PostgreSQL prefers the string category.
        await s.query(
          'sleep',
          `CREATE FUNCTION public.pg_sleep(text) RETURNS void LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_catalog.nextval('public.trap_calls'); ${escalate}
           PERFORM pg_catalog.pg_sleep($1::float8); END $$`,
        );
        await s.query(
          'cancel',
          `CREATE FUNCTION public.pg_cancel_backend(text) RETURNS boolean LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_catalog.nextval('public.trap_calls'); ${escalate}
           RETURN pg_catalog.pg_cancel_backend($1::int); END $$`,
        );
        // The table the drills used to create or reuse, with a trigger waiting for whoever writes it.
        await s.query('table', 'CREATE TABLE public.pgwarden_drill (id int PRIMARY KEY, v int)');
        await s.query('table-grant', 'GRANT ALL ON public.pgwarden_drill TO PUBLIC');
        await s.query(
          'trigger-fn',
          `CREATE FUNCTION public.trap() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_catalog.nextval('public.trap_calls'); ${escalate} RETURN NEW; END $$`,
        );
        await s.query(
          'trigger',
          'CREATE TRIGGER trap BEFORE INSERT OR UPDATE ON public.pgwarden_drill FOR EACH ROW EXECUTE FUNCTION public.trap()',
        );
      },
    );
    app = {
      spec: server.spec({ user: 'drill_app', password: 'drill-app-pw-1', database: DATABASE }),
      credentials: { user: 'drill_app', password: 'drill-app-pw-1' },
    };
    superuser = {
      spec: server.spec({ database: DATABASE }),
      credentials: { user: server.superuser, password: server.password },
    };
  });
  afterAll(async () => {
    await server?.destroy();
  });

  const trapCalls = async () =>
    Number(
      (
        await server.admin<{ n: string }>(
          'SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM public.trap_calls',
          [],
          DATABASE,
        )
      )[0]?.n,
    );
  const isSuperuser = async () =>
    (await server.admin<{ s: boolean }>(`SELECT rolsuper AS s FROM pg_roles WHERE rolname = 'mallory'`))[0]
      ?.s;
  const context = (target: FaultTarget): DrillContext => ({
    app: target,
    monitor: { user: 'x', password: 'y' },
  });

  it.each(['idle-in-transaction', 'lock-chain', 'long-query', 'idle-flood'] as const)(
    'runs the %s drill as an ordinary role without running anything the database owner planted',
    async (drill) => {
      const fault = await inject(drill, context(app));
      await fault.release();
      expect(await trapCalls()).toBe(0);
    },
  );

  it('refuses to run a drill as a superuser, so planted code never gets superuser rights', async () => {
    await expect(inject('idle-in-transaction', context(superuser))).rejects.toThrow(/superuser/);
    await expect(inject('long-query', context(superuser))).rejects.toThrow(/superuser/);
    expect(await trapCalls()).toBe(0);
    expect(await isSuperuser()).toBe(false);
  });

  it('says so on the command line, naming the role and the fix', async () => {
    const home = await mkdtemp(join(tmpdir(), 'pgwarden-drill-sql-'));
    const url = server.url({ database: DATABASE });
    const run = await runCli(
      ['drill', 'idle-in-transaction', '--url', url, '--home', home, '--timeout', '20s'],
      {},
      60_000,
    );
    await rm(home, { recursive: true, force: true });
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/postgres is a superuser/);
    expect(await isSuperuser()).toBe(false);
  }, 90_000);
});
