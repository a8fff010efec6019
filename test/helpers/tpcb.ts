/**
 * A TPC-B-like load from Node, as pgbench's default script runs it: each transaction updates an
 * account, reads it back, updates a teller and the branch, and records the change. With one branch,
 * every client queues for the same row, so a probe finds sessions waiting on row locks for a few
 * milliseconds, all the time, on a perfectly healthy database.
 */

import type { FaultTarget } from '../../cli/local/faults.ts';
import { type DbSession, openSession } from '../../shared/db.ts';
import { silentLogger } from '../../shared/logger.ts';

export interface LoadResult {
  transactions: number;
  errors: number;
  /** The first few error messages, for a failed assertion to show. */
  messages: string[];
}

export interface Load {
  stop(): Promise<LoadResult>;
}

const ACCOUNTS = 1_000;
const TELLERS = 10;

async function connect(target: FaultTarget, name: string): Promise<DbSession> {
  return openSession(target.spec, target.credentials, {
    connectTimeoutMs: 5_000,
    statementTimeoutMs: 10_000,
    applicationName: name,
    logger: silentLogger,
  });
}

/** Creates the tables (owned by the target's role) and fills them: one branch, so rows contend. */
export async function prepareTpcb(target: FaultTarget, prefix = 'tpcb'): Promise<void> {
  const s = await connect(target, 'test:tpcb-setup');
  try {
    for (const sql of [
      `DROP TABLE IF EXISTS ${prefix}_accounts, ${prefix}_tellers, ${prefix}_branches, ${prefix}_history`,
      `CREATE TABLE ${prefix}_branches (bid int PRIMARY KEY, bbalance int NOT NULL)`,
      `CREATE TABLE ${prefix}_tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL)`,
      `CREATE TABLE ${prefix}_accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL)`,
      `CREATE TABLE ${prefix}_history (tid int, bid int, aid int, delta int, mtime timestamptz)`,
      `INSERT INTO ${prefix}_branches VALUES (1, 0)`,
      `INSERT INTO ${prefix}_tellers SELECT g, 1, 0 FROM generate_series(1, ${TELLERS}) g`,
      `INSERT INTO ${prefix}_accounts SELECT g, 1, 0 FROM generate_series(1, ${ACCOUNTS}) g`,
    ]) {
      await s.query('tpcb-setup', sql);
    }
  } finally {
    await s.close();
  }
}

/** Starts `clients` sessions running TPC-B-like transactions until `stop()`. */
export async function startTpcb(target: FaultTarget, clients: number, prefix = 'tpcb'): Promise<Load> {
  const result: LoadResult = { transactions: 0, errors: 0, messages: [] };
  let stopping = false;
  const sessions = await Promise.all(
    Array.from({ length: clients }, (_, i) => connect(target, `test:tpcb-${i}`)),
  );
  const rand = (n: number) => 1 + Math.floor(Math.random() * n);
  const loops = sessions.map(async (s) => {
    while (!stopping) {
      const aid = rand(ACCOUNTS);
      const tid = rand(TELLERS);
      const delta = rand(10_000) - 5_000;
      try {
        await s.query('tpcb', 'BEGIN');
        await s.query('tpcb', `UPDATE ${prefix}_accounts SET abalance = abalance + $1 WHERE aid = $2`, [
          delta,
          aid,
        ]);
        await s.query('tpcb', `SELECT abalance FROM ${prefix}_accounts WHERE aid = $1`, [aid]);
        await s.query('tpcb', `UPDATE ${prefix}_tellers SET tbalance = tbalance + $1 WHERE tid = $2`, [
          delta,
          tid,
        ]);
        await s.query('tpcb', `UPDATE ${prefix}_branches SET bbalance = bbalance + $1 WHERE bid = 1`, [
          delta,
        ]);
        await s.query(
          'tpcb',
          `INSERT INTO ${prefix}_history (tid, bid, aid, delta, mtime) VALUES ($1, 1, $2, $3, now())`,
          [tid, aid, delta],
        );
        await s.query('tpcb', 'COMMIT');
        result.transactions += 1;
      } catch (error) {
        result.errors += 1;
        if (result.messages.length < 5) result.messages.push(String(error));
        await s.query('tpcb', 'ROLLBACK').catch(() => undefined);
        if (s.lostWith) return;
      }
    }
  });
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
      await Promise.all(sessions.map((s) => s.close()));
      return result;
    },
  };
}
