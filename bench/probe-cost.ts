/**
 * Section 1: what one probe costs the database at 10, 100 and 1,000 sessions — statements, round
 * trips, server time, client wall time — side by side with check_postgres asked the same questions
 * against the same server, through the same counting proxy.
 */

import type { EmbeddedServer } from '../cli/local/embedded.ts';
import type { FaultHandle } from '../cli/local/faults.ts';
import { silentLogger } from '../shared/logger.ts';
import { type HealthSnapshot, probe } from '../shared/probe/snapshot.ts';
import { SNAPSHOT_SQL } from '../shared/probe/snapshot-sql.ts';
import { openIdleSessions } from '../test/helpers/faults.ts';
import { CHECK_POSTGRES_ACTIONS, type CheckPostgresRun, runCheckPostgres } from './check-postgres.ts';
import { CountingProxy, emptyTally, type Tally } from './proxy.ts';
import {
  type BenchOptions,
  count,
  createRoles,
  findCheckPostgres,
  type Measured,
  median,
  ms,
  percentile,
  progress,
  ROOT,
  ratio,
  run,
  type SectionResult,
  type SummaryRow,
  sleep,
  startBenchServer,
  table,
} from './support.ts';

const SECTION = 'probe';
/** Probes sent through the counting proxy per level (the timed probes go direct). */
const PROXIED_PROBES = 5;

interface LevelResult {
  sessions: number;
  seenSessions: number;
  wall: number[];
  connect: number[];
  query: number[];
  statementsPerProbe: number;
  server: { calls: number; meanMs: number; maxMs: number } | undefined;
  explain: { planningMs: number; executionMs: number };
  proxied: { tally: Tally; wallMedianMs: number; authorized: number };
  checkPostgres?: {
    runs: Array<CheckPostgresRun & { connections: number }>;
    tally: Tally;
    statements: number;
    authorized: number;
  };
}

const logMark = (server: EmbeddedServer) => server.logLines().at(-1);

/** Log lines written since `mark` (the server keeps its last 500 lines). */
async function linesSince(server: EmbeddedServer, mark: string | undefined): Promise<string[]> {
  await sleep(300); // log lines arrive on the server's stderr a moment later
  const lines = server.logLines();
  const at = mark === undefined ? -1 : lines.lastIndexOf(mark);
  return lines.slice(at + 1);
}

const authorizedFor = (lines: readonly string[], user: string) =>
  lines.filter((l) => l.includes('connection authorized') && l.includes(`user=${user} `)).length;

export async function probeCost(options: BenchOptions, measured: Measured): Promise<SectionResult> {
  const levels = options.quick ? [10, 100] : [10, 100, 1_000];
  const timed = options.quick ? 10 : 30;
  const checkPostgres = findCheckPostgres();
  progress(SECTION, `starting PostgreSQL with max_connections 1100, pg_stat_statements, log_connections`);
  const server = await startBenchServer({
    maxConnections: 1_100,
    settings: {
      shared_preload_libraries: 'pg_stat_statements',
      'pg_stat_statements.track': 'top',
      log_connections: 'on',
      shared_buffers: '128MB',
      reserved_connections: 3,
    },
  });
  const idle: FaultHandle[] = [];
  const proxy = await new CountingProxy('127.0.0.1', server.port).start();
  const results: LevelResult[] = [];
  const cliWall: number[] = [];
  try {
    await server.admin('CREATE EXTENSION pg_stat_statements');
    const roles = await createRoles(server);
    const monitor = roles.monitor;
    const direct = server.spec({ user: monitor.user, password: monitor.password });
    const viaProxy = { ...direct, port: proxy.port };
    const probeOnce = async (spec = direct) => {
      const started = performance.now();
      const result = await probe(spec, { label: 'bench' }, { logger: silentLogger });
      const wall = performance.now() - started;
      if (!result.ok) throw new Error(`probe failed: ${result.failure.category}: ${result.failure.message}`);
      return { result, wall };
    };
    const monitorStatements = async () =>
      (
        await server.admin<{ calls: number | null }>(
          'SELECT sum(calls)::int AS calls FROM pg_stat_statements WHERE userid = $1::regrole',
          [monitor.user],
        )
      )[0]?.calls ?? 0;

    let open = 0;
    for (const sessions of levels) {
      progress(SECTION, `opening idle sessions: ${open} → ${sessions}`);
      if (sessions > open) idle.push(await openIdleSessions(roles.app, sessions - open, 'bench:idle'));
      open = sessions;

      for (let i = 0; i < 3; i++) await probeOnce();
      await server.admin('SELECT pg_stat_statements_reset()');
      const wall: number[] = [];
      const connect: number[] = [];
      const query: number[] = [];
      let seen = 0;
      for (let i = 0; i < timed; i++) {
        const { result, wall: w } = await probeOnce();
        wall.push(w);
        connect.push(result.latencyMs.connect);
        query.push((result as HealthSnapshot).latencyMs.query);
        seen = (result as HealthSnapshot).connections.total;
      }
      const statements = await monitorStatements();
      const snapshotRow = (
        await server.admin<{ calls: number; mean: number; max: number }>(
          `SELECT calls::int AS calls, mean_exec_time AS mean, max_exec_time AS max FROM pg_stat_statements
           WHERE userid = $1::regrole AND query LIKE '%pg_blocking_pids%'`,
          [monitor.user],
        )
      )[0];
      const explainRuns: Array<{ planningMs: number; executionMs: number }> = [];
      for (let i = 0; i < 5; i++) {
        const rows = await server.admin<{ 'QUERY PLAN': Array<Record<string, number>> }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${SNAPSHOT_SQL.replace('$1::float8', '300::float8')}`,
        );
        const plan = rows[0]?.['QUERY PLAN']?.[0];
        explainRuns.push({
          planningMs: plan?.['Planning Time'] ?? Number.NaN,
          executionMs: plan?.['Execution Time'] ?? Number.NaN,
        });
      }
      progress(
        SECTION,
        `${sessions} sessions: probe p50 ${ms(median(wall))}, server ${ms(snapshotRow?.mean ?? Number.NaN, 2)}`,
      );

      // Counted through the proxy: connections, round trips, query messages; the server log cross-checks.
      proxy.reset();
      let mark = logMark(server);
      const proxiedWall: number[] = [];
      for (let i = 0; i < PROXIED_PROBES; i++) proxiedWall.push((await probeOnce(viaProxy)).wall);
      const probeTally = proxy.reset();
      const probeAuthorized = authorizedFor(await linesSince(server, mark), monitor.user);

      const level: LevelResult = {
        sessions,
        seenSessions: seen,
        wall,
        connect,
        query,
        statementsPerProbe: statements / timed,
        server: snapshotRow
          ? { calls: snapshotRow.calls, meanMs: snapshotRow.mean, maxMs: snapshotRow.max }
          : undefined,
        explain: {
          planningMs: median(explainRuns.map((r) => r.planningMs)),
          executionMs: median(explainRuns.map((r) => r.executionMs)),
        },
        proxied: { tally: probeTally, wallMedianMs: median(proxiedWall), authorized: probeAuthorized },
      };

      if (checkPostgres) {
        progress(SECTION, `${sessions} sessions: check_postgres, ${CHECK_POSTGRES_ACTIONS.length} actions`);
        await server.admin('SELECT pg_stat_statements_reset()');
        proxy.reset();
        mark = logMark(server);
        const runs: Array<CheckPostgresRun & { connections: number }> = [];
        const tally = emptyTally();
        for (const action of CHECK_POSTGRES_ACTIONS) {
          const result = await runCheckPostgres(
            checkPostgres.command,
            {
              host: '127.0.0.1',
              port: proxy.port,
              user: monitor.user,
              password: monitor.password,
              database: 'postgres',
            },
            action,
          );
          const counted = proxy.reset();
          for (const key of Object.keys(tally) as Array<keyof Tally>) tally[key] += counted[key];
          runs.push({ ...result, connections: counted.connections });
        }
        level.checkPostgres = {
          runs,
          tally,
          statements: await monitorStatements(),
          authorized: authorizedFor(await linesSince(server, mark), monitor.user),
        };
      }
      results.push(level);

      if (cliWall.length === 0) {
        progress(SECTION, 'timing the pgwarden probe CLI as a fresh process (3 runs)');
        const url = `postgres://${monitor.user}@127.0.0.1:${server.port}/postgres?sslmode=disable`;
        for (let i = 0; i < 3; i++) {
          const result = await run(process.execPath, ['cli/bin.mjs', 'probe', '--url', url, '--json'], {
            cwd: ROOT,
            env: { ...process.env, PGPASSWORD: monitor.password },
            timeoutMs: 30_000,
          });
          if (result.code !== 0 && result.code !== 1) throw new Error(`pgwarden probe CLI: ${result.stderr}`);
          cliWall.push(result.wallMs);
        }
      }
    }
  } finally {
    for (const handle of idle) await handle.release().catch(() => undefined);
    await proxy.close();
    await server.release();
  }

  const typical = results.find((r) => r.sessions === 100) ?? results.at(-1);
  if (typical)
    measured.probe = {
      sessions: typical.sessions,
      medianMs: median(typical.wall),
      p95Ms: percentile(typical.wall, 95),
    };
  return report(results, { timed, checkPostgres: checkPostgres?.version, cliWall });
}

function report(
  results: LevelResult[],
  extra: { timed: number; checkPostgres: string | undefined; cliWall: number[] },
): SectionResult {
  const largest = results.at(-1);
  const rows: SummaryRow[] = [];
  const statements = Math.max(...results.map((r) => r.statementsPerProbe));
  const queryRoundTrips = Math.max(...results.map((r) => r.proxied.tally.queryRoundTrips / PROXIED_PROBES));
  const levelsText = results.map((r) => count(r.sessions)).join(' / ');
  rows.push({
    figure: `Probe: statements per probe (${levelsText} sessions)`,
    target: '1',
    measured: results.map((r) => r.statementsPerProbe.toFixed(2)).join(' / '),
    pass: statements <= 1,
  });
  rows.push({
    figure: 'Probe: query round trips per probe',
    target: '1',
    measured: results.map((r) => (r.proxied.tally.queryRoundTrips / PROXIED_PROBES).toFixed(2)).join(' / '),
    pass: queryRoundTrips <= 1,
  });
  if (largest) {
    rows.push({
      figure: `Probe: server time at ${count(largest.sessions)} sessions (pg_stat_statements mean / max)`,
      target: '—',
      measured: largest.server
        ? `${ms(largest.server.meanMs, 2)} / ${ms(largest.server.maxMs, 2)}`
        : 'not recorded',
    });
    rows.push({
      figure: `Probe: client wall time at ${count(largest.sessions)} sessions (median / p95)`,
      target: '—',
      measured: `${ms(median(largest.wall))} / ${ms(percentile(largest.wall, 95))}`,
    });
  }
  const compared = results.filter((r) => r.checkPostgres);
  if (compared.length > 0) {
    const connRatios = compared.map(
      (r) =>
        (r.checkPostgres?.tally.connections ?? 0) /
        (r.proxied.tally.connections / PROXIED_PROBES || Number.NaN),
    );
    const wallRatios = compared.map(
      (r) => (r.checkPostgres?.runs.reduce((a, b) => a + b.wallMs, 0) ?? 0) / r.proxied.wallMedianMs,
    );
    const first = compared[0] as LevelResult;
    rows.push({
      figure: 'vs check_postgres: connections for the same information',
      target: '≥ 10× fewer',
      measured: `1 vs ${first.checkPostgres?.tally.connections} (${ratio(Math.min(...connRatios))} fewer)`,
      pass: Math.min(...connRatios) >= 10,
    });
    rows.push({
      figure: 'vs check_postgres: wall time for the same information',
      target: '≥ 5× less',
      measured: `${ratio(Math.min(...wallRatios))}–${ratio(Math.max(...wallRatios))} less`,
      pass: Math.min(...wallRatios) >= 5,
    });
  } else {
    rows.push({
      figure: 'vs check_postgres',
      target: '≥ 10× fewer connections, ≥ 5× less wall time',
      measured: 'skipped: check_postgres is not installed (apt-get install -y check-postgres)',
    });
  }

  const detail: string[] = [];
  detail.push(
    'One embedded PostgreSQL with `max_connections = 1100`, `shared_buffers = 128MB`, `pg_stat_statements` loaded and `log_connections = on`. ' +
      'Idle sessions are opened with `openIdleSessions` as an ordinary role; the probe runs as the monitor role the README documents ' +
      '(`pg_monitor`, `pg_signal_backend`, `pg_use_reserved_connections`), exactly as the probe function runs it: a fresh connection, one statement, close.',
    '',
    `Per level: 3 warm-up probes, then ${extra.timed} timed probes in sequence (client wall time = connect + statement + close, measured around \`probe()\`); ` +
      '`pg_stat_statements` is reset before them, so its `calls` for the monitor role divided by the probes is the statements per probe, and the ' +
      "snapshot statement's `mean_exec_time` is the server's execution time. EXPLAIN ANALYZE of the same statement (median of 5, as superuser) adds the planning time. " +
      `Then ${PROXIED_PROBES} probes go through a counting TCP proxy that follows the wire protocol's framing: a round trip is a flight of client bytes answered by the server, ` +
      'split into the handshake (startup and SCRAM authentication, up to the first ReadyForQuery) and queries after it.',
    '',
  );
  detail.push(
    ...table(
      [
        'sessions',
        'seen by probe',
        'wall p50',
        'wall p95',
        'connect p50',
        'statement p50',
        'server mean (pgss)',
        'server max',
        'EXPLAIN plan + exec',
        'statements / probe',
        'round trips / probe (handshake + query)',
      ],
      results.map((r) => {
        const t = r.proxied.tally;
        return [
          count(r.sessions),
          count(r.seenSessions),
          ms(median(r.wall)),
          ms(percentile(r.wall, 95)),
          ms(median(r.connect)),
          ms(median(r.query)),
          r.server ? ms(r.server.meanMs, 2) : 'n/a',
          r.server ? ms(r.server.maxMs, 2) : 'n/a',
          `${ms(r.explain.planningMs, 2)} + ${ms(r.explain.executionMs, 2)}`,
          r.statementsPerProbe.toFixed(2),
          `${(t.roundTrips / PROXIED_PROBES).toFixed(1)} (${(t.handshakeRoundTrips / PROXIED_PROBES).toFixed(1)} + ${(t.queryRoundTrips / PROXIED_PROBES).toFixed(1)})`,
        ];
      }),
    ),
    '',
    'The handshake round trips are the SCRAM-SHA-256 exchange every password or IAM login pays; the probe itself adds one round trip for its one statement. ' +
      'Session options (statement, lock and idle timeouts, `search_path`, `application_name`) travel in the startup packet, so they cost no statement.',
    '',
  );

  if (compared.length > 0) {
    detail.push(
      `### Side by side with check_postgres (${extra.checkPostgres})`,
      '',
      `The same server, the same monitor role, the same counting proxy. check_postgres runs each of the ${CHECK_POSTGRES_ACTIONS.length} actions below once ` +
        '(one `check_postgres` process each, which runs `psql`); pgwarden runs its probe, which returns all of it and more (server version, start and ' +
        'crash-restart time, blocking pids, replica lag) in one statement. Connections are counted by the proxy (accepted TCP connections) and cross-checked ' +
        'with the server log (`connection authorized` lines for the monitor role); statements by `pg_stat_statements` for the monitor role. The pgwarden ' +
        `wall time is the median of ${PROXIED_PROBES} probes through the proxy, in process, as a warm probe function runs it; check_postgres wall time is the ` +
        'sum of its actions, each a fresh process, as Nagios runs it.',
      '',
      ...table(
        [
          'check_postgres action',
          'answers (probe field)',
          `connections (at ${count(compared[0]?.sessions ?? 0)} sessions)`,
        ],
        CHECK_POSTGRES_ACTIONS.map((a) => [
          `\`${a.action}\` ${a.args.join(' ')}`.trim(),
          a.covers,
          String(compared[0]?.checkPostgres?.runs.find((r) => r.action === a.action)?.connections ?? '?'),
        ]),
      ),
      '',
      ...table(
        [
          'sessions',
          'tool',
          'connections (proxy / server log)',
          'round trips',
          'statements (pgss)',
          'wall time',
          'statuses',
        ],
        compared.flatMap((r) => {
          const cp = r.checkPostgres as NonNullable<LevelResult['checkPostgres']>;
          const pw = r.proxied.tally;
          const cpWall = cp.runs.reduce((a, b) => a + b.wallMs, 0);
          return [
            [
              count(r.sessions),
              'pgwarden probe (per probe)',
              `${(pw.connections / PROXIED_PROBES).toFixed(0)} / ${(r.proxied.authorized / PROXIED_PROBES).toFixed(0)}`,
              (pw.roundTrips / PROXIED_PROBES).toFixed(1),
              r.statementsPerProbe.toFixed(0),
              ms(r.proxied.wallMedianMs),
              'ok',
            ],
            [
              count(r.sessions),
              `check_postgres (${cp.runs.length} actions)`,
              `${cp.tally.connections} / ${cp.authorized}`,
              String(cp.tally.roundTrips),
              String(cp.statements),
              ms(cpWall, 0),
              cp.runs.map((x) => `${x.action} ${x.status}`).join(', '),
            ],
            [
              count(r.sessions),
              'ratio',
              ratio(cp.tally.connections / (pw.connections / PROXIED_PROBES)),
              ratio(cp.tally.roundTrips / (pw.roundTrips / PROXIED_PROBES)),
              ratio(cp.statements / r.statementsPerProbe),
              ratio(cpWall / r.proxied.wallMedianMs),
              '',
            ],
          ];
        }),
      ),
      '',
    );
    if (extra.cliWall.length > 0) {
      const cp = compared[0]?.checkPostgres;
      const cpWall = cp ? cp.runs.reduce((a, b) => a + b.wallMs, 0) : Number.NaN;
      detail.push(
        `As fresh processes on both sides — \`pgwarden probe --json\` as its bin runs it (median of ${extra.cliWall.length}; section 9 times its start against psql) ` +
          `against check_postgres's ${CHECK_POSTGRES_ACTIONS.length} processes at ${count(compared[0]?.sessions ?? 0)} sessions — ` +
          `the wall times are ${ms(median(extra.cliWall), 0)} and ${ms(cpWall, 0)} (${ratio(cpWall / median(extra.cliWall))}).`,
        '',
      );
    }
    const twice = compared[0]?.checkPostgres?.runs.filter((r) => r.connections > 1).length ?? 0;
    if (twice > 0)
      detail.push(
        `${twice} of the ${CHECK_POSTGRES_ACTIONS.length} actions open a second connection: check_postgres asks for the server version ` +
          '(`SELECT version()`) in a `psql` of its own before the check itself.',
        '',
      );
    const connections = compared[0]?.checkPostgres?.tally.connections ?? 0;
    if (connections < 10)
      detail.push(
        `The connection ratio is the number of check_postgres actions the same information takes: one \`psql\` connection each, so ${connections} ` +
          'against 1. A target of 10× fewer cannot be met against these seven actions; counting the statements, check_postgres also sends its ' +
          '`SELECT version()`, `BEGIN`, `SET statement_timeout` and `COMMIT` around most queries.',
        '',
      );
  } else {
    detail.push(
      'check_postgres was not found on PATH, so the side-by-side comparison was skipped. On Debian or Ubuntu: `apt-get install -y check-postgres` (needs root).',
      '',
    );
  }
  return { id: 'probe', title: '1. Probe cost on the database', rows, detail };
}
