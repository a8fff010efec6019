/**
 * The faults a drill injects into the local database, each undone when released. They reproduce the
 * incidents of the write-ups: a leaking pool, an abandoned transaction, a lock chain, a runaway query,
 * a crashed backend, a server that goes away, a credential that stops working.
 */

import type { EmbeddedServer } from './embedded.ts';
import type { FaultTarget } from './faults.ts';
import {
  buildLockChain,
  exhaustSlots,
  holdIdleInTransaction,
  isSuperuserRole,
  runLongQuery,
} from './faults.ts';

export const DRILLS = [
  'idle-flood',
  'idle-in-transaction',
  'lock-chain',
  'long-query',
  'crash',
  'stop',
  'bad-password',
] as const;
export type Drill = (typeof DRILLS)[number];

export const DRILL_SUMMARY: Record<Drill, string> = {
  'idle-flood': 'exhaust every connection slot with idle sessions (53300 for applications)',
  'idle-in-transaction': 'open a transaction, take a row lock and go idle',
  'lock-chain': 'an idle-in-transaction session holding a lock that two others queue behind',
  'long-query': 'a query that runs for many minutes',
  crash: 'kill -9 one backend: PostgreSQL resets every session and restarts its processes',
  stop: 'stop the server for a while, then start it again',
  'bad-password': "change the monitor role's password for a while, then restore it",
};

/** Drills that need the embedded server (they stop it, signal its processes or change roles). */
export const NEEDS_EMBEDDED: ReadonlySet<Drill> = new Set(['crash', 'stop', 'bad-password']);

/**
 * Bounds on a drill's clocks, wherever they come from (a flag, the control socket): a fault is held
 * at most an hour, and a drill follows its incident at most four hours (the runbook's own default
 * maximum).
 */
export const DRILL_LIMITS = { minMs: 1_000, maxForMs: 60 * 60_000, maxTimeoutMs: 4 * 60 * 60_000 } as const;

/** How long a drill lasts when not told, for faults that do not go away by themselves. */
export const DEFAULT_DRILL_DURATION_MS: Partial<Record<Drill, number>> = {
  stop: 20_000,
  'bad-password': 60_000,
  'long-query': 90_000,
};

export interface DrillContext {
  /** The role drills act as (an ordinary application role). */
  app: FaultTarget;
  /** The embedded server, when local mode owns it. */
  server?: EmbeddedServer;
  /** The monitor's login role and its real password (bad-password changes, then restores it). */
  monitor: { user: string; password: string };
}

export interface InjectedFault {
  drill: Drill;
  detail: string;
  release(): Promise<void>;
}

/** Drills whose faults run as the application role (`DrillContext.app`). */
const AS_APPLICATION: ReadonlySet<Drill> = new Set([
  'idle-flood',
  'idle-in-transaction',
  'lock-chain',
  'long-query',
]);

/**
 * Injects `drill`. A fault that runs as the application role refuses a superuser: its SQL would run
 * with superuser rights in a database others may have prepared, and pgwarden never terminates a
 * superuser's sessions, so the incident could not be remediated anyway.
 */
export async function inject(drill: Drill, ctx: DrillContext): Promise<InjectedFault> {
  if (AS_APPLICATION.has(drill) && (await isSuperuserRole(ctx.app))) {
    const role = ctx.app.credentials.user;
    throw new Error(
      `the ${drill} drill runs its sessions as ${role}, and ${role} is a superuser (or rds_superuser): drills refuse to run SQL with superuser rights, and pgwarden never terminates a superuser's sessions. Point the URL at an ordinary application role, e.g. CREATE ROLE drill_app LOGIN PASSWORD '...'; GRANT CONNECT ON DATABASE ... TO drill_app;`,
    );
  }
  switch (drill) {
    case 'idle-flood': {
      const flood = await exhaustSlots(ctx.app, { applicationName: 'drill:idle-flood' });
      return {
        drill,
        detail: `${flood.pids.length} idle sessions opened, the next was refused with ${flood.refusedWith ?? '?'}`,
        release: () => flood.release(),
      };
    }
    case 'idle-in-transaction': {
      const held = await holdIdleInTransaction(ctx.app);
      return {
        drill,
        detail: `pid ${held.pids[0]} is idle in transaction holding a row lock`,
        release: () => held.release(),
      };
    }
    case 'lock-chain': {
      const chain = await buildLockChain(ctx.app, 2);
      return {
        drill,
        detail: `pid ${chain.blockerPid} (idle in transaction) blocks pids ${chain.blockedPids.join(', ')}`,
        release: () => chain.release(),
      };
    }
    case 'long-query': {
      const query = await runLongQuery(ctx.app, 3_600);
      return { drill, detail: `pid ${query.pids[0]} runs pg_sleep(3600)`, release: () => query.release() };
    }
    case 'crash': {
      const server = embedded(ctx, drill);
      const pid = await server.crashBackend();
      return { drill, detail: `backend ${pid} killed with SIGKILL`, release: async () => undefined };
    }
    case 'stop': {
      const server = embedded(ctx, drill);
      await server.stop();
      return { drill, detail: 'the server was stopped', release: () => server.start() };
    }
    case 'bad-password': {
      const server = embedded(ctx, drill);
      const role = quoteIdent(ctx.monitor.user);
      await server.admin(`ALTER ROLE ${role} PASSWORD 'drill-${Math.random().toString(36).slice(2)}'`);
      return {
        drill,
        detail: `the password of ${ctx.monitor.user} was changed`,
        release: async () => {
          await server.admin(`ALTER ROLE ${role} PASSWORD ${quoteLiteral(ctx.monitor.password)}`);
        },
      };
    }
  }
}

function embedded(ctx: DrillContext, drill: Drill): EmbeddedServer {
  if (!ctx.server)
    throw new Error(`the ${drill} drill needs the embedded server (start without DATABASE_URL)`);
  return ctx.server;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
