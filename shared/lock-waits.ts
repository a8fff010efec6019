/**
 * How long sessions have waited on locks. PostgreSQL 14 and later record when each wait began, and the
 * probe reports it; older servers do not, so a wait is as old as the first probe that saw the same
 * statement of the same session blocked by the same sessions. Pure: the monitor and the runbook keep
 * the memory between probes.
 */
import type { HealthSnapshot, LockWait } from './probe/snapshot.ts';

/** When each current lock wait was first seen (ISO), by `lockWaitKey`. */
export type LockWaitMemory = Record<string, string>;

/** One wait: the session, the statement it runs (by its start time) and whom it waits for. */
export function lockWaitKey(wait: LockWait): string {
  const blockers = [...wait.blockedBy].sort((a, b) => a - b).join(',');
  return `${wait.pid}@${wait.statementStartedAt ?? '?'}<${blockers}`;
}

export interface LockWaitJudgement {
  /** The longest current lock wait in seconds (0 when no session waits). */
  longestSeconds: number;
  /** The memory to keep for the next probe: only the waits seen now. */
  memory: LockWaitMemory;
}

export function judgeLockWaits(memory: LockWaitMemory, snapshot: HealthSnapshot): LockWaitJudgement {
  if (snapshot.longestLockWaitSeconds !== null)
    return { longestSeconds: snapshot.longestLockWaitSeconds, memory: {} };
  const now = Date.parse(snapshot.checkedAt);
  const next: LockWaitMemory = {};
  let longest = 0;
  for (const wait of snapshot.lockWaits) {
    const key = lockWaitKey(wait);
    const since = memory[key] ?? snapshot.checkedAt;
    next[key] = since;
    longest = Math.max(longest, (now - Date.parse(since)) / 1_000);
  }
  return { longestSeconds: Math.round(longest * 10) / 10, memory: next };
}
