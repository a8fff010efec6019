/**
 * Section 8: a healthy, busy database must stay quiet. The whole system in local mode with the
 * production thresholds and policy (only the escalation shortened so a wrong page would arrive within
 * the run) watches real workloads that are busy but healthy: a contended TPC-B-like load from pgbench,
 * a read-only load, connection churn, a bulk load with index builds and a manual VACUUM, and a report
 * query that runs just under the long-query threshold. Per workload it counts incidents, notifications,
 * pages and terminated sessions; the goal is 0 / any / 0 / 0.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EmbeddedServer } from '../cli/local/embedded.ts';
import type { FaultTarget } from '../cli/local/faults.ts';
import { type LocalSettings, LocalSystem, type SystemEvent } from '../cli/local/system.ts';
import { DEFAULT_MONITOR_SETTINGS } from '../functions/monitor/settings.ts';
import { type DbSession, openSession } from '../shared/db.ts';
import { silentLogger } from '../shared/logger.ts';
import { probe } from '../shared/probe/snapshot.ts';
import type { IncidentRecord } from '../shared/runbook/record.ts';
import { DEFAULT_RUNBOOK_SETTINGS } from '../shared/runbook/types.ts';
import { DEFAULT_REMEDIATION, DEFAULT_THRESHOLDS, type Thresholds } from '../shared/target.ts';
import {
  type BenchOptions,
  createRoles,
  type Measured,
  onTeardown,
  progress,
  type Roles,
  run,
  type SectionResult,
  type SummaryRow,
  seconds,
  sleep,
  startBenchServer,
  table,
} from './support.ts';

const SECTION = 'quiet';
const DATABASE = 'app';
const CLIENTS = 8;

const WORKLOADS = ['tpcb', 'select-only', 'churn', 'bulk', 'report'] as const;
type Workload = (typeof WORKLOADS)[number];

function workloadText(workload: Workload, p: Plan): string {
  switch (workload) {
    case 'tpcb':
      return `contended TPC-B-like: \`pgbench -c ${CLIENTS} -j 2\` at scale 1 (one branch row every transaction updates)`;
    case 'select-only':
      return `read-only: \`pgbench -S -c ${CLIENTS} -j 2\``;
    case 'churn':
      return `connection churn: \`pgbench -C -c ${CLIENTS} -j 2\` (a new connection per transaction)`;
    case 'bulk':
      return `bulk load: ${p.bulkRows.toLocaleString('en-US')} rows in one transaction, two index builds and a manual \`VACUUM (ANALYZE)\` in a loop, while \`pgbench -c 2 -R 100\` inserts into the same table (and waits for each load and index build)`;
    case 'report':
      return `a report query (an aggregate over the accounts) that runs ${p.reportSeconds} s, just under the ${p.longQuerySeconds} s long-query threshold, beside \`pgbench -c 2 -R 100\``;
  }
}

interface Plan {
  /** How long each load runs. */
  loadMs: number;
  /** The escalation, shortened so an incident opened during a load would page within the run. */
  escalateAfterMs: number;
  /** Long-query threshold and the report's length. */
  longQuerySeconds: number;
  reportSeconds: number;
  bulkRows: number;
}

function plan(quick: boolean): Plan {
  if (quick)
    return {
      loadMs: 15_000,
      escalateAfterMs: 10_000,
      longQuerySeconds: 30,
      reportSeconds: 27,
      bulkRows: 100_000,
    };
  const longQuerySeconds = DEFAULT_THRESHOLDS.longQuerySeconds;
  return {
    loadMs: 60_000,
    escalateAfterMs: 30_000,
    longQuerySeconds,
    reportSeconds: Math.round(longQuerySeconds * 0.9),
    bulkRows: 300_000,
  };
}

interface Outcome {
  workload: Workload;
  durationMs: number;
  incidents: number;
  notifications: number;
  pages: number;
  /** Terminated or canceled by pgwarden (runbook actions and sweeps). */
  terminated: number;
  /** The server's own count of sessions ended by pg_terminate_backend (pg_stat_database.sessions_killed). */
  killed: number;
  probes: number;
  statuses: Record<string, number>;
  /**
   * What a separate probe every second saw: samples, those with a session waiting on a lock, the most
   * waiting at once, the longest wait and the longest query.
   */
  samples: number;
  waitingSamples: number;
  maxBlocked: number;
  longestWaitSeconds: number;
  longestQuerySeconds: number;
  load: string;
  subjects: string[];
  errors: string[];
}

/** pgbench from the PATH or from an installed PostgreSQL's bin directory. */
function findPgbench(): string {
  for (const dir of (process.env.PATH ?? '').split(':'))
    if (dir && existsSync(join(dir, 'pgbench'))) return join(dir, 'pgbench');
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    for (const version of readdirSync(base).sort().reverse()) {
      const path = join(base, version, 'bin', 'pgbench');
      if (existsSync(path)) return path;
    }
  }
  throw new Error(
    'pgbench not found: install the PostgreSQL client programs (apt-get install -y postgresql-client)',
  );
}

class Lane {
  readonly server: EmbeddedServer & { release(): Promise<void> };
  readonly roles: Roles;
  readonly app: FaultTarget;
  private readonly pgbench: string;

  private constructor(server: EmbeddedServer & { release(): Promise<void> }, roles: Roles, pgbench: string) {
    this.server = server;
    this.roles = roles;
    this.pgbench = pgbench;
    this.app = {
      spec: server.spec({
        user: roles.app.credentials.user,
        password: roles.app.credentials.password,
        database: DATABASE,
      }),
      credentials: roles.app.credentials,
    };
  }

  /** A server as the README sets one up, with an application database the application role owns. */
  static async start(pgbench: string, monitorPassword: string): Promise<Lane> {
    const server = await startBenchServer({ settings: { reserved_connections: 3 } });
    const roles = await createRoles(server, monitorPassword);
    await server.admin(`CREATE DATABASE ${DATABASE} OWNER ${roles.app.credentials.user}`);
    const lane = new Lane(server, roles, pgbench);
    const init = await lane.bench(['-i', '-s', '1', '-q'], 120_000);
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr.trim().split('\n').at(-1)}`);
    return lane;
  }

  /** Runs pgbench as the application role against the application database. */
  bench(args: readonly string[], timeoutMs: number) {
    return run(
      this.pgbench,
      [
        '-h',
        this.server.host,
        '-p',
        String(this.server.port),
        '-U',
        this.app.credentials.user,
        ...args,
        DATABASE,
      ],
      {
        env: { ...process.env, PGPASSWORD: this.app.credentials.password ?? '', PGSSLMODE: 'disable' },
        timeoutMs,
      },
    );
  }

  session(name: string): Promise<DbSession> {
    return openSession(this.app.spec, this.app.credentials, {
      connectTimeoutMs: 5_000,
      statementTimeoutMs: 0,
      lockTimeoutMs: 0,
      applicationName: name,
      logger: silentLogger,
    });
  }

  async sessionsKilled(): Promise<number> {
    const rows = await this.server.admin<{ n: number }>(
      'SELECT coalesce(sum(sessions_killed), 0)::int AS n FROM pg_stat_database',
    );
    return rows[0]?.n ?? 0;
  }
}

/** pgbench's summary: transactions per second and failed transactions. */
function pgbenchSummary(stdout: string): string {
  const tps = /tps = ([\d.]+)/.exec(stdout)?.[1];
  const failed = /number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? '0';
  const done = /number of transactions actually processed: (\d+)/.exec(stdout)?.[1];
  return tps
    ? `${Math.round(Number(tps)).toLocaleString('en-US')} tps, ${done ?? '?'} transactions, ${failed} failed`
    : 'no summary';
}

/** The production settings, the escalation shortened; the sweep runs every 20 s to show it leaves the load alone. */
function settings(p: Plan, thresholds: Thresholds): Omit<LocalSettings, 'home' | 'logger' | 'databaseUrl'> {
  return {
    cadenceMs: DEFAULT_MONITOR_SETTINGS.cadenceMs,
    confirmDelayMs: DEFAULT_MONITOR_SETTINGS.confirmDelayMs,
    escalateAfterMs: p.escalateAfterMs,
    recheckMs: DEFAULT_RUNBOOK_SETTINGS.recheckSeconds * 1_000,
    maxDurationMs: DEFAULT_RUNBOOK_SETTINGS.maxDurationSeconds * 1_000,
    sweepEveryMs: 20_000,
    thresholds,
    remediation: DEFAULT_REMEDIATION,
    maxConnections: 100,
  };
}

/** Watches `lane` with a fresh system while `load` runs, and counts what pgwarden did about it. */
async function watch(
  lane: Lane,
  workload: Workload,
  p: Plan,
  thresholds: Thresholds,
  load: () => Promise<string>,
): Promise<Outcome> {
  const home = await mkdtemp(join(tmpdir(), 'pgwarden-quiet-'));
  const events: SystemEvent[] = [];
  const killedBefore = await lane.sessionsKilled();
  const system = await LocalSystem.start(
    {
      ...settings(p, thresholds),
      home,
      logger: silentLogger,
      databaseUrl: lane.server.spec({
        user: lane.roles.monitor.user,
        password: lane.roles.monitor.password,
        database: DATABASE,
      }),
    },
    (event) => events.push(event),
  );
  const stop = onTeardown(async () => {
    await system.stop();
    await rm(home, { recursive: true, force: true });
  });
  const started = Date.now();
  // An independent look every second, as the superuser: how much lock waiting the load really causes.
  const samples: Array<{ blocked: number; wait: number; query: number }> = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await probe(
        lane.server.spec({ database: DATABASE }),
        { label: 'sampler', applicationName: 'bench:sampler' },
        { logger: silentLogger },
      );
      if (r.ok)
        samples.push({
          blocked: r.blockedSessions,
          wait: r.longestLockWaitSeconds ?? 0,
          query: r.longestQuerySeconds,
        });
      await sleep(1_000);
    }
  })();
  let summary = '';
  try {
    summary = await load();
    sampling = false;
    // An incident still open at the end gets its escalation time, so a page it would send is counted.
    const open = () => [...system.sfn.executions.values()].some((e) => e.status === 'RUNNING');
    const deadline = Date.now() + p.escalateAfterMs + 5_000;
    while (open() && Date.now() < deadline) await sleep(500);
  } finally {
    sampling = false;
    await sampler;
    await stop();
  }
  const durationMs = Date.now() - started;
  const probes = events.flatMap((e) => (e.type === 'probe' ? [e] : []));
  const statuses: Record<string, number> = {};
  for (const e of probes) statuses[e.status] = (statuses[e.status] ?? 0) + 1;
  const published = events.flatMap((e) => (e.type === 'published' ? [e.message] : []));
  const records = events.flatMap((e) => (e.type === 'incident-ended' && e.record ? [e.record] : []));
  const acted = (r: IncidentRecord) => r.actions.reduce((n, a) => n + (a.dryRun ? 0 : (a.count ?? 0)), 0);
  return {
    workload,
    durationMs,
    incidents: events.filter((e) => e.type === 'incident' && e.outcome.outcome === 'opened').length,
    notifications: published.filter((m) => m.topic === 'pgwarden-notifications').length,
    pages: published.filter((m) => m.topic === 'pgwarden-pages').length,
    terminated:
      records.reduce((n, r) => n + acted(r), 0) +
      events.reduce((n, e) => n + (e.type === 'sweep' ? e.terminated : 0), 0),
    killed: (await lane.sessionsKilled()) - killedBefore,
    probes: probes.length,
    statuses,
    samples: samples.length,
    waitingSamples: samples.filter((x) => x.blocked > 0).length,
    maxBlocked: Math.max(0, ...samples.map((x) => x.blocked)),
    longestWaitSeconds: Math.max(0, ...samples.map((x) => x.wait)),
    longestQuerySeconds: Math.max(0, ...samples.map((x) => x.query)),
    load: summary,
    subjects: published.map((m) => m.subject),
    errors: events.flatMap((e) => (e.type === 'error' ? [e.message] : [])),
  };
}

const seconds0 = (ms: number) => `${Math.round(ms / 1_000)}`;

async function pgbenchLoad(lane: Lane, args: readonly string[], p: Plan): Promise<string> {
  const result = await lane.bench([...args, '-T', seconds0(p.loadMs), '-n'], p.loadMs + 60_000);
  if (result.code !== 0)
    throw new Error(`pgbench ${args.join(' ')} failed: ${result.stderr.trim().split('\n').at(-1)}`);
  return pgbenchSummary(result.stdout);
}

/** Bulk loads and index builds in a loop while a light pgbench inserts into the same table. */
async function bulkLoad(lane: Lane, p: Plan): Promise<string> {
  const loader = await lane.session('bench:bulk-load');
  const script = join(await mkdtemp(join(tmpdir(), 'pgwarden-quiet-')), 'insert.sql');
  try {
    await loader.query('bulk', 'CREATE TABLE IF NOT EXISTS bulk_load (id int, a int, b text)');
    await writeFile(
      script,
      '\\set id random(1, 10000000)\nINSERT INTO bulk_load (id, a, b) VALUES (:id, :id % 1000, md5(:id::text));\n',
    );
    const writers = lane.bench(
      ['-c', '2', '-R', '100', '-f', script, '-T', seconds0(p.loadMs), '-n'],
      p.loadMs + 60_000,
    );
    const until = Date.now() + p.loadMs;
    let rounds = 0;
    while (Date.now() < until) {
      await loader.query('bulk', 'BEGIN');
      await loader.query('bulk', 'TRUNCATE bulk_load');
      await loader.query(
        'bulk',
        `INSERT INTO bulk_load SELECT g, g % 1000, md5(g::text) FROM generate_series(1, ${p.bulkRows}) g`,
      );
      await loader.query('bulk', 'COMMIT');
      await loader.query('bulk', 'CREATE INDEX bulk_load_a ON bulk_load (a)');
      await loader.query('bulk', 'CREATE INDEX bulk_load_b ON bulk_load (b)');
      await loader.query('bulk', 'VACUUM (ANALYZE) bulk_load');
      await loader.query('bulk', 'DROP INDEX bulk_load_a, bulk_load_b');
      rounds += 1;
    }
    const inserted = await writers;
    if (inserted.code !== 0)
      throw new Error(`the writers failed: ${inserted.stderr.trim().split('\n').at(-1)}`);
    return `${rounds} rounds of ${p.bulkRows.toLocaleString('en-US')} rows + 2 indexes + VACUUM; writers: ${pgbenchSummary(inserted.stdout)}`;
  } finally {
    await loader.close();
    await rm(join(script, '..'), { recursive: true, force: true });
  }
}

/** A report query that runs just under the long-query threshold, beside light traffic. */
async function reportLoad(lane: Lane, p: Plan): Promise<string> {
  const reporter = await lane.session('bench:report');
  try {
    const traffic = lane.bench(
      ['-c', '2', '-R', '100', '-T', String(p.reportSeconds + 5), '-n'],
      p.reportSeconds * 1_000 + 60_000,
    );
    const started = Date.now();
    // A real aggregate, then held open (pg_sleep) so the statement lasts just under the threshold.
    await reporter.query(
      'report',
      `WITH totals AS (
         SELECT b.bid, count(*) AS accounts, sum(a.abalance) AS balance
         FROM pgbench_accounts a JOIN pgbench_branches b USING (bid) GROUP BY b.bid
       )
       SELECT totals.*, pg_sleep(greatest(0, $1 - extract(epoch FROM clock_timestamp() - statement_timestamp())))
       FROM totals`,
      [p.reportSeconds],
    );
    const tookMs = Date.now() - started;
    const done = await traffic;
    return `report ran ${seconds(tookMs)} (threshold ${p.longQuerySeconds} s); traffic: ${pgbenchSummary(done.stdout)}`;
  } finally {
    await reporter.close();
  }
}

export async function quiet(options: BenchOptions, _measured: Measured): Promise<SectionResult> {
  const p = plan(options.quick);
  const pgbench = findPgbench();
  const monitorPassword = `mon-${Math.random().toString(36).slice(2, 12)}`;
  progress(SECTION, `starting 2 PostgreSQL servers, pgbench ${pgbench}`);
  const lanes: Lane[] = [];
  const outcomes: Outcome[] = [];
  try {
    const [busy, reporting] = [
      await Lane.start(pgbench, monitorPassword),
      await Lane.start(pgbench, monitorPassword),
    ];
    lanes.push(busy, reporting);
    const production = DEFAULT_THRESHOLDS;
    // The report runs on its own server alongside the others: it lasts minutes at the production threshold.
    const report = watch(
      reporting,
      'report',
      p,
      { ...production, longQuerySeconds: p.longQuerySeconds },
      () => reportLoad(reporting, p),
    );
    const loads: Record<Exclude<Workload, 'report'>, () => Promise<string>> = {
      tpcb: () => pgbenchLoad(busy, ['-c', String(CLIENTS), '-j', '2'], p),
      'select-only': () => pgbenchLoad(busy, ['-S', '-c', String(CLIENTS), '-j', '2'], p),
      churn: () => pgbenchLoad(busy, ['-C', '-c', String(CLIENTS), '-j', '2'], p),
      bulk: () => bulkLoad(busy, p),
    };
    for (const workload of Object.keys(loads) as Array<keyof typeof loads>) {
      progress(SECTION, `${workload}: ${seconds(p.loadMs, 0)} under watch`);
      const outcome = await watch(busy, workload, p, production, loads[workload]);
      outcomes.push(outcome);
      progress(SECTION, `${workload}: ${line(outcome)}`);
    }
    progress(SECTION, `report: waiting for the ${p.reportSeconds} s report to finish`);
    const reported = await report;
    outcomes.push(reported);
    progress(SECTION, `report: ${line(reported)}`);
  } finally {
    for (const lane of lanes) await lane.server.release().catch(() => undefined);
  }
  return result(outcomes, p, options.quick);
}

function line(o: Outcome): string {
  return `${o.incidents} incidents, ${o.notifications} notifications, ${o.pages} pages, ${o.terminated} terminated (server: ${o.killed}); ${o.load}`;
}

function result(outcomes: Outcome[], p: Plan, quick: boolean): SectionResult {
  const quietAll = (o: Outcome) => o.incidents === 0 && o.pages === 0 && o.terminated === 0 && o.killed === 0;
  const rows: SummaryRow[] = outcomes.map((o) => ({
    figure: `Quiet under a healthy load, ${o.workload}: incidents / notifications / pages / sessions terminated`,
    target: '0 / any / 0 / 0',
    measured: `${o.incidents} / ${o.notifications} / ${o.pages} / ${o.terminated}`,
    pass: quietAll(o),
  }));
  const detail: string[] = [
    'The whole system in local mode (`LocalSystem`: the monitor, the runbook from the definition CDK deploys, the sweep) watches a bench-owned embedded ' +
      'PostgreSQL as the documented monitor role, with the production settings: `DEFAULT_THRESHOLDS` (lock wait 60 s, long query ' +
      `${quick ? `${p.longQuerySeconds} s in this quick run` : '5 min'}, idle in transaction 5 min, utilization 80 %), \`DEFAULT_REMEDIATION\`, ` +
      `a ${seconds(DEFAULT_MONITOR_SETTINGS.cadenceMs, 0)} cadence and a 60 s re-check. Two things differ: the escalation is ${seconds(p.escalateAfterMs, 0)} instead of 20 minutes, ` +
      'so an incident opened during a load would page within the run (an incident still open when the load ends is given that long before counting), ' +
      'and the sweep runs every 20 s instead of 5 minutes, to show it leaves the load alone. The loads run as an ordinary role that owns the `app` database ' +
      '(pgbench at scale 1: one branch row, which every TPC-B-like transaction updates, so sessions queue for it all the time). ' +
      `Each load runs ${seconds(p.loadMs, 0)} under a fresh system; the report runs on a second server at the same time.`,
    '',
    ...WORKLOADS.map((w) => `- **${w}**: ${workloadText(w, p)}.`),
    '',
    '"terminated" is what pgwarden reports (runbook actions and sweeps); "server" is `pg_stat_database.sessions_killed`, the server\'s own count of ' +
      'sessions ended by `pg_terminate_backend`. The sampler columns come from a separate probe every second (as the superuser, outside pgwarden): ' +
      'the lock waiting these loads cause is real and constant, and short, so it is no incident.',
    '',
    ...table(
      [
        'workload',
        'incidents',
        'notifications',
        'pages',
        'terminated (server)',
        'monitor probes (verdicts)',
        'samples with lock waits',
        'most waiting',
        'longest lock wait',
        'longest query',
        'load',
      ],
      outcomes.map((o) => [
        o.workload,
        String(o.incidents),
        String(o.notifications),
        String(o.pages),
        `${o.terminated} (${o.killed})`,
        `${o.probes} (${Object.entries(o.statuses)
          .map(([s, n]) => `${s} ${n}`)
          .join(', ')})`,
        `${o.waitingSamples} of ${o.samples}`,
        String(o.maxBlocked),
        o.waitingSamples > 0 && o.longestWaitSeconds < 0.1
          ? '< 0.1 s'
          : seconds(o.longestWaitSeconds * 1_000),
        seconds(o.longestQuerySeconds * 1_000),
        o.load,
      ]),
    ),
  ];
  const noisy = outcomes.filter((o) => o.subjects.length > 0 || o.errors.length > 0);
  if (noisy.length > 0) {
    detail.push('', 'What was published or went wrong:', '');
    for (const o of noisy)
      for (const text of [...o.subjects, ...o.errors.map((e) => `error: ${e}`)])
        detail.push(`- ${o.workload}: ${text}`);
  }
  return { id: 'quiet', title: '8. Quiet under a healthy, busy load', rows, detail };
}
