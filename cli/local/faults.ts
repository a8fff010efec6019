/**
 * Fault injectors: the incidents from the write-ups, reproduced on a real server. Drills use them to
 * show detection, remediation and escalation; the test suite uses them (and its own in
 * test/helpers/faults.ts) to produce every failure category from its real cause.
 *
 * They run with the rights of whatever role they are given, in a database others may have prepared,
 * so they trust nothing in it: `search_path` is pinned to the built-ins, every call is
 * schema-qualified with typed arguments (an untyped one would let an overload in another schema win),
 * and the locks they hold are advisory locks, not rows of a table somebody could have put a trigger on.
 */
import type { ConnectionSpec } from '../../shared/connection.ts';
import type { ResolvedCredentials } from '../../shared/credentials.ts';
import { type DbSession, openSession, SYSTEM_SEARCH_PATH } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';

/** Something injected that can be undone. */
export interface FaultHandle {
  /** Backend pids of the sessions the fault holds. */
  readonly pids: readonly number[];
  /** Ends the fault: closes its sessions (already-terminated ones are fine). */
  release(): Promise<void>;
}

export interface FaultTarget {
  spec: ConnectionSpec;
  credentials: ResolvedCredentials;
}

/** A session for a fault: no statement or lock timeout, built-ins first on the search path. */
export async function faultSession(target: FaultTarget, applicationName: string): Promise<DbSession> {
  return openSession(target.spec, target.credentials, {
    connectTimeoutMs: 5_000,
    statementTimeoutMs: 0,
    lockTimeoutMs: 0,
    applicationName,
    searchPath: SYSTEM_SEARCH_PATH,
    logger: silentLogger,
  });
}

/**
 * The advisory-lock key of a named drill lock: the pair (class, hash of the name). A pair of int4 keys
 * never collides with an application's single bigint keys.
 */
const LOCK_CLASS = 0x70677764;
const LOCK_SQL = `SELECT pg_catalog.pg_advisory_xact_lock(${LOCK_CLASS}, pg_catalog.hashtext($1::pg_catalog.text))`;

/** A fault that holds `sessions`; releasing it runs `extra` first, then closes them. */
export function faultHandle(sessions: DbSession[], extra?: () => Promise<void>): FaultHandle {
  return {
    pids: sessions.map((s) => s.pid),
    async release() {
      await extra?.();
      await Promise.all(sessions.map((s) => s.close()));
    },
  };
}

/**
 * Whether `target`'s role is a superuser, or a member of RDS's `rds_superuser`: drills refuse such a
 * role (see `inject`).
 */
export async function isSuperuserRole(target: FaultTarget): Promise<boolean> {
  const s = await faultSession(target, 'drill:role-check');
  try {
    const { rows } = await s.query<{ superuser: boolean }>(
      'drill-role',
      `SELECT r.rolsuper OR coalesce(pg_catalog.pg_has_role(r.oid, a.oid, 'MEMBER'), false) AS superuser
       FROM pg_catalog.pg_roles r
       LEFT JOIN pg_catalog.pg_roles a ON a.rolname = 'rds_superuser'
       WHERE r.rolname = CURRENT_USER`,
    );
    return rows[0]?.superuser === true;
  } finally {
    await s.close();
  }
}

/**
 * Opens sessions until the server refuses with 53300, then returns them all. Leaves the slots the
 * server reserves for superusers / reserved roles.
 */
export async function exhaustSlots(
  target: FaultTarget,
  options: { applicationName?: string; limit?: number } = {},
): Promise<FaultHandle & { refusedWith: string | undefined }> {
  const sessions: DbSession[] = [];
  const limit = options.limit ?? 10_000;
  let refusedWith: string | undefined;
  while (sessions.length < limit) {
    try {
      const s = await faultSession(target, options.applicationName ?? 'drill:idle-flood');
      await s.query('drill-idle', 'SELECT 1');
      sessions.push(s);
    } catch (error) {
      refusedWith = (error as { code?: string }).code;
      if (refusedWith === '53300') break;
      await faultHandle(sessions).release();
      throw error;
    }
  }
  return { ...faultHandle(sessions), refusedWith };
}

/**
 * A session that opens a transaction, takes a lock (`lock` names it) and goes idle: the abandoned
 * transaction of the write-ups. Sessions that ask for the same lock queue behind it.
 */
export async function holdIdleInTransaction(
  target: FaultTarget,
  lock = 'pgwarden_drill',
): Promise<FaultHandle> {
  const s = await faultSession(target, 'drill:idle-in-transaction');
  try {
    await s.query('drill-begin', 'BEGIN');
    await s.query('drill-lock', LOCK_SQL, [lock]);
  } catch (error) {
    await s.close();
    throw error;
  }
  return faultHandle([s]);
}

/** A query that runs for `seconds` (pg_sleep), started in the background. */
export async function runLongQuery(target: FaultTarget, seconds: number): Promise<FaultHandle> {
  const s = await faultSession(target, 'drill:long-query');
  // The query's own outcome (completion, cancel, termination) is not the point; it must not go unhandled.
  s.query('drill-sleep', 'SELECT pg_catalog.pg_sleep($1::pg_catalog.float8)', [seconds]).catch(
    () => undefined,
  );
  await waitUntil(async () => {
    const probe = await faultSession(target, 'drill:observer');
    try {
      const { rows } = await probe.query<{ n: number }>(
        'drill-check',
        `SELECT pg_catalog.count(*)::pg_catalog.int4 AS n FROM pg_catalog.pg_stat_activity
         WHERE pid = $1::pg_catalog.int4 AND state = 'active'`,
        [s.pid],
      );
      return (rows[0]?.n ?? 0) > 0;
    } finally {
      await probe.close();
    }
  });
  // A backend asleep in pg_sleep does not notice its client leaving; cancel the query first.
  return faultHandle([s], async () => {
    const canceler = await faultSession(target, 'drill:release');
    try {
      await canceler.query('drill-cancel', 'SELECT pg_catalog.pg_cancel_backend($1::pg_catalog.int4)', [
        s.pid,
      ]);
    } finally {
      await canceler.close();
    }
  });
}

/**
 * A lock chain: one idle-in-transaction session holds a lock, `waiters` sessions queue behind it. The
 * blocker is `pids[0]`.
 */
export async function buildLockChain(
  target: FaultTarget,
  waiters = 2,
  lock = 'pgwarden_drill',
): Promise<FaultHandle & { blockerPid: number; blockedPids: number[] }> {
  const blocker = await holdIdleInTransaction(target, lock);
  const blocked: DbSession[] = [];
  for (let i = 0; i < waiters; i++) {
    const s = await faultSession(target, 'drill:blocked');
    blocked.push(s);
    s.query('drill-wait', LOCK_SQL, [lock]).catch(() => undefined);
  }
  const blockedPids = blocked.map((s) => s.pid);
  await waitUntil(async () => {
    const observer = await faultSession(target, 'drill:observer');
    try {
      const { rows } = await observer.query<{ n: number }>(
        'drill-check',
        `SELECT pg_catalog.count(*)::pg_catalog.int4 AS n FROM pg_catalog.pg_stat_activity
         WHERE pid = ANY($1::pg_catalog.int4[]) AND wait_event_type = 'Lock'`,
        [blockedPids],
      );
      return (rows[0]?.n ?? 0) === blockedPids.length;
    } finally {
      await observer.close();
    }
  });
  const chain = faultHandle(blocked, () => blocker.release());
  return {
    ...chain,
    pids: [...blocker.pids, ...blockedPids],
    blockerPid: blocker.pids[0] as number,
    blockedPids,
  };
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`fault did not take effect within ${timeoutMs} ms`);
}
